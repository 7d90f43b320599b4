/* AnyGPT's image de-tokenizer (anygpt/unclip.h): the orchestration of the pieces, as diffusers'
 * StableUnCLIPImg2ImgPipeline.__call__ runs them with image_embeds given and the prompt "":
 *   e = SEED decode MLP (codes)
 *   class = [unscale(add_noise(scale(e), noise, noise_level)), timestep_embedding(noise_level)]
 *   for each scheduler timestep t: v = UNet([latents, latents], t, [0, class], [ctx, ctx]);
 *       v = v_u + g (v_c - v_u); latents = scheduler.step(v, t, latents)
 *   rgb = VAE decode (latents)
 * with torch.Generator('cpu').manual_seed(seed) drawing the latents, then the embedding noise.
 * One ag_weights holds the whole file; the UNet and the VAE give their compute buffers back after
 * each call, so the VAE decode does not add to the UNet's peak. */
#include "anygpt/unclip.h"

#include "anygpt/error.h"
#include "anygpt/torch_rng.h"
#include "anygpt/unet.h"
#include "seed_decode.h"
#include "unclip_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KV "seed-unclip."

struct ag_unclip {
    ag_weights *w;
    ag_seed_decode *decode;
    ag_unet *unet;
    ag_vae_decoder *vae;
    ag_unclip_info info;
    ag_sched_config sched, noising;
    float *ctx2;       /* the text context twice: [2][context_len][cross] (both guidance branches) */
    float *mean, *std; /* image normaliser [embed_dim] */
    ag_unclip_trace_fn trace;
    void *trace_user;
};

/* An F32 tensor of the file with exactly ne0 x ne1 elements, copied to host memory. */
static float *host_f32(ag_unclip *m, const char *name, int64_t ne0, int64_t ne1, int copies)
{
    const ag_gguf *f = ag_weights_gguf(m->w);
    const int64_t i = ag_gguf_find_tensor(f, name);
    int64_t ne[AG_MAX_DIMS];
    if (i >= 0)
        ag_gguf_tensor_ne(f, i, ne);
    if (i < 0 || ag_gguf_tensor_type(f, i) != AG_TYPE_F32 || ne[0] != ne0 || ne[1] != ne1 || ne[2] != 1 ||
        ne[3] != 1) {
        ag_set_error("%s: tensor '%s' is missing or not F32 [%lld, %lld]", ag_weights_path(m->w), name,
                     (long long)ne0, (long long)ne1);
        return NULL;
    }
    const size_t n = (size_t)(ne0 * ne1);
    float *out = malloc(n * sizeof *out * (size_t)copies);
    if (!out) {
        ag_set_error("out of memory");
        return NULL;
    }
    for (int c = 0; c < copies; c++)
        memcpy(out + (size_t)c * n, ag_gguf_tensor_data(f, i), n * sizeof *out);
    return out;
}

/* The facts that tie the parts together. */
static int check_parts(ag_unclip *m)
{
    const char *path = ag_weights_path(m->w);
    const ag_unet_info *u = ag_unet_info_of(m->unet);
    const ag_vae_info *v = ag_vae_info_of(m->vae);
    const int32_t e = ag_seed_decode_info_of(m->decode)->embed_dim;
    if (u->class_embed_dim != 2 * e) {
        ag_set_error("%s: the UNet's class input is %d wide, unCLIP needs twice the image embedding (%d)", path,
                     u->class_embed_dim, 2 * e);
        return -1;
    }
    if (u->in_channels != v->latent_channels || u->out_channels != v->latent_channels) {
        ag_set_error("%s: UNet channels %d -> %d do not match the VAE's %d latent channels", path, u->in_channels,
                     u->out_channels, v->latent_channels);
        return -1;
    }
    if (u->sample_size < 1 || u->sample_size > 4096 / v->scale_factor) {
        ag_set_error("%s: UNet sample_size %d: the image size is unknown or too large", path, u->sample_size);
        return -1;
    }
    if (m->sched.kind == AG_SCHED_DDPM || m->noising.kind != AG_SCHED_DDPM) {
        ag_set_error("%s: the scheduler must be pndm or ddim and the noising scheduler ddpm", path);
        return -1;
    }
    return 0;
}

