/* diffusers' UNet2DConditionModel on the graph API (anygpt/unet.h), as the KVs of the GGUF say
 * (written by tools/convert/unclip_unet_plan.c, where the KVs and the tensor naming are
 * documented: unet.dB.rJ.*, unet.uB.aJ.tK.q1.weight, ...).
 *
 * Forward pass (diffusers' semantics): the sinusoidal timestep embedding is computed on the
 * host in float32 exactly as get_timestep_embedding does, then Linear-SiLU-Linear; the class
 * embedding ("projection": Linear-SiLU-Linear of the class labels) is added; conv_in; down
 * blocks (resnets, Transformer2D after each resnet of a CrossAttn block, a stride-2 conv between
 * levels), each output kept as a skip; the mid block (resnet, transformer, resnet, outputs
 * scaled by mid_block_scale_factor); up blocks (each resnet reads its input concatenated with
 * the latest skip along the channels; nearest x2 + conv between levels); GroupNorm + SiLU +
 * conv_out. Attention heads: diffusers' num_attention_heads per block (the config's
 * attention_head_dim: SD 2.1's [5, 10, 20, 20], 64 wide each), head width = channels / heads.
 * Attention and softmax run in float32, so upcast_attention changes nothing here. */
#include "anygpt/unet.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "unet_blocks.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNET_MAX_BLOCKS 8
#define UNET_MAX_TENSORS 32768
#define UNET_MAX_SIDE 4096

struct ag_unet {
    ag_backend *be;
    ag_weights *w;
    ag_unet_info info;
    int n;
    int32_t bo[UNET_MAX_BLOCKS], layers[UNET_MAX_BLOCKS], down_attn[UNET_MAX_BLOCKS], up_attn[UNET_MAX_BLOCKS];
    int32_t heads[UNET_MAX_BLOCKS], tl[UNET_MAX_BLOCKS];
    int32_t tproj, tdim, groups, ds_pad, k_in, k_out;
    float eps, msf, freq_shift;
    bool flip, center;
    ag_ctx *ctx;
    ag_allocator *alloc;
    /* the graph of the call in progress (built per call, freed with its buffer after it) */
    ag_graph *g;
    ag_tensor *in_x, *in_t, *in_cls, *in_ctx, *out;
};

static void nm(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nm(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- hyper-parameters */

static bool kv_u32(ag_unet *u, const char *key, int32_t lo, int32_t hi, int32_t *out)
{
    char k[96];
    uint32_t v;
    nm(k, sizeof k, "seed-unclip.unet.%s", key);
    if (!ag_gguf_get_u32(ag_weights_gguf(u->w), k, &v) || v < (uint32_t)lo || v > (uint32_t)hi) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", ag_weights_path(u->w), k);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static bool kv_f32(ag_unet *u, const char *key, float lo, float *out)
{
    char k[96];
    nm(k, sizeof k, "seed-unclip.unet.%s", key);
    if (!ag_gguf_get_f32(ag_weights_gguf(u->w), k, out) || !isfinite(*out) || *out < lo) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", ag_weights_path(u->w), k);
        return false;
    }
    return true;
}

static bool kv_bool(ag_unet *u, const char *key, bool *out)
{
    char k[96];
    nm(k, sizeof k, "seed-unclip.unet.%s", key);
    if (!ag_gguf_get_bool(ag_weights_gguf(u->w), k, out)) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", ag_weights_path(u->w), k);
        return false;
    }
    return true;
}

/* An int32 array KV of u->n entries, each in [lo, hi]. */
static bool kv_arr(ag_unet *u, const char *key, int32_t lo, int32_t hi, int32_t *out)
{
    char k[96];
    nm(k, sizeof k, "seed-unclip.unet.%s", key);
    const ag_gguf *f = ag_weights_gguf(u->w);
    const int64_t i = ag_gguf_find_key(f, k);
    if (i < 0 || ag_gguf_kv_type(f, i) != AG_GGUF_ARRAY || ag_gguf_arr_type(f, i) != AG_GGUF_INT32 ||
        (u->n && ag_gguf_arr_n(f, i) != (uint64_t)u->n) || ag_gguf_arr_n(f, i) < 1 ||
        ag_gguf_arr_n(f, i) > UNET_MAX_BLOCKS) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s' (an int32 array, one entry per block)",
                     ag_weights_path(u->w), k);
        return false;
    }
    u->n = (int)ag_gguf_arr_n(f, i);
    memcpy(out, ag_gguf_arr_data(f, i), (size_t)u->n * sizeof *out);
    for (int j = 0; j < u->n; j++)
        if (out[j] < lo || out[j] > hi) {
            ag_set_error("%s: hyper-parameter '%s' entry %d = %d outside %d..%d", ag_weights_path(u->w), k, j, out[j],
                         lo, hi);
            return false;
        }
    return true;
}

