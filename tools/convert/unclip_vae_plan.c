/* seed-unclip, vae/: the decoder half of diffusers' AutoencoderKL (config.json + checkpoint,
 * diffusers keys, fp32/fp16, .safetensors/.bin) -> KVs seed-unclip.vae.* and tensors vae.* for
 * core/models/vae.c. The encoder (encoder.*, quant_conv.*) is known and dropped; any other
 * unknown, missing or mis-shaped tensor is an error naming it. The mid-block attention may be
 * stored under the current names (to_q, to_k, to_v, to_out.0) or the old ones (query, key,
 * value, proj_attn): both give the same GGUF.
 *
 * KVs (u32 unless said):
 *   seed-unclip.vae.latent_channels, out_channels, layers_per_block, norm_num_groups
 *   seed-unclip.vae.block_out_channels (int32 array, the config's order: the decoder runs it
 *     reversed)
 *   seed-unclip.vae.norm_eps (f32: 1e-6, the eps diffusers' Decoder gives every GroupNorm)
 *   seed-unclip.vae.scaling_factor (f32), shift_factor (f32, 0 when null): decode() is given
 *     latents / scaling_factor + shift_factor
 *   seed-unclip.vae.post_quant_conv, mid_attention (bool: use_post_quant_conv,
 *     mid_block_add_attention)
 *
 * GGUF tensor names (conv kernels [k, k, cin, cout] and matrices [in, out]: F16 with --dtype
 * f16; norms and biases F32 [ch]):
 *   vae.post_quant.*             <- post_quant_conv.* (a 1x1 conv kernel)
 *   vae.conv_in.*                <- decoder.conv_in.*
 *   vae.mid.r0|r1.R              <- decoder.mid_block.resnets.0|1.R
 *   vae.mid.a0.norm|q|k|v|o.*    <- decoder.mid_block.attentions.0.group_norm|to_q|to_k|to_v|to_out.0
 *                                   (or .group_norm|query|key|value|proj_attn)
 *   vae.uB.rJ.R, vae.uB.up.*     <- decoder.up_blocks.B.resnets.J.R, .upsamplers.0.conv.*
 *   vae.norm_out.*, vae.conv_out.* <- decoder.conv_norm_out.*, decoder.conv_out.*
 * resnet R: norm1 conv1 norm2 conv2 skip (<- conv_shortcut, where widths change). */
#include "unclip_part.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 8
#define VAE_NORM_EPS 1e-6f /* diffusers' Decoder: every GroupNorm, not configurable */

typedef struct {
    int n;
    int64_t bo[MAX_BLOCKS];
    int64_t lc, out_ch, layers, groups;
    double scaling, shift;
    bool post_quant, mid_attn;
} vcfg;

static const char *const KNOWN[] = {"in_channels", "out_channels", "down_block_types", "up_block_types",
                                    "block_out_channels", "layers_per_block", "act_fn", "latent_channels",
                                    "norm_num_groups", "sample_size", "scaling_factor", "shift_factor",
                                    "latents_mean", "latents_std", "force_upcast", "use_quant_conv",
                                    "use_post_quant_conv", "mid_block_add_attention", NULL};

static int read_config(const json_value *cfg, vcfg *v)
{
    memset(v, 0, sizeof *v);
    if (!cfg || cfg->kind != JSON_OBJECT) {
        ag_set_error("vae config.json is not a JSON object");
        return -1;
    }
    const char *cls, *act;
    if (!cfg_str(cfg, "_class_name", NULL, &cls))
        return -1;
    if (cls && strcmp(cls, "AutoencoderKL")) {
        ag_set_error("vae config.json describes a '%s', not an AutoencoderKL", cls);
        return -1;
    }
    if (!cfg_known_only(cfg, KNOWN, "vae") || !cfg_str(cfg, "act_fn", "silu", &act))
        return -1;
    if (strcmp(act, "silu") && strcmp(act, "swish")) {
        ag_set_error("vae config option 'act_fn' = '%s' is not supported (only silu)", act);
        return -1;
    }
    const json_value *bo = cfg_get(cfg, "block_out_channels"), *up = cfg_get(cfg, "up_block_types");
    if (!bo) { /* diffusers' default: one block of 64 */
        v->n = 1;
        v->bo[0] = 64;
    } else if (bo->kind != JSON_ARRAY || bo->n < 1 || bo->n > MAX_BLOCKS) {
        ag_set_error("vae config option 'block_out_channels' must be a list of 1..%d integers", MAX_BLOCKS);
        return -1;
    } else {
        v->n = (int)bo->n;
        for (int i = 0; i < v->n; i++) {
            const json_value *x = bo->items[i];
            if (x->kind != JSON_NUMBER || !x->is_int || x->i < 1 || x->i > 65536) {
                ag_set_error("vae config option 'block_out_channels' item %d must be an integer in 1..65536", i);
                return -1;
            }
            v->bo[i] = x->i;
        }
    }
    if (up && (up->kind != JSON_ARRAY || up->n != (size_t)v->n)) {
        ag_set_error("vae config: up_block_types and block_out_channels must have the same length");
        return -1;
    }
    for (size_t i = 0; up && i < up->n; i++) {
        const json_value *x = up->items[i];
        if (x->kind != JSON_STRING || strcmp(x->str, "UpDecoderBlock2D")) {
            ag_set_error("vae config option 'up_block_types': block type '%s' is not supported (only UpDecoderBlock2D)",
                         x->kind == JSON_STRING ? x->str : "(not a string)");
            return -1;
        }
    }
    if (!up && v->n != 1) {
        ag_set_error("vae config lacks up_block_types");
        return -1;
    }
    if (!cfg_int(cfg, "latent_channels", 4, 1, 4096, &v->lc) || !cfg_int(cfg, "out_channels", 3, 1, 4096, &v->out_ch) ||
        !cfg_int(cfg, "layers_per_block", 1, 1, 64, &v->layers) ||
        !cfg_int(cfg, "norm_num_groups", 32, 1, 65536, &v->groups) ||
        !cfg_num(cfg, "scaling_factor", 0.18215, &v->scaling) || !cfg_num(cfg, "shift_factor", 0.0, &v->shift) ||
        !cfg_bool(cfg, "use_post_quant_conv", true, &v->post_quant) ||
        !cfg_bool(cfg, "mid_block_add_attention", true, &v->mid_attn))
        return -1;
    if (!(v->scaling > 0)) {
        ag_set_error("vae config option 'scaling_factor' must be positive");
        return -1;
    }
    for (int i = 0; i < v->n; i++)
        if (v->bo[i] % v->groups) {
            ag_set_error("vae config: block_out_channels[%d] = %lld is not a multiple of norm_num_groups %lld", i,
                         (long long)v->bo[i], (long long)v->groups);
            return -1;
        }
    return 0;
}

