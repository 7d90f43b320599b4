/* Internal to the seed-unclip unet/vae plans (unclip_unet_plan.c, unclip_vae_plan.c): a list of
 * GGUF tensors, each with its checkpoint source (diffusers key, torch shape checked when added),
 * declared to the writer in order and streamed later by unclip_part_write (unclip_plan.h), plus
 * the config.json readers both plans use (absent keys take diffusers' defaults; a key of the
 * wrong JSON type is an error naming it). */
#ifndef AG_CONVERT_UNCLIP_PART_H
#define AG_CONVERT_UNCLIP_PART_H

#include "unclip_plan.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char gguf[64];           /* <= 63 bytes: AG_MAX_NAME */
    const ckpt_tensor *src;
    int nd;
    int64_t ne[4];           /* ggml order */
    bool half;               /* written as F16 (a matrix or conv kernel with --dtype f16) */
    int idx;
} up_entry;

struct unclip_part {
    const ckpt *c;
    const char *what; /* "unet" / "vae": names the component in errors */
    bool *used;       /* per checkpoint tensor */
    up_entry *e;
    size_t n, cap;
    int64_t chunk_elems;
    bool quiet;
};

unclip_part *up_new(const ckpt *c, const char *what, const convert_opts *o);
/* The checkpoint tensor key with torch shape s (nd dims, outermost first); NULL with an error
 * naming the key when it is missing or shaped otherwise. Marks it used. */
const ckpt_tensor *up_need(unclip_part *p, const char *key, int nd, const int64_t *s);
/* Append a GGUF tensor (ne in ggml order, nd dims) read from src. */
int up_add(unclip_part *p, const char *gguf, const ckpt_tensor *src, int nd, const int64_t *ne, bool half);
/* Conv2d k x k (torch (cout, cin, k, k)) -> g.weight [k, k, cin, cout] (+ g.bias [cout]). */
int up_conv(unclip_part *p, const char *g, const char *key, int64_t cin, int64_t cout, int64_t k, bool bias);
/* nn.Linear (out, in) -> g.weight [in, out] (+ g.bias [out]); conv1x1: the source is a 1x1
 * Conv2d (out, in, 1, 1) used as the same matrix. */
int up_linear(unclip_part *p, const char *g, const char *key, int64_t in, int64_t out, bool bias, bool conv1x1);
/* GroupNorm / LayerNorm affine: g.weight, g.bias [ch] F32. */
int up_norm(unclip_part *p, const char *g, const char *key, int64_t ch);
/* diffusers ResnetBlock2D: norm1 conv1 [temb] norm2 conv2 [skip = conv_shortcut when cin != cout]. */
int up_resnet(unclip_part *p, const char *g, const char *key, int64_t cin, int64_t cout, int64_t temb);
/* Every checkpoint tensor used or ignorable (else an error naming it); then declare the entries. */
int up_declare(unclip_part *p, gs_writer *w, const convert_opts *o, bool (*ignorable)(const char *key));

/* ---- config.json ---- */
/* The member, or NULL when absent or JSON null. */
const json_value *cfg_get(const json_value *cfg, const char *key);
/* Integer member (absent/null: def); false with error when of another type or outside [lo, hi]. */
bool cfg_int(const json_value *cfg, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out);
bool cfg_num(const json_value *cfg, const char *key, double def, double *out);
bool cfg_bool(const json_value *cfg, const char *key, bool def, bool *out);
/* String member or def (absent/null -> def, which may be NULL); false with error on another type. */
bool cfg_str(const json_value *cfg, const char *key, const char *def, const char **out);
/* An int or a list of n ints (n known) -> out[n]; each in [lo, hi]. */
bool cfg_int_list(const json_value *cfg, const char *key, int64_t def, int n, int64_t lo, int64_t hi, int64_t *out);
/* Keys other than known[] (and "_"-prefixed metadata) are options we do not build: error naming one. */
bool cfg_known_only(const json_value *cfg, const char *const *known, const char *what);

#endif