static int read_hparams(ag_unet *u)
{
    ag_unet_info *in = &u->info;
    const ag_gguf *f = ag_weights_gguf(u->w);
    /* the scheduler's config (written beside the UNet by anygpt-convert seed-unclip) */
    const char *pt = ag_gguf_get_str(f, "seed-unclip.scheduler.prediction_type");
    in->v_prediction = pt && !strcmp(pt, "v_prediction");
    if (!kv_arr(u, "block_out_channels", 1, 65536, u->bo) || !kv_arr(u, "layers_per_block", 1, 64, u->layers) ||
        !kv_arr(u, "down_cross_attn", 0, 1, u->down_attn) || !kv_arr(u, "up_cross_attn", 0, 1, u->up_attn) ||
        !kv_arr(u, "attention_heads", 1, 65536, u->heads) || !kv_arr(u, "transformer_layers", 1, 64, u->tl) ||
        !kv_u32(u, "in_channels", 1, 4096, &in->in_channels) || !kv_u32(u, "out_channels", 1, 4096, &in->out_channels) ||
        !kv_u32(u, "sample_size", 0, 65536, &in->sample_size) ||
        !kv_u32(u, "cross_attention_dim", 1, AG_MAX_MODEL_DIM, &in->cross_attention_dim) ||
        !kv_u32(u, "context_len", 1, 65536, &in->context_len) ||
        !kv_u32(u, "class_embed_dim", 0, AG_MAX_MODEL_DIM, &in->class_embed_dim) ||
        !kv_u32(u, "time_proj_dim", 2, AG_MAX_MODEL_DIM, &u->tproj) ||
        !kv_u32(u, "time_embed_dim", 1, AG_MAX_MODEL_DIM, &u->tdim) ||
        !kv_u32(u, "norm_num_groups", 1, 65536, &u->groups) || !kv_u32(u, "downsample_padding", 0, 64, &u->ds_pad) ||
        !kv_u32(u, "conv_in_kernel", 1, 31, &u->k_in) || !kv_u32(u, "conv_out_kernel", 1, 31, &u->k_out) ||
        !kv_f32(u, "norm_eps", 0.0f, &u->eps) || !kv_f32(u, "mid_block_scale_factor", 1e-30f, &u->msf) ||
        !kv_f32(u, "freq_shift", -1e30f, &u->freq_shift) || !kv_bool(u, "flip_sin_to_cos", &u->flip) ||
        !kv_bool(u, "center_input_sample", &u->center))
        return -1;
    const char *path = ag_weights_path(u->w);
    /* the text context the pipeline passes is the one stored in the file, when it is there */
    const int64_t tc = ag_gguf_find_tensor(f, "text_context");
    if (tc >= 0) {
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, tc, ne);
        if (ne[0] != in->cross_attention_dim || ne[1] < 1 || ne[1] > 65536 || ne[2] != 1 || ne[3] != 1) {
            ag_set_error("%s: text_context [%lld, %lld] does not match cross_attention_dim %d", path,
                         (long long)ne[0], (long long)ne[1], in->cross_attention_dim);
            return -1;
        }
        in->context_len = (int32_t)ne[1];
    }
    if (u->k_in % 2 == 0 || u->k_out % 2 == 0 || !(u->eps > 0.0f) || u->tproj != u->bo[0] ||
        (float)(u->tproj / 2) <= u->freq_shift) {
        ag_set_error("%s: unsupported UNet hyper-parameters (odd kernels, norm_eps > 0, time_proj_dim = "
                     "block_out_channels[0], freq_shift < time_proj_dim / 2)", path);
        return -1;
    }
    for (int i = 0; i < u->n; i++)
        if (u->bo[i] % u->groups || u->heads[i] > u->bo[i]) {
            ag_set_error("%s: block %d: %d channels do not split into %d groups / %d heads", path, i, u->bo[i],
                         u->groups, u->heads[i]);
            return -1;
        }
    return 0;
}

/* ---------------------------------------------------------------- graph */

