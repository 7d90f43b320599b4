/* diffusers' AutoencoderKL decoder on the graph API (anygpt/unet.h), as the KVs of the GGUF say
 * (written by tools/convert/unclip_vae_plan.c, where the KVs and the tensor naming are
 * documented: vae.conv_in.*, vae.mid.a0.q.weight, vae.uB.rJ.*, ...).
 *
 * decode(latents / scaling_factor + shift_factor): post_quant_conv (1x1) -> conv_in -> mid block
 * (resnet, single-head attention over all pixels with the full channel width, resnet) -> up
 * blocks (layers_per_block + 1 resnets, a 1x1 shortcut where the width changes, nearest x2 + 3x3
 * conv between levels) -> GroupNorm + SiLU -> conv_out. Every GroupNorm uses norm_eps (1e-6:
 * what diffusers' Decoder fixes). The uint8 image follows diffusers' VaeImageProcessor
 * postprocess to PIL: (x * 0.5 + 0.5).clamp(0, 1) * 255 in float32, rounded half to even.
 *
 * Memory: one graph per decode, its buffer given back after it; the planner frees each feature
 * map after its last reader, and the resnets read their input for the shortcut before the norm,
 * so the widest maps (768x768) never coexist more than needed: ~1.7 GB of activations at
 * 768x768. */
#include "anygpt/unet.h"
#include "anygpt/error.h"
#include "unet_blocks.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAE_MAX_BLOCKS 8
#define VAE_MAX_TENSORS 4096
#define VAE_MAX_SIDE 1024 /* latent side: 8192 pixels */

struct ag_vae_decoder {
    ag_backend *be;
    ag_weights *w;
    ag_vae_info info;
    int n;
    int32_t bo[VAE_MAX_BLOCKS];
    int32_t out_ch, layers, groups;
    float eps, shift;
    bool post_quant, mid_attn;
    ag_ctx *ctx;
    ag_allocator *alloc;
    ag_graph *g; /* built per decode, freed with its buffer after it */
    ag_tensor *in, *out;
};

