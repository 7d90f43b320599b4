/* seed-unclip, unet/: diffusers' UNet2DConditionModel (config.json + checkpoint, diffusers keys,
 * fp32/fp16, .safetensors/.bin) -> KVs seed-unclip.unet.* and tensors unet.* for
 * core/models/unet.c. The config is resolved as diffusers does (absent keys take its defaults;
 * attention_head_dim is the number of heads per block unless num_attention_heads is given, the
 * naming quirk UNet2DConditionModel keeps); options we do not build are refused by name, as is
 * any config key we do not know. Every checkpoint tensor is checked by name and shape; a missing,
 * mis-shaped or unknown one is an error naming it.
 *
 * KVs (u32 unless said; arrays are int32, one entry per down block in down order):
 *   seed-unclip.unet.in_channels, out_channels, sample_size (0 when the config has none)
 *   seed-unclip.unet.block_out_channels[n], layers_per_block[n]
 *   seed-unclip.unet.down_cross_attn[n] (1: CrossAttnDownBlock2D, 0: DownBlock2D)
 *   seed-unclip.unet.up_cross_attn[n]   (in up order; 1: CrossAttnUpBlock2D, 0: UpBlock2D)
 *   seed-unclip.unet.attention_heads[n] (diffusers' num_attention_heads per down block; up blocks
 *     and the mid block use them reversed / the last, as diffusers does)
 *   seed-unclip.unet.transformer_layers[n] (same indexing)
 *   seed-unclip.unet.cross_attention_dim, context_len (77: CLIP's text positions; the core takes
 *     the length of the file's text_context tensor instead when there is one), class_embed_dim
 *     (projection input, 0: no class embedding)
 *   seed-unclip.unet.time_proj_dim (= block_out_channels[0]), time_embed_dim
 *   seed-unclip.unet.flip_sin_to_cos (bool), freq_shift (f32), center_input_sample (bool)
 *   seed-unclip.unet.norm_num_groups, norm_eps (f32), mid_block_scale_factor (f32),
 *     downsample_padding, conv_in_kernel, conv_out_kernel
 *   seed-unclip.unet.use_linear_projection, upcast_attention (bool; informational: 1x1 conv and
 *     linear projections are the same matrix, and attention runs in float32 either way)
 *
 * GGUF tensor names (conv kernels [k, k, cin, cout], matrices [in, out]: F16 with --dtype f16;
 * norms and biases F32 [ch]):
 *   unet.conv_in.*                <- conv_in.*
 *   unet.time_emb.l1|l2.*         <- time_embedding.linear_1|2.*
 *   unet.class_emb.l1|l2.*        <- class_embedding.linear_1|2.*
 *   unet.dB.rJ.R                  <- down_blocks.B.resnets.J.R
 *   unet.dB.aJ.T                  <- down_blocks.B.attentions.J.T
 *   unet.dB.down.*                <- down_blocks.B.downsamplers.0.conv.*
 *   unet.mid.r0|r1.R, unet.mid.a0.T <- mid_block.resnets.0|1.R, mid_block.attentions.0.T
 *   unet.uB.rJ.R, unet.uB.aJ.T    <- up_blocks.B.resnets.J.R, up_blocks.B.attentions.J.T
 *   unet.uB.up.*                  <- up_blocks.B.upsamplers.0.conv.*
 *   unet.norm_out.*, unet.conv_out.* <- conv_norm_out.*, conv_out.*
 * resnet R: norm1 conv1 temb(<- time_emb_proj) norm2 conv2 skip(<- conv_shortcut, when widths
 * change); transformer T: norm proj_in proj_out (matrices, from Linear or 1x1 Conv2d) and per
 * transformer block K: tK.n1|n2|n3 (<- transformer_blocks.K.norm1|2|3), tK.q1 k1 v1 o1 (<- attn1.to_q
 * to_k to_v to_out.0), tK.q2 k2 v2 o2 (<- attn2.*), tK.ff1 (<- ff.net.0.proj), tK.ff2 (<- ff.net.2).
 * The longest, unet.u3.a2.t0.ff1.weight, is far below the 63-byte limit. */
#include "unclip_part.h"

#include "anygpt/error.h"
#include "anygpt/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 8
#define CONTEXT_LEN 77

