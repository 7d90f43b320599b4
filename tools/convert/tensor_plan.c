/* Plain tensor copies for converters: see tensor_plan.h. */
#include "tensor_plan.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tp_init(tensor_plan *p, const ckpt *c, const char *what)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->what = what;
    p->used = calloc(c->n ? c->n : 1, sizeof *p->used);
    if (!p->used) {
        ag_set_error("out of memory");
        return -1;
    }
    return 0;
}

void tp_free(tensor_plan *p)
{
    free(p->used);
    free(p->e);
    memset(p, 0, sizeof *p);
}

void tp_shape_str(char *buf, size_t n, int nd, const int64_t *shape)
{
    size_t pos = 0;
    pos += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && pos < n; d++)
        pos += (size_t)snprintf(buf + pos, n - pos, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (pos < n)
        snprintf(buf + pos, n - pos, "]");
}

const ckpt_tensor *tp_need(tensor_plan *p, const char *key, int nd, const int64_t *shape)
{
    const ckpt_tensor *t = ckpt_find(p->c, key);
    if (!t) {
        ag_set_error("%s lacks tensor '%s'", p->what, key);
        return NULL;
    }
    if (!ckpt_has_shape(t, nd, shape)) {
        char have[160], want[160];
        tp_shape_str(have, sizeof have, t->n_dims, t->shape);
        tp_shape_str(want, sizeof want, nd, shape);
        ag_set_error("%s: tensor '%s' has shape %s, expected %s", p->what, key, have, want);
        return NULL;
    }
    p->used[t - p->c->t] = true;
    return t;
}

int tp_add(tensor_plan *p, const char *gguf, const ckpt_tensor *src, bool half, int nd, const int64_t *ne)
{
    if (!src)
        return -1;
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= ne[d];
    if (n != ckpt_numel(src) || nd < 1 || nd > 4) {
        ag_set_error("internal: '%s' from '%s': element counts differ", gguf, src->name);
        return -1;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        tp_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e) {
            ag_set_error("out of memory");
            return -1;
        }
        p->e = e;
        p->cap = cap;
    }
    tp_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    cv_nm(e->gguf, sizeof e->gguf, "%s", gguf);
    e->src = src;
    e->nd = nd;
    for (int d = 0; d < 4; d++)
        e->ne[d] = d < nd ? ne[d] : 1;
    e->half = half;
    return 0;
}

int tp_declare(tensor_plan *p, gs_writer *w, ag_type wtype)
{
    for (size_t i = 0; i < p->n; i++) {
        tp_entry *e = &p->e[i];
        e->half = e->half && wtype == AG_TYPE_F16;
        if ((e->idx = gs_add_tensor(w, e->gguf, e->half ? AG_TYPE_F16 : AG_TYPE_F32, e->nd, e->ne)) < 0)
            return -1;
    }
    return 0;
}

int tp_write(const tensor_plan *p, gs_writer *w, bool quiet)
{
    int64_t max_n = 1;
    for (size_t i = 0; i < p->n; i++)
        if (ckpt_numel(p->e[i].src) > max_n)
            max_n = ckpt_numel(p->e[i].src);
    float *buf = malloc((size_t)max_n * sizeof *buf);
    ag_fp16 *hbuf = malloc((size_t)max_n * sizeof *hbuf);
    int rc = -1;
    if (!buf || !hbuf) {
        ag_set_error("out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++) {
        const tp_entry *e = &p->e[i];
        const int64_t n = ckpt_numel(e->src);
        if (ckpt_to_f32(e->src, buf))
            goto out;
        if (e->half) {
            for (int64_t j = 0; j < n; j++)
                hbuf[j] = ag_fp32_to_fp16(buf[j]);
            if (gs_write_tensor(w, e->idx, hbuf, (size_t)n * sizeof *hbuf))
                goto out;
        } else if (gs_write_tensor(w, e->idx, buf, (size_t)n * sizeof *buf)) {
            goto out;
        }
        ckpt_release(e->src);
        if (!quiet)
            fprintf(stderr, "  %-40s %s\n", e->gguf, e->half ? "f16" : "f32");
    }
    rc = 0;
out:
    free(buf);
    free(hbuf);
    return rc;
}