static ag_tensor *transformer(ub_ctx *b, ag_tensor *x, const char *name, int64_t ch, int64_t heads, int64_t tl,
                              ag_tensor *ctx_tok, int64_t ctx_len, int64_t cross)
{
    if (!x)
        return NULL;
    char n[96];
    const int64_t w = x->ne[0], h = x->ne[1], batch = x->ne[3], inner = heads * (ch / heads), tok = w * h;
    nm(n, sizeof n, "%s.norm", name);
    ag_tensor *t = ub_to_tokens(b, ub_group_norm(b, x, n, ch, 1e-6f, false)); /* Transformer2DModel: eps 1e-6 */
    nm(n, sizeof n, "%s.proj_in", name);
    t = ub_linear(b, t, n, ch, inner, true);
    for (int k = 0; k < tl && t; k++) {
        ag_tensor *q, *kk, *v, *a;
        /* self-attention */
        nm(n, sizeof n, "%s.t%d.n1", name, k);
        ag_tensor *y = ub_layer_norm(b, t, n, inner, 1e-5f);
        nm(n, sizeof n, "%s.t%d.q1", name, k);
        q = ub_linear(b, y, n, inner, inner, false);
        nm(n, sizeof n, "%s.t%d.k1", name, k);
        kk = ub_linear(b, y, n, inner, inner, false);
        nm(n, sizeof n, "%s.t%d.v1", name, k);
        v = ub_linear(b, y, n, inner, inner, false);
        a = ub_attention(b, q, kk, v, heads, tok, tok, batch);
        nm(n, sizeof n, "%s.t%d.o1", name, k);
        a = ub_linear(b, a, n, inner, inner, true);
        t = a ? ag_add(b->ctx, t, a) : NULL;
        /* cross-attention over the context */
        nm(n, sizeof n, "%s.t%d.n2", name, k);
        y = ub_layer_norm(b, t, n, inner, 1e-5f);
        nm(n, sizeof n, "%s.t%d.q2", name, k);
        q = ub_linear(b, y, n, inner, inner, false);
        nm(n, sizeof n, "%s.t%d.k2", name, k);
        kk = ub_linear(b, ctx_tok, n, cross, inner, false);
        nm(n, sizeof n, "%s.t%d.v2", name, k);
        v = ub_linear(b, ctx_tok, n, cross, inner, false);
        a = ub_attention(b, q, kk, v, heads, tok, ctx_len, batch);
        nm(n, sizeof n, "%s.t%d.o2", name, k);
        a = ub_linear(b, a, n, inner, inner, true);
        t = a ? ag_add(b->ctx, t, a) : NULL;
        /* feed-forward: GEGLU */
        nm(n, sizeof n, "%s.t%d.n3", name, k);
        y = ub_layer_norm(b, t, n, inner, 1e-5f);
        nm(n, sizeof n, "%s.t%d.ff1", name, k);
        y = ub_linear(b, y, n, inner, 8 * inner, true);
        y = y ? ag_geglu(b->ctx, y) : NULL;
        nm(n, sizeof n, "%s.t%d.ff2", name, k);
        y = ub_linear(b, y, n, 4 * inner, inner, true);
        t = y ? ag_add(b->ctx, t, y) : NULL;
    }
    nm(n, sizeof n, "%s.proj_out", name);
    t = ub_from_tokens(b, ub_linear(b, t, n, inner, ch, true), w, h, ch, batch);
    return t ? ag_add(b->ctx, t, x) : NULL;
}

