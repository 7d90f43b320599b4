/* The SEANet conversion plan (seanet_plan.h). Weight norm (g, v) is folded here:
 * w = g * v / ||v||, the norm over every dim but 0 (torch weight_norm's default dim=0; Conv1d:
 * per output channel; ConvTranspose1d: per input channel, both dim 0 of v). */
#include "seanet_plan.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sp_entry *sp_add(sp_plan *p, const char *gguf, const char *key, int kind, int n_dims, int64_t s0, int64_t s1,
                 int64_t s2)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 128;
        sp_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ag_set_error("out of memory");
            return NULL;
        }
        p->e = e;
        p->cap = cap;
    }
    sp_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    cv_nm(e->gguf, sizeof e->gguf, "%s", gguf);
    cv_nm(e->key, sizeof e->key, "%s", key);
    e->src_kind = kind;
    e->n_dims = n_dims;
    e->shape[0] = s0;
    e->shape[1] = s1;
    e->shape[2] = s2;
    return e;
}

int sp_add_conv(sp_plan *p, const char *g, const char *mod, int64_t cin, int64_t cout, int64_t k, bool transposed)
{
    char gn[96], kn[160];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    if (!sp_add(p, gn, mod, SP_WNORM, 3, transposed ? cin : cout, transposed ? cout : cin, k))
        return -1;
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", mod);
    return sp_add(p, gn, kn, SP_PLAIN, 1, cout, 1, 1) ? 0 : -1;
}

int sp_add_alpha(sp_plan *p, const char *g, const char *mod, int64_t ch)
{
    char gn[96], kn[160];
    cv_nm(gn, sizeof gn, "%s.alpha", g);
    cv_nm(kn, sizeof kn, "%s.alpha", mod);
    return sp_add(p, gn, kn, SP_PLAIN, 3, 1, ch, 1) ? 0 : -1;
}

int sp_add_res(sp_plan *p, const char *g, const char *mod, const char *conv, int64_t ch, int64_t h, int64_t kernel,
               bool snake, bool shortcut)
{
    char gn[96], kn[160];
#define SUB(s) (cv_nm(gn, sizeof gn, "%s." s, g), cv_nm(kn, sizeof kn, "%s." s, mod))
#define SUBCONV(s) (cv_nm(gn, sizeof gn, "%s." s, g), cv_nm(kn, sizeof kn, "%s." s ".%s", mod, conv))
    if (snake && (SUB("block.0"), sp_add_alpha(p, gn, kn, ch)))
        return -1;
    if ((SUBCONV("block.1"), sp_add_conv(p, gn, kn, ch, h, kernel, false)))
        return -1;
    if (snake && (SUB("block.2"), sp_add_alpha(p, gn, kn, h)))
        return -1;
    if ((SUBCONV("block.3"), sp_add_conv(p, gn, kn, h, ch, 1, false)))
        return -1;
    if (!shortcut)
        return 0;
    SUBCONV("shortcut");
#undef SUBCONV
#undef SUB
    return sp_add_conv(p, gn, kn, ch, ch, 1, false);
}

int sp_add_lstm(sp_plan *p, const char *g, const char *mod, int64_t h, int64_t layers, bool bidir)
{
    static const char *const parts[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int64_t l = 0; l < layers; l++) {
        for (int dir = 0; dir < (bidir ? 2 : 1); dir++) {
            for (int k = 0; k < 4; k++) {
                char gn[96], kn[160];
                const char *suf = dir ? "_reverse" : "";
                cv_nm(gn, sizeof gn, "%s.lstm.%s_l%lld%s", g, parts[k], (long long)l, suf);
                cv_nm(kn, sizeof kn, "%s.lstm.%s_l%lld%s", mod, parts[k], (long long)l, suf);
                const int64_t in = l == 0 ? h : h * (bidir ? 2 : 1);
                sp_entry *e = k < 2 ? sp_add(p, gn, kn, SP_PLAIN, 2, 4 * h, k == 0 ? in : h, 1)
                                    : sp_add(p, gn, kn, SP_PLAIN, 1, 4 * h, 1, 1);
                if (!e)
                    return -1;
            }
        }
    }
    return 0;
}

static int check_shape(const ckpt_tensor *t, int n_dims, const int64_t *shape)
{
    if (ckpt_has_shape(t, n_dims, shape))
        return 0;
    char got[128] = "", want[128] = "";
    for (int d = 0; d < t->n_dims && d < CKPT_MAX_DIMS; d++)
        cv_nm(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
    for (int d = 0; d < n_dims; d++)
        cv_nm(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)shape[d]);
    ag_set_error("tensor '%s' has shape (%s), expected (%s)", t->name, got, want);
    return -1;
}

