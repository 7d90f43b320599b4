/* The conversion plan shared by the SEANet codec converters (convert_speechtokenizer.c,
 * convert_encodec.c): a list of GGUF tensors, each with its torch source (a plain tensor, or a
 * weight-normed pair folded here) and torch shape. A converter fills the plan with its own key
 * naming (sp_add_conv / sp_add_res / sp_add_lstm / sp_add_alpha / sp_add), resolves it against
 * the checkpoint (sp_resolve), writes its own KVs, then streams the tensors (sp_write). */
#ifndef AG_CONVERT_SEANET_PLAN_H
#define AG_CONVERT_SEANET_PLAN_H

#include "ckpt.h"
#include "convert.h"
#include "gguf_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SP_PLAIN, SP_WNORM };

typedef struct {
    char gguf[96];
    char key[160]; /* torch key; for SP_WNORM the module prefix (…conv.conv) */
    int src_kind;  /* SP_PLAIN or SP_WNORM */
    int n_dims, idx;
    int64_t shape[3];         /* torch shape, outermost first */
    const ckpt_tensor *a, *b; /* plain: a; weight norm: a = g, b = v */
    bool half;                /* written as F16 (--dtype f16: conv and LSTM matrices; codebooks stay F32) */
} sp_entry;

typedef struct {
    sp_entry *e;
    size_t n, cap;
    /* Also write torch (1, C, 1) tensors (Snake alphas) as [1, C] rows. 1-D tensors outside the
     * LSTMs (conv biases) always are. */
    bool rows_1c1;
    int name_width; /* width of the GGUF name in the per-tensor progress line */
} sp_plan;

/* Append an entry (torch shape s0, s1, s2 of which n_dims count); NULL with error set. */
sp_entry *sp_add(sp_plan *p, const char *gguf, const char *key, int kind, int n_dims, int64_t s0, int64_t s1,
                 int64_t s2);
/* A weight-normed conv (weight + bias) at torch module `mod` (the one holding weight_g/v), GGUF
 * prefix `g`. transposed: v is (cin, cout, k). */
int sp_add_conv(sp_plan *p, const char *g, const char *mod, int64_t cin, int64_t cout, int64_t k, bool transposed);
/* Snake alpha (1, C, 1) at g.alpha <- mod.alpha */
int sp_add_alpha(sp_plan *p, const char *g, const char *mod, int64_t ch);
/* A SEANet residual block of ch channels, hidden h: [block.0 alpha], block.1 conv (kernel),
 * [block.2 alpha], block.3 conv (1), [shortcut conv (1)]. The convs' torch modules are
 * mod.block.J.<conv> (conv: "conv" for HF names, "conv.conv" for audiocraft's). */
int sp_add_res(sp_plan *p, const char *g, const char *mod, const char *conv, int64_t ch, int64_t h, int64_t kernel,
               bool snake, bool shortcut);
/* A stacked LSTM of dim h at g.lstm.* <- mod.lstm.*; bidir adds the _reverse direction. */
int sp_add_lstm(sp_plan *p, const char *g, const char *mod, int64_t h, int64_t layers, bool bidir);

/* Find every entry's sources (weight_g/weight_v, or parametrizations.weight.original0/1) and
 * check their shapes; a checkpoint tensor neither used nor ignorable is an error. */
int sp_resolve(sp_plan *p, const ckpt *c, bool (*ignorable)(const char *key));
/* Add the plan's tensors to w, then write the file: weight norm folded, F16 per o->wtype. */
int sp_write(sp_plan *p, gs_writer *w, const char *out, const convert_opts *o);
void sp_free(sp_plan *p);

#endif