typedef struct {
    int n;
    int64_t bo[MAX_BLOCKS], layers[MAX_BLOCKS], heads[MAX_BLOCKS], tl[MAX_BLOCKS];
    int32_t down_attn[MAX_BLOCKS], up_attn[MAX_BLOCKS];
    int64_t in_ch, out_ch, sample, cross, time_dim, class_dim, groups, ds_pad, k_in, k_out;
    double eps, msf, shift;
    bool flip, center, linear, upcast;
} ucfg;

static const char *const KNOWN[] = {
    "sample_size", "in_channels", "out_channels", "center_input_sample", "flip_sin_to_cos", "freq_shift",
    "down_block_types", "mid_block_type", "up_block_types", "only_cross_attention", "block_out_channels",
    "layers_per_block", "downsample_padding", "mid_block_scale_factor", "dropout", "act_fn", "norm_num_groups",
    "norm_eps", "cross_attention_dim", "transformer_layers_per_block", "reverse_transformer_layers_per_block",
    "encoder_hid_dim", "encoder_hid_dim_type", "attention_head_dim", "num_attention_heads", "dual_cross_attention",
    "use_linear_projection", "class_embed_type", "addition_embed_type", "addition_time_embed_dim",
    "num_class_embeds", "upcast_attention", "resnet_time_scale_shift", "resnet_skip_time_act",
    "resnet_out_scale_factor", "time_embedding_type", "time_embedding_dim", "time_embedding_act_fn",
    "timestep_post_act", "time_cond_proj_dim", "conv_in_kernel", "conv_out_kernel",
    "projection_class_embeddings_input_dim", "attention_type", "class_embeddings_concat",
    "mid_block_only_cross_attention", "cross_attention_norm", "addition_embed_type_num_heads", NULL};

/* key must be absent or null (an option we do not build) */
static bool refuse_set(const json_value *cfg, const char *key)
{
    if (!cfg_get(cfg, key))
        return true;
    ag_set_error("unet config option '%s' is set: not supported (only null)", key);
    return false;
}

static bool refuse_true(const json_value *cfg, const char *key)
{
    const json_value *v = cfg_get(cfg, key);
    if (!v || (v->kind == JSON_BOOL && !v->b))
        return true;
    if (v->kind == JSON_ARRAY) { /* a per-block list: every entry false */
        bool all_false = true;
        for (size_t i = 0; i < v->n; i++)
            all_false = all_false && v->items[i]->kind == JSON_BOOL && !v->items[i]->b;
        if (all_false)
            return true;
    }
    ag_set_error("unet config option '%s' is not supported (only false)", key);
    return false;
}

/* string option: absent/null means def; anything but one of the allowed values is refused */
static bool only_str(const json_value *cfg, const char *key, const char *def, const char *a, const char *b)
{
    const char *v;
    if (!cfg_str(cfg, key, def, &v))
        return false;
    if ((v == NULL && (a == NULL || b == NULL)) || (v && ((a && !strcmp(v, a)) || (b && !strcmp(v, b)))))
        return true;
    ag_set_error("unet config option '%s' = '%s' is not supported (only %s%s%s)", key, v ? v : "null",
                 a ? a : "null", b ? " or " : "", b ? b : "");
    return false;
}

static bool block_types(const json_value *cfg, const char *key, const char *attn, const char *plain, int *n,
                        int32_t *out)
{
    const json_value *v = cfg_get(cfg, key);
    const char *def_down[] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
    const char *def_up[] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
    if (!v) { /* diffusers' defaults */
        *n = 4;
        for (int i = 0; i < 4; i++)
            out[i] = !strcmp(strcmp(key, "down_block_types") ? def_up[i] : def_down[i], attn);
        return true;
    }
    if (v->kind != JSON_ARRAY || v->n < 1 || v->n > MAX_BLOCKS) {
        ag_set_error("unet config option '%s' must be a list of 1..%d block types", key, MAX_BLOCKS);
        return false;
    }
    *n = (int)v->n;
    for (size_t i = 0; i < v->n; i++) {
        const char *s = v->items[i]->kind == JSON_STRING ? v->items[i]->str : "";
        if (!strncmp(s, "UNetRes", 7)) /* diffusers strips this prefix */
            s += 7;
        if (!strcmp(s, attn) || !strcmp(s, plain)) {
            out[i] = !strcmp(s, attn);
            continue;
        }
        ag_set_error("unet config option '%s': block type '%s' is not supported (only %s, %s)", key,
                     v->items[i]->kind == JSON_STRING ? v->items[i]->str : "(not a string)", attn, plain);
        return false;
    }
    return true;
}