/* The attention projection under the current name, else the old one. */
static int attn_linear(unclip_part *p, const char *g, const char *cur, const char *old, int64_t ch)
{
    char k[160], ko[160];
    cv_nm(k, sizeof k, "decoder.mid_block.attentions.0.%s.weight", cur);
    cv_nm(ko, sizeof ko, "decoder.mid_block.attentions.0.%s.weight", old);
    const bool use_old = !ckpt_find(p->c, k) && ckpt_find(p->c, ko);
    cv_nm(k, sizeof k, "decoder.mid_block.attentions.0.%s", use_old ? old : cur);
    return up_linear(p, g, k, ch, ch, true, false);
}

static int build(unclip_part *p, const vcfg *v)
{
    char g[64], k[160];
    const int n = v->n;
    const int64_t ch = v->bo[n - 1];
    if (v->post_quant && up_conv(p, "vae.post_quant", "post_quant_conv", v->lc, v->lc, 1, true))
        return -1;
    if (up_conv(p, "vae.conv_in", "decoder.conv_in", v->lc, ch, 3, true) ||
        up_resnet(p, "vae.mid.r0", "decoder.mid_block.resnets.0", ch, ch, 0))
        return -1;
    if (v->mid_attn &&
        (up_norm(p, "vae.mid.a0.norm", "decoder.mid_block.attentions.0.group_norm", ch) ||
         attn_linear(p, "vae.mid.a0.q", "to_q", "query", ch) || attn_linear(p, "vae.mid.a0.k", "to_k", "key", ch) ||
         attn_linear(p, "vae.mid.a0.v", "to_v", "value", ch) ||
         attn_linear(p, "vae.mid.a0.o", "to_out.0", "proj_attn", ch)))
        return -1;
    if (up_resnet(p, "vae.mid.r1", "decoder.mid_block.resnets.1", ch, ch, 0))
        return -1;
    int64_t out_ch = ch;
    for (int i = 0; i < n; i++) {
        const int64_t prev = out_ch;
        out_ch = v->bo[n - 1 - i];
        for (int j = 0; j <= v->layers; j++) {
            cv_nm(g, sizeof g, "vae.u%d.r%d", i, j);
            cv_nm(k, sizeof k, "decoder.up_blocks.%d.resnets.%d", i, j);
            if (up_resnet(p, g, k, j ? out_ch : prev, out_ch, 0))
                return -1;
        }
        if (i != n - 1) {
            cv_nm(g, sizeof g, "vae.u%d.up", i);
            cv_nm(k, sizeof k, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            if (up_conv(p, g, k, out_ch, out_ch, 3, true))
                return -1;
        }
    }
    return up_norm(p, "vae.norm_out", "decoder.conv_norm_out", v->bo[0]) ||
                   up_conv(p, "vae.conv_out", "decoder.conv_out", v->bo[0], v->out_ch, 3, true)
               ? -1
               : 0;
}

/* The encoder half: known, not needed to decode. */
static bool encoder_key(const char *k) { return !strncmp(k, "encoder.", 8) || !strncmp(k, "quant_conv.", 11); }

static int write_kvs(gs_writer *w, const vcfg *v)
{
    int32_t bo[MAX_BLOCKS];
    for (int i = 0; i < v->n; i++)
        bo[i] = (int32_t)v->bo[i];
#define U(k, x) gs_set_u32(w, "seed-unclip.vae." k, (uint32_t)(x))
#define F(k, x) gs_set_f32(w, "seed-unclip.vae." k, (float)(x))
    return gs_set_arr(w, "seed-unclip.vae.block_out_channels", AG_GGUF_INT32, bo, (uint64_t)v->n) ||
                   U("latent_channels", v->lc) || U("out_channels", v->out_ch) ||
                   U("layers_per_block", v->layers) || U("norm_num_groups", v->groups) ||
                   F("norm_eps", VAE_NORM_EPS) || F("scaling_factor", v->scaling) || F("shift_factor", v->shift) ||
                   gs_set_bool(w, "seed-unclip.vae.post_quant_conv", v->post_quant) ||
                   gs_set_bool(w, "seed-unclip.vae.mid_attention", v->mid_attn)
               ? -1
               : 0;
#undef U
#undef F
}

unclip_part *unclip_vae_plan(const json_value *config, const ckpt *c, gs_writer *w, const convert_opts *o)
{
    vcfg v;
    if (read_config(config, &v))
        return NULL;
    unclip_part *p = up_new(c, "vae", o);
    if (!p)
        return NULL;
    if (build(p, &v) || up_declare(p, w, o, encoder_key) || write_kvs(w, &v)) {
        unclip_part_free(p);
        return NULL;
    }
    return p;
}