static int build(ag_unet *u, int32_t batch, int32_t h, int32_t w)
{
    const ag_unet_info *in = &u->info;
    ag_ctx *ctx = u->ctx;
    ag_graph_free(u->g);
    u->g = NULL;
    ag_ctx_reset(ctx);
    ub_ctx b = {.ctx = ctx, .w = u->w, .be = u->be, .groups = u->groups, .eps = u->eps};
    ag_graph *g = ag_graph_new(ctx, UNET_MAX_TENSORS);
    if (!g)
        return -1;
    const int n = u->n;
    const int64_t td = u->tdim, L = in->context_len, cross = in->cross_attention_dim;
    u->in_x = ag_new_4d(ctx, AG_TYPE_F32, w, h, in->in_channels, batch);
    u->in_t = ag_new_2d(ctx, AG_TYPE_F32, u->tproj, 1);
    u->in_ctx = ag_new_2d(ctx, AG_TYPE_F32, cross, L * batch);
    u->in_cls = in->class_embed_dim ? ag_new_2d(ctx, AG_TYPE_F32, in->class_embed_dim, batch) : NULL;
    if (!u->in_x || !u->in_t || !u->in_ctx || (in->class_embed_dim && !u->in_cls))
        goto fail;
    ag_set_input(u->in_x);
    ag_set_input(u->in_t);
    ag_set_input(u->in_ctx);
    if (u->in_cls)
        ag_set_input(u->in_cls);

    /* time (+ class) embedding -> silu(emb) for every resnet's projection */
    ag_tensor *emb = ub_linear(&b, u->in_t, "unet.time_emb.l1", u->tproj, td, true);
    emb = ub_linear(&b, emb ? ag_silu(ctx, emb) : NULL, "unet.time_emb.l2", td, td, true);
    if (u->in_cls) {
        ag_tensor *c = ub_linear(&b, u->in_cls, "unet.class_emb.l1", in->class_embed_dim, td, true);
        c = ub_linear(&b, c ? ag_silu(ctx, c) : NULL, "unet.class_emb.l2", td, td, true);
        emb = c && emb ? ag_add(ctx, c, emb) : NULL; /* [td, batch] */
    }
    ag_tensor *temb = emb ? ag_silu(ctx, emb) : NULL;
    if (!temb) /* (a NULL time embedding would read as "none" in the resnets) */
        goto fail;

    ag_tensor *x = u->center ? ag_scale(ctx, u->in_x, 2.0f, -1.0f) : u->in_x;
    x = ub_conv(&b, x, "unet.conv_in", in->in_channels, u->bo[0], u->k_in, 1, u->k_in / 2, NULL);
    ag_tensor *skips[UNET_MAX_BLOCKS * 66];
    int n_skips = 0;
    skips[n_skips++] = x;
    char name[64];
    int64_t ch = u->bo[0];
    for (int i = 0; i < n && x; i++) {
        const int64_t cin = ch;
        ch = u->bo[i];
        for (int j = 0; j < u->layers[i]; j++) {
            nm(name, sizeof name, "unet.d%d.r%d", i, j);
            x = ub_resnet(&b, x, name, j ? ch : cin, ch, temb, td, 1.0f);
            if (u->down_attn[i]) {
                nm(name, sizeof name, "unet.d%d.a%d", i, j);
                x = transformer(&b, x, name, ch, u->heads[i], u->tl[i], u->in_ctx, L, cross);
            }
            skips[n_skips++] = x;
        }
        if (i != n - 1 && x) {
            nm(name, sizeof name, "unet.d%d.down", i);
            const int pad = u->ds_pad;
            if (pad == 0) /* Downsample2D with padding 0 pads right and bottom by one first */
                x = ag_pad(ctx, x, 0, 1, 0, 1, AG_PAD_ZERO);
            x = ub_conv(&b, x, name, ch, ch, 3, 2, pad, NULL);
            skips[n_skips++] = x;
        }
    }
    x = ub_resnet(&b, x, "unet.mid.r0", ch, ch, temb, td, u->msf);
    x = transformer(&b, x, "unet.mid.a0", ch, u->heads[n - 1], u->tl[n - 1], u->in_ctx, L, cross);
    x = ub_resnet(&b, x, "unet.mid.r1", ch, ch, temb, td, u->msf);
    for (int i = 0; i < n && x; i++) {
        const int r = n - 1 - i;
        const int64_t nl = u->layers[r] + 1;
        ch = u->bo[r];
        for (int j = 0; j < nl && x; j++) {
            if (n_skips == 0) {
                ag_set_error("%s: the up blocks want more skip connections than the down blocks make",
                             ag_weights_path(u->w));
                goto fail;
            }
            ag_tensor *s = skips[--n_skips];
            const int64_t cin = x->ne[2] + s->ne[2];
            x = ag_concat(ctx, x, s, 2);
            nm(name, sizeof name, "unet.u%d.r%d", i, j);
            x = ub_resnet(&b, x, name, cin, ch, temb, td, 1.0f);
            if (u->up_attn[i]) {
                nm(name, sizeof name, "unet.u%d.a%d", i, j);
                x = transformer(&b, x, name, ch, u->heads[r], u->tl[r], u->in_ctx, L, cross);
            }
        }
        if (i != n - 1) {
            nm(name, sizeof name, "unet.u%d.up", i);
            x = ub_upsample(&b, x, name, ch);
        }
    }
    x = ub_group_norm(&b, x, "unet.norm_out", u->bo[0], u->eps, true);
    x = ub_conv(&b, x, "unet.conv_out", u->bo[0], in->out_channels, u->k_out, 1, u->k_out / 2, NULL);
    if (!x || n_skips != 0 || ag_graph_expand(g, x) != 0) {
        if (x && n_skips != 0)
            ag_set_error("%s: the up blocks do not use every skip connection (%d left)", ag_weights_path(u->w),
                         n_skips);
        goto fail;
    }
    ag_set_output(x);
    u->out = x;
    if (ag_allocator_alloc_graph(u->alloc, g) != 0)
        goto fail;
    u->g = g;
    return 0;
fail:
    ag_graph_free(g);
    return -1;
}