ag_unclip *ag_unclip_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user)
{
    ag_unclip *m = calloc(1, sizeof *m);
    if (!m) {
        ag_set_error("out of memory");
        return NULL;
    }
    if (!(m->w = ag_weights_load(be, path, "seed-unclip", progress, user)))
        goto fail;
    const ag_gguf *f = ag_weights_gguf(m->w);
    if (ag_unclip_read_sched(f, path, KV "scheduler", &m->sched) ||
        ag_unclip_read_sched(f, path, KV "noising", &m->noising) || !(m->decode = ag_seed_decode_new(be, m->w)) ||
        !(m->unet = ag_unet_new(be, m->w)) || !(m->vae = ag_vae_decoder_new(be, m->w)) || check_parts(m))
        goto fail;
    const ag_seed_decode_info *d = ag_seed_decode_info_of(m->decode);
    const ag_unet_info *u = ag_unet_info_of(m->unet);
    if (!(m->ctx2 = host_f32(m, "text_context", u->cross_attention_dim, u->context_len, 2)) ||
        !(m->mean = host_f32(m, "image_normalizer.mean", d->embed_dim, 1, 1)) ||
        !(m->std = host_f32(m, "image_normalizer.std", d->embed_dim, 1, 1)))
        goto fail;
    m->info = (ag_unclip_info){.n_codes = d->n_codes,
                               .codebook_size = d->codebook_size,
                               .embed_dim = d->embed_dim,
                               .latent_channels = u->in_channels,
                               .latent_size = u->sample_size,
                               .image_size = u->sample_size * ag_vae_info_of(m->vae)->scale_factor,
                               .scheduler = m->sched.kind == AG_SCHED_PNDM ? "pndm" : "ddim"};
    ag_clear_error();
    return m;
fail:
    ag_unclip_free(m);
    return NULL;
}

void ag_unclip_free(ag_unclip *m)
{
    if (!m)
        return;
    ag_vae_decoder_free(m->vae);
    ag_unet_free(m->unet);
    ag_seed_decode_free(m->decode);
    ag_weights_free(m->w);
    free(m->ctx2);
    free(m->mean);
    free(m->std);
    free(m);
}

const ag_unclip_info *ag_unclip_info_of(const ag_unclip *m) { return &m->info; }

void ag_unclip_set_trace(ag_unclip *m, ag_unclip_trace_fn fn, void *user)
{
    m->trace = fn;
    m->trace_user = user;
}

void ag_unclip_sched_configs(const ag_unclip *m, ag_sched_config *sched, ag_sched_config *noising)
{
    *sched = m->sched;
    *noising = m->noising;
}

static void trace(const ag_unclip *m, const char *what, int32_t i, const float *data, size_t n)
{
    if (m->trace)
        m->trace(m->trace_user, what, i, data, n);
}

int ag_unclip_embed(ag_unclip *m, const int32_t *codes, int32_t n_codes, float *embed)
{
    return ag_seed_decode_run(m->decode, codes, n_codes, embed);
}

/* get_timestep_embedding(level, dim, flip_sin_to_cos=True, downscale_freq_shift=0) in float32 as
 * diffusers computes it: [cos | sin] of level * exp(-ln(10000) * i / (dim / 2)). */
static void level_embedding(int32_t level, int32_t dim, float *out)
{
    const int32_t half = dim / 2;
    const float l = (float)-log(10000.0);
    for (int32_t i = 0; i < half; i++) {
        const float freq = (float)exp((double)((l * (float)i) / (float)half));
        const float arg = (float)level * freq;
        out[i] = (float)cos((double)arg);
        out[half + i] = (float)sin((double)arg);
    }
    if (dim % 2)
        out[dim - 1] = 0.0f;
}

/* noise_image_embeddings: out [2 * e] = [unscale(add_noise(scale(embed))), level embedding]. */
static int noise_embedding(const ag_unclip *m, const float *embed, const float *noise, int32_t level, float *out)
{
    const int32_t e = m->info.embed_dim;
    for (int32_t i = 0; i < e; i++)
        out[i] = ((embed[i] - m->mean[i]) * 1.0f) / m->std[i];
    if (ag_ddpm_add_noise(&m->noising, level, out, noise, out, (size_t)e) != 0)
        return -1;
    for (int32_t i = 0; i < e; i++)
        out[i] = out[i] * m->std[i] + m->mean[i];
    level_embedding(level, e, out + e);
    return 0;
}

typedef struct {
    float *lat, *in, *out, *cls;
    ag_sched *sched;
} gen_bufs;

static void bufs_free(gen_bufs *b)
{
    free(b->lat);
    free(b->in);
    free(b->out);
    free(b->cls);
    ag_sched_free(b->sched);
}

static int check_params(const ag_unclip *m, const int32_t *codes, const ag_unclip_params *p, const uint8_t *rgb)
{
    if (!codes || !p || !rgb) {
        ag_set_error("unclip: no codes, parameters or output");
        return -1;
    }
    if (!isfinite(p->guidance_scale)) {
        ag_set_error("unclip: guidance scale %g is not finite", (double)p->guidance_scale);
        return -1;
    }
    if (p->noise_level < 0 || p->noise_level >= m->noising.num_train_timesteps) {
        ag_set_error("unclip: noise level %d is outside 0..%d", p->noise_level, m->noising.num_train_timesteps - 1);
        return -1;
    }
    if (p->steps < 1 || p->steps > m->sched.num_train_timesteps) {
        ag_set_error("unclip: %d steps, the scheduler takes 1..%d", p->steps, m->sched.num_train_timesteps);
        return -1;
    }
    return 0;
}