static void nm(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void nm(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static int bad_kv(const ag_vae_decoder *v, const char *key)
{
    ag_set_error("%s: missing or invalid hyper-parameter 'seed-unclip.vae.%s'", ag_weights_path(v->w), key);
    return -1;
}

static int read_hparams(ag_vae_decoder *v)
{
    const ag_gguf *f = ag_weights_gguf(v->w);
    ag_vae_info *in = &v->info;
    const int64_t i = ag_gguf_find_key(f, "seed-unclip.vae.block_out_channels");
    if (i < 0 || ag_gguf_kv_type(f, i) != AG_GGUF_ARRAY || ag_gguf_arr_type(f, i) != AG_GGUF_INT32 ||
        ag_gguf_arr_n(f, i) < 1 || ag_gguf_arr_n(f, i) > VAE_MAX_BLOCKS)
        return bad_kv(v, "block_out_channels");
    v->n = (int)ag_gguf_arr_n(f, i);
    memcpy(v->bo, ag_gguf_arr_data(f, i), (size_t)v->n * sizeof *v->bo);
    uint32_t lc, oc, layers, groups;
    if (!ag_gguf_get_u32(f, "seed-unclip.vae.latent_channels", &lc) || lc < 1 || lc > 4096)
        return bad_kv(v, "latent_channels");
    if (!ag_gguf_get_u32(f, "seed-unclip.vae.out_channels", &oc) || oc < 1 || oc > 4096)
        return bad_kv(v, "out_channels");
    if (!ag_gguf_get_u32(f, "seed-unclip.vae.layers_per_block", &layers) || layers < 1 || layers > 64)
        return bad_kv(v, "layers_per_block");
    if (!ag_gguf_get_u32(f, "seed-unclip.vae.norm_num_groups", &groups) || groups < 1 || groups > 65536)
        return bad_kv(v, "norm_num_groups");
    if (!ag_gguf_get_f32(f, "seed-unclip.vae.norm_eps", &v->eps) || !(v->eps > 0.0f) || !isfinite(v->eps))
        return bad_kv(v, "norm_eps");
    if (!ag_gguf_get_f32(f, "seed-unclip.vae.scaling_factor", &in->scaling_factor) || !(in->scaling_factor > 0.0f) ||
        !isfinite(in->scaling_factor))
        return bad_kv(v, "scaling_factor");
    if (!ag_gguf_get_f32(f, "seed-unclip.vae.shift_factor", &v->shift) || !isfinite(v->shift))
        return bad_kv(v, "shift_factor");
    if (!ag_gguf_get_bool(f, "seed-unclip.vae.post_quant_conv", &v->post_quant))
        return bad_kv(v, "post_quant_conv");
    if (!ag_gguf_get_bool(f, "seed-unclip.vae.mid_attention", &v->mid_attn))
        return bad_kv(v, "mid_attention");
    in->latent_channels = (int32_t)lc;
    in->scale_factor = 1 << (v->n - 1);
    v->out_ch = (int32_t)oc;
    v->layers = (int32_t)layers;
    v->groups = (int32_t)groups;
    for (int b = 0; b < v->n; b++)
        if (v->bo[b] < 1 || v->bo[b] > 65536 || v->bo[b] % v->groups) {
            ag_set_error("%s: block_out_channels[%d] = %d does not split into %d groups", ag_weights_path(v->w), b,
                         v->bo[b], v->groups);
            return -1;
        }
    return 0;
}

/* The mid-block attention: GroupNorm, one head over all h*w pixels with the full width, out
 * projection, + residual. */
static ag_tensor *mid_attention(ub_ctx *b, ag_tensor *x, int64_t ch)
{
    if (!x)
        return NULL;
    const int64_t w = x->ne[0], h = x->ne[1];
    ag_tensor *t = ub_to_tokens(b, ub_group_norm(b, x, "vae.mid.a0.norm", ch, b->eps, false));
    ag_tensor *q = ub_linear(b, t, "vae.mid.a0.q", ch, ch, true);
    ag_tensor *k = ub_linear(b, t, "vae.mid.a0.k", ch, ch, true);
    ag_tensor *v = ub_linear(b, t, "vae.mid.a0.v", ch, ch, true);
    ag_tensor *a = ub_linear(b, ub_attention(b, q, k, v, 1, w * h, w * h, 1), "vae.mid.a0.o", ch, ch, true);
    a = ub_from_tokens(b, a, w, h, ch, 1);
    return a ? ag_add(b->ctx, a, x) : NULL;
}

static int build(ag_vae_decoder *v, int32_t h, int32_t w)
{
    const ag_vae_info *in = &v->info;
    ag_ctx *ctx = v->ctx;
    ag_graph_free(v->g);
    v->g = NULL;
    ag_ctx_reset(ctx);
    ub_ctx b = {.ctx = ctx, .w = v->w, .be = v->be, .groups = v->groups, .eps = v->eps};
    ag_graph *g = ag_graph_new(ctx, VAE_MAX_TENSORS);
    if (!g)
        return -1;
    const int n = v->n;
    const int64_t lc = in->latent_channels;
    v->in = ag_new_4d(ctx, AG_TYPE_F32, w, h, lc, 1);
    if (!v->in)
        goto fail;
    ag_set_input(v->in);
    ag_tensor *x = ag_scale(ctx, v->in, 1.0f / in->scaling_factor, v->shift);
    if (v->post_quant)
        x = ub_conv(&b, x, "vae.post_quant", lc, lc, 1, 1, 0, NULL);
    int64_t ch = v->bo[n - 1];
    x = ub_conv(&b, x, "vae.conv_in", lc, ch, 3, 1, 1, NULL);
    x = ub_resnet(&b, x, "vae.mid.r0", ch, ch, NULL, 0, 1.0f);
    if (v->mid_attn)
        x = mid_attention(&b, x, ch);
    x = ub_resnet(&b, x, "vae.mid.r1", ch, ch, NULL, 0, 1.0f);
    char name[64];
    for (int i = 0; i < n && x; i++) {
        const int64_t prev = ch;
        ch = v->bo[n - 1 - i];
        for (int j = 0; j <= v->layers; j++) {
            nm(name, sizeof name, "vae.u%d.r%d", i, j);
            x = ub_resnet(&b, x, name, j ? ch : prev, ch, NULL, 0, 1.0f);
        }
        if (i != n - 1) {
            nm(name, sizeof name, "vae.u%d.up", i);
            x = ub_upsample(&b, x, name, ch);
        }
    }
    x = ub_group_norm(&b, x, "vae.norm_out", v->bo[0], v->eps, true);
    x = ub_conv(&b, x, "vae.conv_out", v->bo[0], v->out_ch, 3, 1, 1, NULL);
    if (!x || ag_graph_expand(g, x) != 0)
        goto fail;
    ag_set_output(x);
    v->out = x;
    if (ag_allocator_alloc_graph(v->alloc, g) != 0)
        goto fail;
    v->g = g;
    return 0;
fail:
    ag_graph_free(g);
    return -1;
}

/* The compute buffer goes back after every decode (one per image: ~1.7 GB at 768x768). */
static int release(ag_vae_decoder *v)
{
    return ub_release(&v->g, &v->alloc, v->be);
}

ag_vae_decoder *ag_vae_decoder_new(ag_backend *be, ag_weights *w)
{
    if (!be || !w) {
        ag_set_error("ag_vae_decoder_new: no backend or weights");
        return NULL;
    }
    ag_vae_decoder *v = calloc(1, sizeof *v);
    if (!v) {
        ag_set_error("out of memory");
        return NULL;
    }
    v->be = be;
    v->w = w;
    if (read_hparams(v) != 0 || !(v->ctx = ag_ctx_new(VAE_MAX_TENSORS)) || !(v->alloc = ag_allocator_new(be)))
        goto fail;
    /* check every weight now (a 1x1 latent), then give the memory back */
    if (build(v, 1, 1) != 0 || release(v) != 0)
        goto fail;
    ag_clear_error();
    return v;
fail:
    ag_vae_decoder_free(v);
    return NULL;
}

void ag_vae_decoder_free(ag_vae_decoder *v)
{
    if (!v)
        return;
    ag_graph_free(v->g);
    ag_allocator_free(v->alloc);
    ag_ctx_free(v->ctx);
    free(v);
}

const ag_vae_info *ag_vae_info_of(const ag_vae_decoder *v) { return &v->info; }

int ag_vae_decode_f32(ag_vae_decoder *v, const float *latents, int32_t h, int32_t w, float *out)
{
    if (!latents || !out) {
        ag_set_error("vae: missing latents or output");
        return -1;
    }
    if (h < 1 || w < 1 || h > VAE_MAX_SIDE || w > VAE_MAX_SIDE) {
        ag_set_error("vae: latent of %dx%d (1..%d a side)", h, w, VAE_MAX_SIDE);
        return -1;
    }
    if (!v->alloc || build(v, h, w) != 0) {
        release(v);
        return -1;
    }
    const size_t nin = (size_t)v->info.latent_channels * (size_t)h * (size_t)w;
    const size_t nout = (size_t)ag_nelements(v->out);
    int rc = ag_tensor_set(v->in, latents, 0, nin * sizeof(float)) != 0 || ag_backend_compute(v->be, v->g) != 0 ||
                     ag_tensor_get(v->out, out, 0, nout * sizeof(float)) != 0
                 ? -1
                 : 0;
    if (release(v) != 0)
        rc = -1;
    return rc;
}

int ag_vae_decode(ag_vae_decoder *v, const float *latents, int32_t h, int32_t w, uint8_t *rgb)
{
    if (!rgb) {
        ag_set_error("vae: missing output");
        return -1;
    }
    if (v->out_ch != 3) {
        ag_set_error("%s: the decoder makes %d channels, not RGB", ag_weights_path(v->w), v->out_ch);
        return -1;
    }
    const int64_t s = v->info.scale_factor, oh = (int64_t)h * s, ow = (int64_t)w * s;
    if (h < 1 || w < 1 || h > VAE_MAX_SIDE || w > VAE_MAX_SIDE) {
        ag_set_error("vae: latent of %dx%d (1..%d a side)", h, w, VAE_MAX_SIDE);
        return -1;
    }
    float *img = malloc((size_t)(3 * oh * ow) * sizeof *img);
    if (!img) {
        ag_set_error("out of memory");
        return -1;
    }
    int rc = ag_vae_decode_f32(v, latents, h, w, img);
    if (rc == 0) {
        const int64_t plane = oh * ow;
        for (int64_t p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++) {
                /* torch: (x * 0.5 + 0.5).clamp(0, 1); numpy float32: * 255, round half to even */
                float y = img[c * plane + p] * 0.5f + 0.5f;
                y = y > 0.0f ? (y < 1.0f ? y : 1.0f) : 0.0f; /* NaN -> 0 */
                rgb[p * 3 + c] = (uint8_t)nearbyintf(y * 255.0f);
            }
    }
    free(img);
    return rc;
}
