/* The tensor list and config readers shared by the seed-unclip unet/vae plans (unclip_part.h),
 * and the streaming half of unclip_plan.h (unclip_part_write / unclip_part_free). */
#include "unclip_part.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK (4 << 20) /* elements streamed at a time */

unclip_part *up_new(const ckpt *c, const char *what, const convert_opts *o)
{
    unclip_part *p = calloc(1, sizeof *p);
    if (p)
        p->used = calloc(c->n ? c->n : 1, sizeof *p->used);
    if (!p || !p->used) {
        free(p);
        ag_set_error("out of memory");
        return NULL;
    }
    p->c = c;
    p->what = what;
    p->chunk_elems = o->chunk_elems > 0 ? o->chunk_elems : DEFAULT_CHUNK;
    p->quiet = o->quiet;
    return p;
}

void unclip_part_free(unclip_part *p)
{
    if (!p)
        return;
    free(p->used);
    free(p->e);
    free(p);
}

static void shape_str(char *out, size_t n, int nd, const int64_t *s)
{
    size_t pos = 0;
    out[0] = 0;
    for (int d = 0; d < nd && pos + 24 < n; d++)
        pos += (size_t)snprintf(out + pos, n - pos, "%s%lld", d ? ", " : "", (long long)s[d]);
}

const ckpt_tensor *up_need(unclip_part *p, const char *key, int nd, const int64_t *s)
{
    const ckpt_tensor *t = ckpt_find(p->c, key);
    if (!t) {
        ag_set_error("%s checkpoint lacks tensor '%s'", p->what, key);
        return NULL;
    }
    if (!ckpt_has_shape(t, nd, s)) {
        char want[128], have[128];
        shape_str(want, sizeof want, nd, s);
        shape_str(have, sizeof have, t->n_dims, t->shape);
        ag_set_error("%s checkpoint tensor '%s' has shape (%s), expected (%s)", p->what, key, have, want);
        return NULL;
    }
    if (t->dtype != CKPT_F32 && t->dtype != CKPT_F16 && t->dtype != CKPT_BF16 && t->dtype != CKPT_F64) {
        ag_set_error("%s checkpoint tensor '%s' is %s, not a float type", p->what, key, ckpt_dtype_name(t->dtype));
        return NULL;
    }
    p->used[t - p->c->t] = true;
    return t;
}

int up_add(unclip_part *p, const char *gguf, const ckpt_tensor *src, int nd, const int64_t *ne, bool half)
{
    if (!src)
        return -1;
    if (strlen(gguf) >= sizeof p->e[0].gguf) {
        ag_set_error("GGUF tensor name '%s' too long", gguf);
        return -1;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 512;
        up_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ag_set_error("out of memory");
            return -1;
        }
        p->e = e;
        p->cap = cap;
    }
    up_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->gguf, sizeof e->gguf, "%s", gguf);
    e->src = src;
    e->nd = nd;
    for (int d = 0; d < 4; d++)
        e->ne[d] = d < nd ? ne[d] : 1;
    e->half = half;
    return 0;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})

static int add_bias(unclip_part *p, const char *g, const char *key, int64_t n)
{
    char gn[96], kn[256];
    cv_nm(gn, sizeof gn, "%s.bias", g);
    cv_nm(kn, sizeof kn, "%s.bias", key);
    return up_add(p, gn, up_need(p, kn, 1, S(n)), 1, S(n), false);
}

int up_conv(unclip_part *p, const char *g, const char *key, int64_t cin, int64_t cout, int64_t k, bool bias)
{
    char gn[96], kn[256];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", key);
    if (up_add(p, gn, up_need(p, kn, 4, S(cout, cin, k, k)), 4, S(k, k, cin, cout), true))
        return -1;
    return bias ? add_bias(p, g, key, cout) : 0;
}