/* The denoising loop: 0, 1 when cancelled, -1 on error. */
static int denoise(ag_unclip *m, gen_bufs *b, const ag_unclip_params *p, ag_unclip_step_fn step_cb, void *user)
{
    const ag_unclip_info *in = &m->info;
    const int32_t side = in->latent_size, batch = p->guidance_scale > 1.0f ? 2 : 1;
    const size_t n = (size_t)in->latent_channels * (size_t)side * (size_t)side;
    const float g = p->guidance_scale;
    const int32_t evals = ag_sched_n_evals(b->sched);
    /* the conditional branch is the second of the batch; with one branch, the only one */
    const float *cls = batch == 2 ? b->cls : b->cls + 2 * in->embed_dim;
    const float *ctx = m->ctx2;
    for (int32_t i = 0; i < evals; i++) {
        const int32_t t = ag_sched_timestep(b->sched, i);
        /* scale_model_input is the identity for PNDM and DDIM */
        for (int32_t k = 0; k < batch; k++)
            memcpy(b->in + (size_t)k * n, b->lat, n * sizeof *b->lat);
        if (ag_unet_forward(m->unet, b->in, batch, side, side, (float)t, cls, ctx, b->out) != 0)
            return -1;
        if (batch == 2) {
            const float *u = b->out, *c = b->out + n;
            for (size_t j = 0; j < n; j++) {
                const float d = g * (c[j] - u[j]);
                b->out[j] = u[j] + d;
            }
        }
        if (ag_sched_step(b->sched, i, b->out, b->lat, b->lat, n) != 0)
            return -1;
        const float tf = (float)t;
        trace(m, "timestep", i + 1, &tf, 1);
        trace(m, "latents", i + 1, b->lat, n);
        if (step_cb && !step_cb(user, i + 1, evals))
            return 1;
    }
    return 0;
}

int ag_unclip_generate(ag_unclip *m, const int32_t *codes, int32_t n_codes, const ag_unclip_params *p,
                       ag_unclip_step_fn step_cb, void *user, uint8_t *rgb)
{
    if (!m) {
        ag_set_error("unclip: no model");
        return -1;
    }
    if (check_params(m, codes, p, rgb) != 0)
        return -1;
    const ag_unclip_info *in = &m->info;
    const int32_t e = in->embed_dim, side = in->latent_size;
    const size_t n = (size_t)in->latent_channels * (size_t)side * (size_t)side;
    gen_bufs b = {0};
    int rc = -1;
    /* cls: [zeros (the unconditional branch), conditional], each 2 * e */
    b.lat = malloc(n * sizeof *b.lat);
    b.in = malloc(2 * n * sizeof *b.in);
    b.out = malloc(2 * n * sizeof *b.out);
    b.cls = calloc((size_t)(4 * e), sizeof *b.cls);
    float *embed = malloc((size_t)(2 * e) * sizeof *embed), *noise = embed ? embed + e : NULL;
    if (!b.lat || !b.in || !b.out || !b.cls || !embed) {
        ag_set_error("out of memory");
        goto done;
    }
    if (ag_seed_decode_run(m->decode, codes, n_codes, embed) != 0)
        goto done;
    trace(m, "embed", 0, embed, (size_t)e);
    ag_torch_gen gen;
    ag_torch_manual_seed(&gen, p->seed);
    ag_torch_randn(&gen, b.lat, (int64_t)n);
    ag_torch_randn(&gen, noise, e);
    if (noise_embedding(m, embed, noise, p->noise_level, b.cls + 2 * e) != 0)
        goto done;
    trace(m, "class", 0, b.cls + 2 * e, (size_t)(2 * e));
    if (!(b.sched = ag_sched_new(&m->sched, p->steps)))
        goto done;
    const float sigma = ag_sched_init_noise_sigma(b.sched);
    for (size_t j = 0; j < n; j++)
        b.lat[j] *= sigma;
    trace(m, "latents", 0, b.lat, n);
    rc = denoise(m, &b, p, step_cb, user);
    if (rc == 0 && ag_vae_decode(m->vae, b.lat, side, side, rgb) != 0)
        rc = -1;
done:
    free(embed);
    bufs_free(&b);
    if (rc >= 0)
        ag_clear_error();
    return rc;
}