static int read_config(const json_value *cfg, ucfg *u)
{
    memset(u, 0, sizeof *u);
    if (!cfg || cfg->kind != JSON_OBJECT) {
        ag_set_error("unet config.json is not a JSON object");
        return -1;
    }
    const char *cls;
    if (!cfg_str(cfg, "_class_name", NULL, &cls))
        return -1;
    if (cls && strcmp(cls, "UNet2DConditionModel")) {
        ag_set_error("unet config.json describes a '%s', not a UNet2DConditionModel", cls);
        return -1;
    }
    if (!cfg_known_only(cfg, KNOWN, "unet"))
        return -1;
    /* options we do not build */
    if (!refuse_true(cfg, "only_cross_attention") || !refuse_true(cfg, "mid_block_only_cross_attention") ||
        !refuse_true(cfg, "dual_cross_attention") || !refuse_true(cfg, "class_embeddings_concat") ||
        !refuse_set(cfg, "reverse_transformer_layers_per_block") || !refuse_set(cfg, "encoder_hid_dim") ||
        !refuse_set(cfg, "encoder_hid_dim_type") || !refuse_set(cfg, "num_attention_heads") ||
        !refuse_set(cfg, "addition_embed_type") || !refuse_set(cfg, "num_class_embeds") ||
        !refuse_set(cfg, "time_embedding_act_fn") || !refuse_set(cfg, "timestep_post_act") ||
        !refuse_set(cfg, "time_cond_proj_dim") || !refuse_set(cfg, "cross_attention_norm") ||
        !only_str(cfg, "mid_block_type", "UNetMidBlock2DCrossAttn", "UNetMidBlock2DCrossAttn", NULL) ||
        !only_str(cfg, "act_fn", "silu", "silu", "swish") ||
        !only_str(cfg, "resnet_time_scale_shift", "default", "default", NULL) ||
        !only_str(cfg, "time_embedding_type", "positional", "positional", NULL) ||
        !only_str(cfg, "attention_type", "default", "default", NULL) ||
        !only_str(cfg, "class_embed_type", NULL, NULL, "projection"))
        return -1;
    const json_value *mid = json_get(cfg, "mid_block_type");
    if (mid && mid->kind == JSON_NULL) {
        ag_set_error("unet config option 'mid_block_type' = null (no mid block) is not supported");
        return -1;
    }
    int n_up;
    if (!block_types(cfg, "down_block_types", "CrossAttnDownBlock2D", "DownBlock2D", &u->n, u->down_attn) ||
        !block_types(cfg, "up_block_types", "CrossAttnUpBlock2D", "UpBlock2D", &n_up, u->up_attn))
        return -1;
    const int n = u->n;
    const json_value *bo = cfg_get(cfg, "block_out_channels");
    if (n_up != n || (bo && (bo->kind != JSON_ARRAY || bo->n != (size_t)n))) {
        ag_set_error("unet config: down_block_types, up_block_types and block_out_channels must have the same length");
        return -1;
    }
    static const int64_t def_bo[4] = {320, 640, 1280, 1280};
    if (!bo && n != 4) {
        ag_set_error("unet config lacks block_out_channels");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const json_value *x = bo ? bo->items[i] : NULL;
        if (x && (x->kind != JSON_NUMBER || !x->is_int || x->i < 1 || x->i > 65536)) {
            ag_set_error("unet config option 'block_out_channels' item %d must be an integer in 1..65536", i);
            return -1;
        }
        u->bo[i] = x ? x->i : def_bo[i];
    }
    const char *cet;
    int64_t cross[MAX_BLOCKS], sample;
    if (!cfg_str(cfg, "class_embed_type", NULL, &cet) ||
        !cfg_int_list(cfg, "layers_per_block", 2, n, 1, 64, u->layers) ||
        !cfg_int_list(cfg, "attention_head_dim", 8, n, 1, 65536, u->heads) ||
        !cfg_int_list(cfg, "transformer_layers_per_block", 1, n, 1, 64, u->tl) ||
        !cfg_int_list(cfg, "cross_attention_dim", 1280, n, 1, 1 << 20, cross) ||
        !cfg_int(cfg, "in_channels", 4, 1, 4096, &u->in_ch) || !cfg_int(cfg, "out_channels", 4, 1, 4096, &u->out_ch) ||
        !cfg_int(cfg, "norm_num_groups", 32, 1, 65536, &u->groups) ||
        !cfg_int(cfg, "downsample_padding", 1, 0, 64, &u->ds_pad) ||
        !cfg_int(cfg, "conv_in_kernel", 3, 1, 31, &u->k_in) || !cfg_int(cfg, "conv_out_kernel", 3, 1, 31, &u->k_out) ||
        !cfg_int(cfg, "time_embedding_dim", 0, 1, 1 << 20, &u->time_dim) ||
        !cfg_num(cfg, "norm_eps", 1e-5, &u->eps) || !cfg_num(cfg, "mid_block_scale_factor", 1.0, &u->msf) ||
        !cfg_num(cfg, "freq_shift", 0.0, &u->shift) || !cfg_bool(cfg, "flip_sin_to_cos", true, &u->flip) ||
        !cfg_bool(cfg, "center_input_sample", false, &u->center) ||
        !cfg_bool(cfg, "use_linear_projection", false, &u->linear) ||
        !cfg_bool(cfg, "upcast_attention", false, &u->upcast))
        return -1;
    const json_value *ss = cfg_get(cfg, "sample_size");
    if (ss && ss->kind == JSON_ARRAY && ss->n == 2) /* (h, w): the info keeps h */
        ss = ss->items[0];
    if (ss && (ss->kind != JSON_NUMBER || !ss->is_int || ss->i < 1 || ss->i > 65536)) {
        ag_set_error("unet config option 'sample_size' must be an integer or a pair of integers");
        return -1;
    }
    sample = ss ? ss->i : 0;
    u->sample = sample;
    if (json_get(cfg, "norm_num_groups") && json_get(cfg, "norm_num_groups")->kind == JSON_NULL) {
        ag_set_error("unet config option 'norm_num_groups' = null (no output norm) is not supported");
        return -1;
    }
    for (int i = 1; i < n; i++)
        if (cross[i] != cross[0]) {
            ag_set_error("unet config option 'cross_attention_dim' differs between blocks: not supported");
            return -1;
        }
    u->cross = cross[0];
    if (u->k_in % 2 == 0 || u->k_out % 2 == 0) {
        ag_set_error("unet config: conv_in_kernel / conv_out_kernel must be odd");
        return -1;
    }
    if (!(u->eps > 0) || !(u->msf > 0) || u->shift >= (double)(u->bo[0] / 2)) {
        ag_set_error("unet config: norm_eps and mid_block_scale_factor must be positive, freq_shift below %lld",
                     (long long)(u->bo[0] / 2));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (u->bo[i] % u->groups) {
            ag_set_error("unet config: block_out_channels[%d] = %lld is not a multiple of norm_num_groups %lld", i,
                         (long long)u->bo[i], (long long)u->groups);
            return -1;
        }
        if (u->heads[i] > u->bo[i]) {
            ag_set_error("unet config: %lld attention heads for %lld channels in block %d", (long long)u->heads[i],
                         (long long)u->bo[i], i);
            return -1;
        }
    }
    if (u->time_dim == 0)
        u->time_dim = 4 * u->bo[0];
    if (u->bo[0] % 2) {
        ag_set_error("unet config: block_out_channels[0] (the timestep embedding width) must be even");
        return -1;
    }
    if (cet) {
        if (!cfg_int(cfg, "projection_class_embeddings_input_dim", 0, 1, 1 << 20, &u->class_dim))
            return -1;
        if (u->class_dim == 0) {
            ag_set_error("unet config: class_embed_type 'projection' needs projection_class_embeddings_input_dim");
            return -1;
        }
    }
    return 0;
}