int up_linear(unclip_part *p, const char *g, const char *key, int64_t in, int64_t out, bool bias, bool conv1x1)
{
    char gn[96], kn[256];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", key);
    const ckpt_tensor *t = conv1x1 ? up_need(p, kn, 4, S(out, in, 1, 1)) : up_need(p, kn, 2, S(out, in));
    if (up_add(p, gn, t, 2, S(in, out), true))
        return -1;
    return bias ? add_bias(p, g, key, out) : 0;
}

int up_norm(unclip_part *p, const char *g, const char *key, int64_t ch)
{
    char gn[96], kn[256];
    cv_nm(gn, sizeof gn, "%s.weight", g);
    cv_nm(kn, sizeof kn, "%s.weight", key);
    if (up_add(p, gn, up_need(p, kn, 1, S(ch)), 1, S(ch), false))
        return -1;
    return add_bias(p, g, key, ch);
}

int up_resnet(unclip_part *p, const char *g, const char *key, int64_t cin, int64_t cout, int64_t temb)
{
    char gn[96], kn[256];
#define PK(gs, ks) (cv_nm(gn, sizeof gn, "%s." gs, g), cv_nm(kn, sizeof kn, "%s." ks, key))
    if ((PK("norm1", "norm1"), up_norm(p, gn, kn, cin)) || (PK("conv1", "conv1"), up_conv(p, gn, kn, cin, cout, 3, true)))
        return -1;
    if (temb > 0 && (PK("temb", "time_emb_proj"), up_linear(p, gn, kn, temb, cout, true, false)))
        return -1;
    if ((PK("norm2", "norm2"), up_norm(p, gn, kn, cout)) ||
        (PK("conv2", "conv2"), up_conv(p, gn, kn, cout, cout, 3, true)))
        return -1;
    if (cin != cout && (PK("skip", "conv_shortcut"), up_conv(p, gn, kn, cin, cout, 1, true)))
        return -1;
#undef PK
    return 0;
}

int up_declare(unclip_part *p, gs_writer *w, const convert_opts *o, bool (*ignorable)(const char *key))
{
    char what[64];
    cv_nm(what, sizeof what, "the %s component", p->what);
    if (ckpt_check_used(p->c, p->used, ignorable, what))
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        up_entry *e = &p->e[i];
        e->half = e->half && o->wtype == AG_TYPE_F16;
        if ((e->idx = gs_add_tensor(w, e->gguf, e->half ? AG_TYPE_F16 : AG_TYPE_F32, e->nd, e->ne)) < 0)
            return -1;
    }
    return 0;
}

int unclip_part_write(unclip_part *p, gs_writer *w)
{
    /* whole torch rows (the outermost dim) at a time: a row is a contiguous run in GGUF order */
    float *buf = NULL;
    ag_fp16 *hbuf = NULL;
    size_t cap = 0;
    int rc = -1;
    for (size_t i = 0; i < p->n; i++) {
        const up_entry *e = &p->e[i];
        const ckpt_tensor *t = e->src;
        const int64_t rows = t->n_dims ? t->shape[0] : 1, numel = ckpt_numel(t), row = rows ? numel / rows : 0;
        int64_t per = row > 0 ? p->chunk_elems / row : 1;
        if (per < 1)
            per = 1;
        if (per > rows)
            per = rows;
        if ((size_t)(per * row) > cap) {
            cap = (size_t)(per * row);
            free(buf);
            free(hbuf);
            buf = malloc(cap * sizeof *buf);
            hbuf = malloc(cap * sizeof *hbuf);
            if (!buf || !hbuf) {
                ag_set_error("out of memory");
                goto out;
            }
        }
        for (int64_t r0 = 0; r0 < rows; r0 += per) {
            const int64_t nr = r0 + per <= rows ? per : rows - r0, n = nr * row;
            if ((t->n_dims ? ckpt_rows_to_f32(t, r0, nr, buf) : ckpt_to_f32(t, buf)) != 0)
                goto out;
            int wr;
            if (e->half) {
                for (int64_t j = 0; j < n; j++)
                    hbuf[j] = ag_fp32_to_fp16(buf[j]);
                wr = gs_write_part(w, e->idx, hbuf, (size_t)n * sizeof *hbuf);
            } else {
                wr = gs_write_part(w, e->idx, buf, (size_t)n * sizeof *buf);
            }
            if (wr != 0)
                goto out;
        }
        ckpt_release(t);
        if (!p->quiet)
            fprintf(stderr, "  %-36s <- %-64s %s\n", e->gguf, t->name, e->half ? "f16" : "f32");
    }
    rc = 0;
out:
    free(buf);
    free(hbuf);
    return rc;
}

