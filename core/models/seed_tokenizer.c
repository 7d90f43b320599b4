/* The SEED image tokenizer (anygpt/seed_tokenizer.h): EVA ViT-g (eva_vit.c) -> ln_vision ->
 * causal Q-Former (qformer.c) -> encode_task_layer -> VQ argmin. One encode runs as several
 * graphs: the ViT in chunks of a few blocks, whose activations are handed on through two
 * persistent [width, tokens] buffers, then one graph for everything after the ViT; the abort
 * callback is polled before each, so a stop takes effect within a few blocks. */
#include "anygpt/seed_tokenizer.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "eva_vit.h"
#include "qformer.h"
#include "seed_common.h"
#include "seed_tokenizer_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_TENSORS 8192
#define ST_VIT_BLOCKS_PER_GRAPH 4 /* ViT-g: ~50 GFLOP, well under a second on 2 cores */
#define ST_MAX_LAYERS 256
#define ST_STATE_ALIGN 256 /* minStorageBufferOffsetAlignment on every known device */

struct ag_seed_tokenizer {
    ag_backend *be;
    ag_weights *w;
    ag_seed_tokenizer_info info;
    eva_vit vit;
    qformer qf;
    bool cross[ST_MAX_LAYERS];
    float ln_vision_eps, causal_mask;
    float mean[3], std[3];
    int n_vit_graphs;
    ag_ctx *ctx;
    ag_allocator *alloc;
    ag_graph *g;
    ag_buffer *state; /* two ViT activations [width, tokens] F32, at 0 and state_stride */
    size_t state_stride;
};

/* What one stage's graph reads and writes besides weights (NULL where the stage has none). */
typedef struct {
    ag_tensor *pixels, *mask;      /* inputs */
    ag_tensor *feat;               /* the ViT output the head reads */
    ag_tensor *h, *z, *codes;      /* head outputs */
} stage_io;

/* ---- hyper-parameters ---- */

static bool get_u32(const ag_gguf *f, const char *key, int32_t *out, int32_t lo, int32_t hi, const char *path)
{
    char k[96];
    uint32_t v;
    snprintf(k, sizeof k, "seed-tokenizer.%s", key);
    if (!ag_gguf_get_u32(f, k, &v) || v < (uint32_t)lo || v > (uint32_t)hi) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s' (%d..%d)", path, k, lo, hi);
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static bool get_f32(const ag_gguf *f, const char *key, float *out, bool positive, const char *path)
{
    char k[96];
    snprintf(k, sizeof k, "seed-tokenizer.%s", key);
    if (!ag_gguf_get_f32(f, k, out) || !isfinite(*out) || (positive ? !(*out > 0.0f) : *out > 0.0f)) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s'", path, k);
        return false;
    }
    return true;
}

/* A float array of 3 (the normalisation constants). */
static bool get_f32x3(const ag_gguf *f, const char *key, float out[3], const char *path)
{
    char k[96];
    snprintf(k, sizeof k, "seed-tokenizer.%s", key);
    const int64_t i = ag_gguf_find_key(f, k);
    if (i < 0 || ag_gguf_kv_type(f, i) != AG_GGUF_ARRAY || ag_gguf_arr_type(f, i) != AG_GGUF_FLOAT32 ||
        ag_gguf_arr_n(f, i) != 3) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s' (3 floats)", path, k);
        return false;
    }
    memcpy(out, ag_gguf_arr_data(f, i), 3 * sizeof(float));
    for (int c = 0; c < 3; c++) {
        if (!isfinite(out[c])) {
            ag_set_error("%s: hyper-parameter '%s' is not finite", path, k);
            return false;
        }
    }
    return true;
}

/* qformer.cross_attention_layers: strictly increasing layer indices, at least one. */
static int read_cross(ag_seed_tokenizer *m, const ag_gguf *f, const char *path)
{
    const char *k = "seed-tokenizer.qformer.cross_attention_layers";
    const int64_t i = ag_gguf_find_key(f, k);
    const ag_gguf_type t = i >= 0 && ag_gguf_kv_type(f, i) == AG_GGUF_ARRAY ? ag_gguf_arr_type(f, i) : AG_GGUF_STRING;
    const uint64_t n = i >= 0 && (t == AG_GGUF_UINT32 || t == AG_GGUF_INT32) ? ag_gguf_arr_n(f, i) : 0;
    if (n < 1 || n > (uint64_t)m->info.qf_layers) {
        ag_set_error("%s: missing or invalid hyper-parameter '%s' (1..%d layer indices)", path, k, m->info.qf_layers);
        return -1;
    }
    const int32_t *v = ag_gguf_arr_data(f, i);
    for (uint64_t j = 0; j < n; j++) {
        int32_t l;
        memcpy(&l, v + j, sizeof l); /* u32 or i32: equal for the valid range */
        if (l < 0 || l >= m->info.qf_layers || m->cross[l]) {
            ag_set_error("%s: '%s' entry %llu (%d) is not a new layer below %d", path, k, (unsigned long long)j, l,
                         m->info.qf_layers);
            return -1;
        }
        m->cross[l] = true;
    }
    return 0;
}

