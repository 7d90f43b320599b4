/* A plan of plain tensor copies for a converter: each GGUF tensor is one checkpoint tensor with
 * the same elements in the same order (a torch (out, in) Linear weight is GGUF [in, out]), F32 or,
 * for matrices the caller marks, F16 when the output dtype is f16. Lookups check the torch shape
 * and name the key on any mismatch; used tensors are marked for ckpt_check_used(). */
#ifndef AG_CONVERT_TENSOR_PLAN_H
#define AG_CONVERT_TENSOR_PLAN_H

#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"

typedef struct {
    char gguf[96];
    const ckpt_tensor *src;
    int nd;
    int64_t ne[4]; /* ggml order */
    bool half;     /* F16 under --dtype f16 */
    int idx;
} tp_entry;

typedef struct {
    const ckpt *c;
    const char *what; /* names the checkpoint in errors, e.g. "seed_quantizer.pt" */
    bool *used;       /* per checkpoint tensor */
    tp_entry *e;
    size_t n, cap;
} tensor_plan;

int tp_init(tensor_plan *p, const ckpt *c, const char *what);
void tp_free(tensor_plan *p);

/* The tensor called key with this torch shape (nd dims, outermost first), marked used; NULL with
 * an error naming the key (missing, or its shape next to the expected one). */
const ckpt_tensor *tp_need(tensor_plan *p, const char *key, int nd, const int64_t *shape);
/* Append a GGUF tensor of ggml shape ne[0..nd) copied from src (NULL src: returns -1, the error
 * of the failed tp_need stands). numel must match. */
int tp_add(tensor_plan *p, const char *gguf, const ckpt_tensor *src, bool half, int nd, const int64_t *ne);
/* Declare every entry on w (F16 where half and wtype is F16). */
int tp_declare(tensor_plan *p, gs_writer *w, ag_type wtype);
/* After gs_begin: write every entry in order; progress lines on stderr unless quiet. */
int tp_write(const tensor_plan *p, gs_writer *w, bool quiet);

/* "[a, b, c]" */
void tp_shape_str(char *buf, size_t n, int nd, const int64_t *shape);

#endif
