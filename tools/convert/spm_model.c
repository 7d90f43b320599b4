/* Protobuf wire format: key = varint(field << 3 | wire type); types 0 varint, 1 fixed64,
 * 2 length-delimited, 5 fixed32. Unknown fields are skipped; every length is checked. */
#include "spm_model.h"
#include "json.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
    const char *label;
} pb;

static int pb_varint(pb *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            ag_set_error("%s: protobuf truncated inside a varint", r->label);
            return -1;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    ag_set_error("%s: protobuf varint longer than 10 bytes", r->label);
    return -1;
}

/* Reads a field key and, for length-delimited fields, a sub-reader over the payload. */
static int pb_field(pb *r, uint32_t *field, int *wt, uint64_t *val, pb *sub)
{
    uint64_t key;
    if (pb_varint(r, &key))
        return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return pb_varint(r, val);
    case 1:
    case 5: {
        size_t n = *wt == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            break;
        uint64_t v = 0;
        for (size_t k = n; k-- > 0;)
            v = v << 8 | r->p[k];
        r->p += n;
        *val = v;
        return 0;
    }
    case 2: {
        uint64_t len;
        if (pb_varint(r, &len))
            return -1;
        if (len > (uint64_t)(r->end - r->p))
            break;
        sub->p = r->p;
        sub->end = r->p + len;
        sub->label = r->label;
        r->p += len;
        *val = len;
        return 0;
    }
    default:
        ag_set_error("%s: protobuf wire type %d not supported (corrupt file?)", r->label, *wt);
        return -1;
    }
    ag_set_error("%s: protobuf field %u runs past its message (truncated?)", r->label, *field);
    return -1;
}

static int parse_piece(pb *r, spm_piece *out)
{
    out->type = SPM_NORMAL;
    out->score = 0.0f;
    while (r->p < r->end) {
        uint32_t f;
        int wt;
        uint64_t v;
        pb sub = {0};
        if (pb_field(r, &f, &wt, &v, &sub))
            return -1;
        if (f == 1 && wt == 2) {
            free(out->piece);
            out->piece = malloc(v + 1);
            if (!out->piece) {
                ag_set_error("%s: out of memory", r->label);
                return -1;
            }
            memcpy(out->piece, sub.p, v);
            out->piece[v] = 0;
        } else if (f == 2 && wt == 5) {
            uint32_t bits = (uint32_t)v;
            memcpy(&out->score, &bits, 4);
        } else if (f == 3 && wt == 0) {
            if (v < 1 || v > 6) {
                ag_set_error("%s: piece type %llu unknown", r->label, (unsigned long long)v);
                return -1;
            }
            out->type = (int)v;
        }
    }
    if (!out->piece) {
        ag_set_error("%s: a SentencePiece entry has no piece string", r->label);
        return -1;
    }
    return 0;
}

static int parse_trainer(pb *r, spm_model *m)
{
    while (r->p < r->end) {
        uint32_t f;
        int wt;
        uint64_t v;
        pb sub;
        if (pb_field(r, &f, &wt, &v, &sub))
            return -1;
        if (wt != 0)
            continue;
        switch (f) {
        case 3: m->model_type = (int)v; break;
        case 35: m->byte_fallback = v != 0; break;
        case 40: m->unk_id = (int32_t)v; break;
        case 41: m->bos_id = (int32_t)v; break;
        case 42: m->eos_id = (int32_t)v; break;
        case 43: m->pad_id = (int32_t)v; break;
        default: break;
        }
    }
    return 0;
}

static int parse_normalizer(pb *r, spm_model *m)
{
    while (r->p < r->end) {
        uint32_t f;
        int wt;
        uint64_t v;
        pb sub;
        if (pb_field(r, &f, &wt, &v, &sub))
            return -1;
        if (wt == 0 && f == 3)
            m->add_dummy_prefix = v != 0;
        else if (wt == 0 && f == 4)
            m->remove_extra_whitespaces = v != 0;
    }
    return 0;
}

int spm_model_parse(spm_model *m, const uint8_t *data, size_t size, const char *label)
{
    memset(m, 0, sizeof *m);
    /* proto2 defaults */
    m->model_type = 1;
    m->unk_id = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->add_dummy_prefix = true;
    m->remove_extra_whitespaces = true;
    size_t cap = 0;
    pb r = {data, data + size, label};
    while (r.p < r.end) {
        uint32_t f;
        int wt;
        uint64_t v;
        pb sub = {0};
        if (pb_field(&r, &f, &wt, &v, &sub))
            goto fail;
        if (wt != 2)
            continue;
        if (f == 1) {
            if (m->n >= AG_MAX_SPM_PIECES) {
                ag_set_error("%s: more than %d SentencePiece pieces: refused", label, AG_MAX_SPM_PIECES);
                goto fail;
            }
            if (m->n == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                spm_piece *np = realloc(m->pieces, nc * sizeof *np);
                if (!np) {
                    ag_set_error("%s: out of memory", label);
                    goto fail;
                }
                m->pieces = np;
                cap = nc;
            }
            memset(&m->pieces[m->n], 0, sizeof m->pieces[0]);
            m->n++;
            if (parse_piece(&sub, &m->pieces[m->n - 1]))
                goto fail;
        } else if (f == 2) {
            if (parse_trainer(&sub, m))
                goto fail;
        } else if (f == 3) {
            if (parse_normalizer(&sub, m))
                goto fail;
        }
    }
    if (m->n == 0) {
        ag_set_error("%s: SentencePiece model has no pieces (not a tokenizer.model?)", label);
        goto fail;
    }
    return 0;
fail:
    spm_model_free(m);
    return -1;
}

int spm_model_load(spm_model *m, const char *path)
{
    size_t n;
    char *d = read_whole_file(path, &n);
    if (!d)
        return -1;
    int rc = spm_model_parse(m, (const uint8_t *)d, n, path);
    free(d);
    return rc;
}

void spm_model_free(spm_model *m)
{
    for (size_t k = 0; k < m->n; k++)
        free(m->pieces[k].piece);
    free(m->pieces);
    m->pieces = NULL;
    m->n = 0;
}