static int read_hparams(ag_seed_tokenizer *m, const char *path)
{
    const ag_gguf *f = ag_weights_gguf(m->w);
    ag_seed_tokenizer_info *in = &m->info;
    float vit_eps, qf_eps;
    if (!get_u32(f, "image_size", &in->image_size, 1, 8192, path) ||
        !get_u32(f, "patch_size", &in->patch_size, 1, 1024, path) ||
        !get_u32(f, "vit.width", &in->vit_width, 1, 65536, path) ||
        !get_u32(f, "vit.depth", &in->vit_depth, 1, 1024, path) ||
        !get_u32(f, "vit.heads", &in->vit_heads, 1, 1024, path) ||
        !get_u32(f, "vit.mlp", &in->vit_mlp, 1, AG_MAX_MODEL_DIM, path) ||
        !get_u32(f, "qformer.hidden", &in->qf_hidden, 1, 65536, path) ||
        !get_u32(f, "qformer.layers", &in->qf_layers, 1, ST_MAX_LAYERS - 1, path) ||
        !get_u32(f, "qformer.heads", &in->qf_heads, 1, 1024, path) ||
        !get_u32(f, "qformer.ffn", &in->qf_ffn, 1, AG_MAX_MODEL_DIM, path) ||
        !get_u32(f, "n_query", &in->n_query, 1, 4096, path) ||
        !get_u32(f, "codebook_size", &in->codebook_size, 1, 1 << 24, path) ||
        !get_u32(f, "code_dim", &in->code_dim, 1, 65536, path) || !get_f32(f, "vit.norm_eps", &vit_eps, true, path) ||
        !get_f32(f, "ln_vision.eps", &m->ln_vision_eps, true, path) ||
        !get_f32(f, "qformer.norm_eps", &qf_eps, true, path) ||
        !get_f32(f, "qformer.causal_mask", &m->causal_mask, false, path) ||
        !get_f32x3(f, "image_mean", m->mean, path) || !get_f32x3(f, "image_std", m->std, path))
        return -1;
    const int64_t grid = in->image_size / in->patch_size;
    if (in->image_size % in->patch_size || in->vit_width % in->vit_heads || in->qf_hidden % in->qf_heads ||
        grid * grid + 1 > AG_MAX_MODEL_DIM) {
        ag_set_error("%s: inconsistent sizes (image %d / patch %d, ViT width %d / %d heads, Q-Former hidden %d / %d "
                     "heads)",
                     path, in->image_size, in->patch_size, in->vit_width, in->vit_heads, in->qf_hidden, in->qf_heads);
        return -1;
    }
    for (int c = 0; c < 3; c++) {
        if (!(m->std[c] > 0.0f)) {
            ag_set_error("%s: hyper-parameter 'seed-tokenizer.image_std' must be positive", path);
            return -1;
        }
    }
    if (read_cross(m, f, path))
        return -1;
    m->vit = (eva_vit){m->w, in->vit_width, in->vit_heads, in->vit_mlp, in->vit_depth,
                       in->image_size, in->patch_size, grid * grid + 1, vit_eps};
    m->qf = (qformer){m->w, in->qf_hidden, in->qf_heads, in->qf_layers, in->qf_ffn, in->n_query, in->vit_width,
                      m->cross, qf_eps};
    m->n_vit_graphs = (in->vit_depth + ST_VIT_BLOCKS_PER_GRAPH - 1) / ST_VIT_BLOCKS_PER_GRAPH;
    return 0;
}

/* ---- graphs ---- */

/* ViT activation `which` (0/1) as a tensor of the current context, bound to the state buffer. */
static ag_tensor *state_tensor(ag_seed_tokenizer *m, int which)
{
    ag_tensor *t = ag_new_2d(m->ctx, AG_TYPE_F32, m->vit.width, m->vit.n_tokens);
    if (t && ag_tensor_bind(t, m->state, (size_t)which * m->state_stride) != 0)
        return NULL;
    return t;
}