/* Transformer2DModel at g <- key over ch channels (inner = heads * (ch / heads)). */
static int add_transformer(unclip_part *p, const ucfg *u, const char *g, const char *key, int64_t ch, int64_t heads,
                           int64_t tl)
{
    const int64_t inner = heads * (ch / heads);
    char gn[96], kn[256];
#define PK(gf, kf, ...) (cv_nm(gn, sizeof gn, "%s." gf, g, ##__VA_ARGS__), cv_nm(kn, sizeof kn, "%s." kf, key, ##__VA_ARGS__))
    if ((PK("norm", "norm"), up_norm(p, gn, kn, ch)) ||
        (PK("proj_in", "proj_in"), up_linear(p, gn, kn, ch, inner, true, !u->linear)))
        return -1;
    for (int t = 0; t < tl; t++) {
        static const char *const nrm[3][2] = {{"n1", "norm1"}, {"n2", "norm2"}, {"n3", "norm3"}};
        for (int a = 0; a < 2; a++) {
            const int64_t kv = a ? u->cross : inner;
            if ((PK("t%d.q%d", "transformer_blocks.%d.attn%d.to_q", t, a + 1), up_linear(p, gn, kn, inner, inner, false, false)) ||
                (PK("t%d.k%d", "transformer_blocks.%d.attn%d.to_k", t, a + 1), up_linear(p, gn, kn, kv, inner, false, false)) ||
                (PK("t%d.v%d", "transformer_blocks.%d.attn%d.to_v", t, a + 1), up_linear(p, gn, kn, kv, inner, false, false)) ||
                (PK("t%d.o%d", "transformer_blocks.%d.attn%d.to_out.0", t, a + 1),
                 up_linear(p, gn, kn, inner, inner, true, false)))
                return -1;
        }
        for (int i = 0; i < 3; i++) {
            cv_nm(gn, sizeof gn, "%s.t%d.%s", g, t, nrm[i][0]);
            cv_nm(kn, sizeof kn, "%s.transformer_blocks.%d.%s", key, t, nrm[i][1]);
            if (up_norm(p, gn, kn, inner))
                return -1;
        }
        if ((PK("t%d.ff1", "transformer_blocks.%d.ff.net.0.proj", t), up_linear(p, gn, kn, inner, 8 * inner, true, false)) ||
            (PK("t%d.ff2", "transformer_blocks.%d.ff.net.2", t), up_linear(p, gn, kn, 4 * inner, inner, true, false)))
            return -1;
    }
    if (PK("proj_out", "proj_out"), up_linear(p, gn, kn, inner, ch, true, !u->linear))
        return -1;
#undef PK
    return 0;
}