static int resolve_entry(sp_entry *e, const ckpt *c)
{
    if (e->src_kind == SP_PLAIN) {
        if (!(e->a = ckpt_find(c, e->key))) {
            ag_set_error("checkpoint lacks tensor '%s'", e->key);
            return -1;
        }
        return check_shape(e->a, e->n_dims, e->shape);
    }
    char kg[200], kv[200];
    cv_nm(kg, sizeof kg, "%s.weight_g", e->key);
    cv_nm(kv, sizeof kv, "%s.weight_v", e->key);
    e->a = ckpt_find(c, kg);
    e->b = ckpt_find(c, kv);
    if (!e->a && !e->b) { /* torch >= 2.1 parametrizations */
        cv_nm(kg, sizeof kg, "%s.parametrizations.weight.original0", e->key);
        cv_nm(kv, sizeof kv, "%s.parametrizations.weight.original1", e->key);
        e->a = ckpt_find(c, kg);
        e->b = ckpt_find(c, kv);
    }
    if (!e->a || !e->b) {
        ag_set_error("checkpoint lacks tensor '%s'", e->a ? kv : kg);
        return -1;
    }
    const int64_t gs[3] = {e->shape[0], 1, 1};
    return check_shape(e->a, 3, gs) || check_shape(e->b, 3, e->shape) ? -1 : 0;
}

int sp_resolve(sp_plan *p, const ckpt *c, bool (*ignorable)(const char *key))
{
    bool *used = calloc(c->n ? c->n : 1, sizeof *used);
    if (!used) {
        ag_set_error("out of memory");
        return -1;
    }
    int rc = -1;
    for (size_t i = 0; i < p->n; i++) {
        sp_entry *e = &p->e[i];
        if (resolve_entry(e, c))
            goto out;
        used[e->a - c->t] = true;
        if (e->b)
            used[e->b - c->t] = true;
    }
    rc = ckpt_check_used(c, used, ignorable, "this configuration");
out:
    free(used);
    return rc;
}

/* data: the entry's weight as F32 (weight norm folded), numel floats. */
static int entry_data(const sp_entry *e, float *data)
{
    if (e->src_kind == SP_PLAIN)
        return ckpt_to_f32(e->a, data);
    const int64_t rows = e->shape[0], per = e->shape[1] * e->shape[2];
    float *g = malloc((size_t)rows * sizeof *g);
    if (!g || ckpt_to_f32(e->a, g) || ckpt_to_f32(e->b, data)) {
        if (!g)
            ag_set_error("out of memory");
        free(g);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        float *v = data + r * per;
        double ss = 0;
        for (int64_t k = 0; k < per; k++)
            ss += (double)v[k] * v[k];
        const double s = ss > 0 ? g[r] / sqrt(ss) : 0.0;
        for (int64_t k = 0; k < per; k++)
            v[k] = (float)(v[k] * s);
    }
    free(g);
    return 0;
}

int sp_write(sp_plan *p, gs_writer *w, const char *out, const convert_opts *o)
{
    float *buf = NULL;
    ag_fp16 *hbuf = NULL;
    int rc = -1;
    int64_t max_n = 0;
    for (size_t i = 0; i < p->n; i++) {
        sp_entry *e = &p->e[i];
        /* ggml order is torch's reversed (same bytes); conv biases (and Snake alphas) become
         * [1, C] rows to broadcast */
        int64_t ne[3];
        int nd = e->n_dims;
        if (e->n_dims == 1 && !strstr(e->gguf, ".lstm.")) {
            ne[0] = 1;
            ne[1] = e->shape[0];
            nd = 2;
        } else if (p->rows_1c1 && e->n_dims == 3 && e->shape[0] == 1 && e->shape[2] == 1) {
            ne[0] = 1;
            ne[1] = e->shape[1];
            nd = 2;
        } else {
            for (int d = 0; d < nd; d++)
                ne[d] = e->shape[nd - 1 - d];
        }
        const int64_t n = e->shape[0] * e->shape[1] * e->shape[2];
        max_n = n > max_n ? n : max_n;
        e->half = o->wtype == AG_TYPE_F16 && (e->src_kind == SP_WNORM || strstr(e->gguf, ".lstm.weight_") != NULL);
        if ((e->idx = gs_add_tensor(w, e->gguf, e->half ? AG_TYPE_F16 : AG_TYPE_F32, nd, ne)) < 0)
            goto out;
    }
    buf = malloc((size_t)max_n * sizeof *buf);
    hbuf = malloc((size_t)max_n * sizeof *hbuf);
    if (!buf || !hbuf) {
        ag_set_error("out of memory");
        goto out;
    }
    if (gs_begin(w, out))
        goto out;
    for (size_t i = 0; i < p->n; i++) {
        const sp_entry *e = &p->e[i];
        const int64_t n = e->shape[0] * e->shape[1] * e->shape[2];
        if (entry_data(e, buf))
            goto out;
        if (e->half)
            for (int64_t k = 0; k < n; k++)
                hbuf[k] = ag_fp32_to_fp16(buf[k]);
        if (gs_write_tensor(w, e->idx, e->half ? (const void *)hbuf : buf, (size_t)n * (e->half ? 2 : 4)))
            goto out;
        if (!o->quiet)
            fprintf(stderr, "  %-*s <- %s%s%s\n", p->name_width, e->gguf, e->key,
                    e->src_kind == SP_WNORM ? " (weight norm folded)" : "", e->half ? " F16" : "");
    }
    rc = gs_finish(w) ? -1 : 0;
out:
    free(buf);
    free(hbuf);
    return rc;
}

void sp_free(sp_plan *p)
{
    free(p->e);
    p->e = NULL;
    p->n = p->cap = 0;
}