/* The compute buffer goes back after every evaluation (planning again costs ~1 ms). */
static int release(ag_unet *u)
{
    return ub_release(&u->g, &u->alloc, u->be);
}

/* ---------------------------------------------------------------- API */

ag_unet *ag_unet_new(ag_backend *be, ag_weights *w)
{
    if (!be || !w) {
        ag_set_error("ag_unet_new: no backend or weights");
        return NULL;
    }
    ag_unet *u = calloc(1, sizeof *u);
    if (!u) {
        ag_set_error("out of memory");
        return NULL;
    }
    u->be = be;
    u->w = w;
    if (read_hparams(u) != 0)
        goto fail;
    u->ctx = ag_ctx_new(UNET_MAX_TENSORS);
    u->alloc = ag_allocator_new(be);
    if (!u->ctx || !u->alloc)
        goto fail;
    /* check every weight now: the graph at the smallest size the levels allow */
    const int32_t side = 1 << (u->n - 1);
    if (build(u, 1, side, side) != 0 || release(u) != 0)
        goto fail;
    ag_clear_error();
    return u;
fail:
    ag_unet_free(u);
    return NULL;
}

void ag_unet_free(ag_unet *u)
{
    if (!u)
        return;
    ag_graph_free(u->g);
    ag_allocator_free(u->alloc);
    ag_ctx_free(u->ctx);
    free(u);
}

const ag_unet_info *ag_unet_info_of(const ag_unet *u) { return &u->info; }

/* get_timestep_embedding in float32 as diffusers computes it: exponent -ln(10000) * i /
 * (half - shift), freq = exp(exponent), arg = t * freq, [sin | cos] (flipped to [cos | sin]). */
static void timestep_embedding(const ag_unet *u, float t, float *out)
{
    const int half = u->tproj / 2;
    const float l = (float)-log(10000.0);
    for (int i = 0; i < half; i++) {
        const float e = (l * (float)i) / ((float)half - u->freq_shift);
        const float arg = t * (float)exp((double)e);
        const float s = (float)sin((double)arg), c = (float)cos((double)arg);
        out[u->flip ? half + i : i] = s;
        out[u->flip ? i : half + i] = c;
    }
    if (u->tproj % 2)
        out[u->tproj - 1] = 0.0f;
}

int ag_unet_forward(ag_unet *u, const float *x, int32_t batch, int32_t h, int32_t w, float t,
                    const float *class_labels, const float *context, float *out)
{
    const ag_unet_info *in = &u->info;
    const int32_t mult = 1 << (u->n - 1);
    if (!x || !context || !out || (in->class_embed_dim && !class_labels)) {
        ag_set_error("unet: missing input, context%s or output", in->class_embed_dim ? ", class labels" : "");
        return -1;
    }
    if (batch < 1 || batch > 64 || h < mult || w < mult || h > UNET_MAX_SIDE || w > UNET_MAX_SIDE || h % mult ||
        w % mult || !isfinite(t)) {
        ag_set_error("unet: batch %d of %dx%d at t = %g: sides must be multiples of %d (up to %d), batch 1..64", batch,
                     h, w, (double)t, mult, UNET_MAX_SIDE);
        return -1;
    }
    if (!u->alloc || build(u, batch, h, w) != 0) {
        release(u);
        return -1;
    }
    float *temb = malloc((size_t)u->tproj * sizeof *temb);
    if (!temb) {
        ag_set_error("out of memory");
        return -1;
    }
    timestep_embedding(u, t, temb);
    const size_t nx = (size_t)batch * (size_t)in->in_channels * (size_t)h * (size_t)w;
    const size_t nc = (size_t)batch * (size_t)in->context_len * (size_t)in->cross_attention_dim;
    const size_t no = (size_t)batch * (size_t)in->out_channels * (size_t)h * (size_t)w;
    int rc = ag_tensor_set(u->in_x, x, 0, nx * sizeof(float)) != 0 ||
                     ag_tensor_set(u->in_t, temb, 0, (size_t)u->tproj * sizeof(float)) != 0 ||
                     ag_tensor_set(u->in_ctx, context, 0, nc * sizeof(float)) != 0 ||
                     (u->in_cls && ag_tensor_set(u->in_cls, class_labels, 0,
                                                 (size_t)batch * (size_t)in->class_embed_dim * sizeof(float)) != 0) ||
                     ag_backend_compute(u->be, u->g) != 0 || ag_tensor_get(u->out, out, 0, no * sizeof(float)) != 0
                 ? -1
                 : 0;
    free(temb);
    if (release(u) != 0)
        rc = -1;
    return rc;
}