/* The module tree of UNet2DConditionModel (unet_2d_condition.py + get_down/mid/up_block). */
static int build(unclip_part *p, const ucfg *u)
{
    char g[64], k[160];
    const int n = u->n;
    const int64_t td = u->time_dim;
    if (up_conv(p, "unet.conv_in", "conv_in", u->in_ch, u->bo[0], u->k_in, true) ||
        up_linear(p, "unet.time_emb.l1", "time_embedding.linear_1", u->bo[0], td, true, false) ||
        up_linear(p, "unet.time_emb.l2", "time_embedding.linear_2", td, td, true, false))
        return -1;
    if (u->class_dim && (up_linear(p, "unet.class_emb.l1", "class_embedding.linear_1", u->class_dim, td, true, false) ||
                         up_linear(p, "unet.class_emb.l2", "class_embedding.linear_2", td, td, true, false)))
        return -1;
    int64_t out_ch = u->bo[0];
    for (int i = 0; i < n; i++) {
        const int64_t in_ch = out_ch;
        out_ch = u->bo[i];
        for (int j = 0; j < u->layers[i]; j++) {
            cv_nm(g, sizeof g, "unet.d%d.r%d", i, j);
            cv_nm(k, sizeof k, "down_blocks.%d.resnets.%d", i, j);
            if (up_resnet(p, g, k, j ? out_ch : in_ch, out_ch, td))
                return -1;
            if (u->down_attn[i]) {
                cv_nm(g, sizeof g, "unet.d%d.a%d", i, j);
                cv_nm(k, sizeof k, "down_blocks.%d.attentions.%d", i, j);
                if (add_transformer(p, u, g, k, out_ch, u->heads[i], u->tl[i]))
                    return -1;
            }
        }
        if (i != n - 1) {
            cv_nm(g, sizeof g, "unet.d%d.down", i);
            cv_nm(k, sizeof k, "down_blocks.%d.downsamplers.0.conv", i);
            if (up_conv(p, g, k, out_ch, out_ch, 3, true))
                return -1;
        }
    }
    const int64_t mc = u->bo[n - 1];
    if (up_resnet(p, "unet.mid.r0", "mid_block.resnets.0", mc, mc, td) ||
        add_transformer(p, u, "unet.mid.a0", "mid_block.attentions.0", mc, u->heads[n - 1], u->tl[n - 1]) ||
        up_resnet(p, "unet.mid.r1", "mid_block.resnets.1", mc, mc, td))
        return -1;
    out_ch = u->bo[n - 1];
    for (int i = 0; i < n; i++) {
        const int r = n - 1 - i; /* the down block this up block mirrors */
        const int64_t prev = out_ch, in_ch = u->bo[r > 0 ? r - 1 : 0];
        out_ch = u->bo[r];
        const int64_t nl = u->layers[r] + 1;
        for (int j = 0; j < nl; j++) {
            const int64_t skip = j == nl - 1 ? in_ch : out_ch, rin = j == 0 ? prev : out_ch;
            cv_nm(g, sizeof g, "unet.u%d.r%d", i, j);
            cv_nm(k, sizeof k, "up_blocks.%d.resnets.%d", i, j);
            if (up_resnet(p, g, k, rin + skip, out_ch, td))
                return -1;
            if (u->up_attn[i]) {
                cv_nm(g, sizeof g, "unet.u%d.a%d", i, j);
                cv_nm(k, sizeof k, "up_blocks.%d.attentions.%d", i, j);
                if (add_transformer(p, u, g, k, out_ch, u->heads[r], u->tl[r]))
                    return -1;
            }
        }
        if (i != n - 1) {
            cv_nm(g, sizeof g, "unet.u%d.up", i);
            cv_nm(k, sizeof k, "up_blocks.%d.upsamplers.0.conv", i);
            if (up_conv(p, g, k, out_ch, out_ch, 3, true))
                return -1;
        }
    }
    return up_norm(p, "unet.norm_out", "conv_norm_out", u->bo[0]) ||
                   up_conv(p, "unet.conv_out", "conv_out", u->bo[0], u->out_ch, u->k_out, true)
               ? -1
               : 0;
}