/* ln_vision -> Q-Former -> encode_task_layer -> VQ */
static ag_tensor *build_head(ag_seed_tokenizer *m, stage_io *io, ag_tensor *feat)
{
    ag_ctx *ctx = m->ctx;
    const ag_seed_tokenizer_info *in = &m->info;
    const int64_t H = in->qf_hidden, C = in->code_dim;
    io->mask = ag_new_2d(ctx, AG_TYPE_F32, in->n_query, in->n_query);
    if (!io->mask || !feat)
        return NULL;
    ag_set_input(io->mask);
    ag_tensor *img = seed_norm(ctx, m->w, feat, m->ln_vision_eps, "ln_vision");
    ag_tensor *h = img ? qformer_forward(&m->qf, ctx, img, io->mask) : NULL;
    ag_tensor *t = h ? seed_linear(ctx, m->w, h, H, H, "task.fc1") : NULL;
    ag_tensor *z = t ? seed_linear(ctx, m->w, ag_tanh(ctx, t), H, C, "task.fc2") : NULL;
    ag_tensor *cb = z ? seed_w(m->w, SEED_T_F32, 2, (const int64_t[]){C, in->codebook_size}, "vq.codebook") : NULL;
    ag_tensor *codes = cb ? ag_vq_argmin(ctx, z, cb) : NULL;
    if (!codes)
        return NULL;
    io->h = h;
    io->z = z;
    io->codes = codes;
    ag_set_output(h);
    ag_set_output(z);
    return codes;
}

/* The graph of stage s (ViT chunks 0 .. n_vit_graphs - 1, then the head) into m->g. */
static int build_stage(ag_seed_tokenizer *m, int s, stage_io *io)
{
    ag_ctx *ctx = m->ctx;
    memset(io, 0, sizeof *io);
    ag_graph_free(m->g);
    m->g = NULL;
    ag_ctx_reset(ctx);
    ag_graph *g = ag_graph_new(ctx, ST_MAX_TENSORS);
    if (!g)
        return -1;
    ag_tensor *root = NULL;
    if (s < m->n_vit_graphs) {
        const int64_t b0 = (int64_t)s * ST_VIT_BLOCKS_PER_GRAPH;
        const int64_t b1 = b0 + ST_VIT_BLOCKS_PER_GRAPH < m->vit.depth ? b0 + ST_VIT_BLOCKS_PER_GRAPH : m->vit.depth;
        ag_tensor *x;
        if (s == 0) {
            const int64_t S = m->vit.image_size;
            io->pixels = ag_new_3d(ctx, AG_TYPE_F32, S, S, 3);
            if (io->pixels)
                ag_set_input(io->pixels);
            x = io->pixels ? eva_vit_embed(&m->vit, ctx, io->pixels) : NULL;
        } else {
            x = state_tensor(m, (s - 1) % 2);
        }
        for (int64_t b = b0; b < b1 && x; b++)
            x = eva_vit_block(&m->vit, ctx, x, b);
        ag_tensor *dst = x ? state_tensor(m, s % 2) : NULL;
        root = dst ? ag_cpy(ctx, x, dst) : NULL;
    } else {
        io->feat = state_tensor(m, (s - 1) % 2);
        root = build_head(m, io, io->feat);
    }
    if (!root || ag_graph_expand(g, root) != 0) {
        ag_graph_free(g);
        return -1;
    }
    ag_set_output(root);
    m->g = g;
    return 0;
}

/* ---- API ---- */

ag_seed_tokenizer *ag_seed_tokenizer_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user)
{
    if (!be || !path) {
        ag_set_error("seed tokenizer: no backend or path");
        return NULL;
    }
    ag_seed_tokenizer *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error("out of memory");
        return NULL;
    }
    m->be = be;
    m->w = ag_weights_load(be, path, "seed-tokenizer", progress, user);
    if (!m->w || read_hparams(m, path) != 0)
        goto fail;
    const size_t bytes = (size_t)m->vit.width * (size_t)m->vit.n_tokens * sizeof(float);
    m->state_stride = (bytes + ST_STATE_ALIGN - 1) / ST_STATE_ALIGN * ST_STATE_ALIGN;
    m->state = ag_buffer_alloc(be, 2 * m->state_stride);
    m->ctx = ag_ctx_new(ST_MAX_TENSORS);
    m->alloc = ag_allocator_new(be);
    if (!m->state || !m->ctx || !m->alloc)
        goto fail;
    /* every weight is checked now (names, shapes, types) by building each stage once */
    stage_io io;
    for (int s = 0; s <= m->n_vit_graphs; s++)
        if (build_stage(m, s, &io) != 0)
            goto fail;
    ag_clear_error();
    return m;