/* ---------------------------------------------------------------- config.json */

const json_value *cfg_get(const json_value *cfg, const char *key)
{
    const json_value *v = json_get(cfg, key);
    return v && v->kind != JSON_NULL ? v : NULL;
}

bool cfg_int(const json_value *cfg, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out)
{
    const json_value *v = cfg_get(cfg, key);
    *out = def;
    if (!v)
        return true;
    if (v->kind != JSON_NUMBER || !v->is_int || v->i < lo || v->i > hi) {
        ag_set_error("config option '%s' must be an integer in %lld..%lld", key, (long long)lo, (long long)hi);
        return false;
    }
    *out = v->i;
    return true;
}

bool cfg_num(const json_value *cfg, const char *key, double def, double *out)
{
    const json_value *v = cfg_get(cfg, key);
    *out = def;
    if (!v)
        return true;
    if (v->kind != JSON_NUMBER || !isfinite(v->num)) {
        ag_set_error("config option '%s' must be a number", key);
        return false;
    }
    *out = v->num;
    return true;
}

bool cfg_bool(const json_value *cfg, const char *key, bool def, bool *out)
{
    const json_value *v = cfg_get(cfg, key);
    *out = def;
    if (!v)
        return true;
    if (v->kind != JSON_BOOL) {
        ag_set_error("config option '%s' must be true or false", key);
        return false;
    }
    *out = v->b;
    return true;
}

bool cfg_str(const json_value *cfg, const char *key, const char *def, const char **out)
{
    const json_value *v = cfg_get(cfg, key);
    *out = def;
    if (!v)
        return true;
    if (v->kind != JSON_STRING) {
        ag_set_error("config option '%s' must be a string", key);
        return false;
    }
    *out = v->str;
    return true;
}

bool cfg_int_list(const json_value *cfg, const char *key, int64_t def, int n, int64_t lo, int64_t hi, int64_t *out)
{
    const json_value *v = cfg_get(cfg, key);
    for (int i = 0; i < n; i++)
        out[i] = def;
    if (!v)
        return true;
    if (v->kind == JSON_NUMBER) {
        if (!cfg_int(cfg, key, def, lo, hi, &out[0]))
            return false;
        for (int i = 1; i < n; i++)
            out[i] = out[0];
        return true;
    }
    if (v->kind != JSON_ARRAY || v->n != (size_t)n) {
        ag_set_error("config option '%s' must be an integer or a list of %d integers", key, n);
        return false;
    }
    for (int i = 0; i < n; i++) {
        const json_value *x = v->items[i];
        if (x->kind != JSON_NUMBER || !x->is_int || x->i < lo || x->i > hi) {
            ag_set_error("config option '%s' item %d must be an integer in %lld..%lld", key, i, (long long)lo,
                         (long long)hi);
            return false;
        }
        out[i] = x->i;
    }
    return true;
}

bool cfg_known_only(const json_value *cfg, const char *const *known, const char *what)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const char *k = cfg->keys[i];
        bool ok = k[0] == '_';
        for (size_t j = 0; !ok && known[j]; j++)
            ok = strcmp(k, known[j]) == 0;
        if (!ok) {
            ag_set_error("%s config option '%s' is not one this converter builds", what, k);
            return false;
        }
    }
    return true;
}