static int write_kvs(gs_writer *w, const ucfg *u)
{
    int32_t arr[6][MAX_BLOCKS];
    for (int i = 0; i < u->n; i++) {
        arr[0][i] = (int32_t)u->bo[i];
        arr[1][i] = (int32_t)u->layers[i];
        arr[2][i] = u->down_attn[i];
        arr[3][i] = u->up_attn[i];
        arr[4][i] = (int32_t)u->heads[i];
        arr[5][i] = (int32_t)u->tl[i];
    }
    static const char *const arr_keys[6] = {"block_out_channels", "layers_per_block", "down_cross_attn",
                                            "up_cross_attn",      "attention_heads",  "transformer_layers"};
    char key[96];
    for (int a = 0; a < 6; a++) {
        cv_nm(key, sizeof key, "seed-unclip.unet.%s", arr_keys[a]);
        if (gs_set_arr(w, key, AG_GGUF_INT32, arr[a], (uint64_t)u->n))
            return -1;
    }
#define U(k, v) gs_set_u32(w, "seed-unclip.unet." k, (uint32_t)(v))
#define B(k, v) gs_set_bool(w, "seed-unclip.unet." k, v)
#define F(k, v) gs_set_f32(w, "seed-unclip.unet." k, (float)(v))
    return U("in_channels", u->in_ch) || U("out_channels", u->out_ch) || U("sample_size", u->sample) ||
                   U("cross_attention_dim", u->cross) || U("context_len", CONTEXT_LEN) ||
                   U("class_embed_dim", u->class_dim) || U("time_proj_dim", u->bo[0]) ||
                   U("time_embed_dim", u->time_dim) || B("flip_sin_to_cos", u->flip) || F("freq_shift", u->shift) ||
                   B("center_input_sample", u->center) || U("norm_num_groups", u->groups) || F("norm_eps", u->eps) ||
                   F("mid_block_scale_factor", u->msf) || U("downsample_padding", u->ds_pad) ||
                   U("conv_in_kernel", u->k_in) || U("conv_out_kernel", u->k_out) ||
                   B("use_linear_projection", u->linear) || B("upcast_attention", u->upcast)
               ? -1
               : 0;
#undef U
#undef B
#undef F
}

unclip_part *unclip_unet_plan(const json_value *config, const ckpt *c, gs_writer *w, const convert_opts *o)
{
    ucfg u;
    if (read_config(config, &u))
        return NULL;
    unclip_part *p = up_new(c, "unet", o);
    if (!p)
        return NULL;
    if (build(p, &u) || up_declare(p, w, o, NULL) || write_kvs(w, &u)) {
        unclip_part_free(p);
        return NULL;
    }
    return p;
}