fail:
    ag_seed_tokenizer_free(m);
    return NULL;
}

void ag_seed_tokenizer_free(ag_seed_tokenizer *m)
{
    if (!m)
        return;
    ag_graph_free(m->g);
    ag_allocator_free(m->alloc);
    ag_ctx_free(m->ctx);
    ag_buffer_free(m->state);
    ag_weights_free(m->w);
    free(m);
}

const ag_seed_tokenizer_info *ag_seed_tokenizer_info_of(const ag_seed_tokenizer *m) { return &m->info; }

int seed_tokenizer_n_stages(const ag_seed_tokenizer *m) { return m->n_vit_graphs + 1; }

/* The additive causal mask [query i][key j]: 0 where j <= i, causal_mask (BERT's -10000) above. */
static int set_mask(ag_seed_tokenizer *m, ag_tensor *mask)
{
    const int64_t q = m->info.n_query;
    float *v = malloc((size_t)(q * q) * sizeof *v);
    if (!v) {
        ag_set_error("out of memory");
        return -1;
    }
    for (int64_t i = 0; i < q; i++)
        for (int64_t j = 0; j < q; j++)
            v[i * q + j] = j > i ? m->causal_mask : 0.0f;
    const int rc = ag_tensor_set(mask, v, 0, (size_t)(q * q) * sizeof *v);
    free(v);
    return rc;
}

int seed_tokenizer_encode_traced(ag_seed_tokenizer *m, const float *pixels, int32_t *codes, ag_abort_fn abort,
                                 void *user, const seed_tokenizer_trace *trace)
{
    if (!m || !pixels || !codes) {
        ag_set_error("seed tokenizer: encode needs a model, pixels and room for the codes");
        return -1;
    }
    const ag_seed_tokenizer_info *in = &m->info;
    const size_t px = (size_t)in->image_size * (size_t)in->image_size * 3 * sizeof(float);
    const int n = m->n_vit_graphs + 1;
    for (int s = 0; s < n; s++) {
        if (abort && abort(user))
            return 1;
        stage_io io;
        if (build_stage(m, s, &io) != 0 || ag_allocator_alloc_graph(m->alloc, m->g) != 0)
            return -1;
        if ((io.pixels && ag_tensor_set(io.pixels, pixels, 0, px) != 0) || (io.mask && set_mask(m, io.mask) != 0) ||
            ag_backend_compute(m->be, m->g) != 0)
            return -1;
        if (s < n - 1)
            continue;
        const size_t nq = (size_t)in->n_query;
        if (ag_tensor_get(io.codes, codes, 0, nq * sizeof(int32_t)) != 0 ||
            (trace && trace->vit &&
             ag_tensor_get(io.feat, trace->vit, 0, (size_t)in->vit_width * (size_t)m->vit.n_tokens * sizeof(float))) ||
            (trace && trace->qformer && ag_tensor_get(io.h, trace->qformer, 0, nq * (size_t)in->qf_hidden * 4)) ||
            (trace && trace->z && ag_tensor_get(io.z, trace->z, 0, nq * (size_t)in->code_dim * 4)))
            return -1;
    }
    return 0;
}

int ag_seed_tokenizer_encode(ag_seed_tokenizer *m, const float *pixels, int32_t *codes, ag_abort_fn abort, void *user)
{
    return seed_tokenizer_encode_traced(m, pixels, codes, abort, user, NULL);
}

/* The reference's preprocessing: PIL bicubic straight to image_size x image_size, ToTensor,
 * Normalize with the file's mean / std (OpenAI-CLIP's). */
int ag_seed_tokenizer_encode_image(ag_seed_tokenizer *m, const ag_image_view *img, int32_t *codes, ag_abort_fn abort,
                                   void *user)
{
    if (!m || !img || !codes) {
        ag_set_error("seed tokenizer: encode_image needs a model, an image and room for the codes");
        return -1;
    }
    const int32_t S = m->info.image_size;
    uint8_t *rgb = malloc((size_t)S * (size_t)S * 3);
    float *pix = malloc((size_t)S * (size_t)S * 3 * sizeof *pix);
    int rc = -1;
    if (!rgb || !pix)
        ag_set_error("out of memory");
    else if (ag_image_resize_bicubic(img, S, S, rgb) == 0) {
        ag_image_normalize(rgb, S, S, m->mean, m->std, pix);
        rc = seed_tokenizer_encode_traced(m, pix, codes, abort, user, NULL);
    }
    free(rgb);
    free(pix);
    return rc;
}
