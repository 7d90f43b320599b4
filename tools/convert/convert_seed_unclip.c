/* KIND seed-unclip: AnyGPT's image de-tokenizer in one GGUF (architecture "seed-unclip"): the SEED
 * decode MLP from seed_quantizer.pt, and from the diffusers folder stable-diffusion-2-1-unclip/
 * the empty-prompt text context (CLIPTextModel run once here; the text encoder is not kept), the
 * image normaliser, both schedulers' configs and, through unclip_plan.h, the UNet and the VAE
 * decoder.
 *
 * INPUT is a folder holding seed_quantizer.pt (or seed-tokenizer-2/seed_quantizer.pt) and the
 * diffusers folder stable-diffusion-2-1-unclip/; or the diffusers folder itself (it has
 * model_index.json) with seed_quantizer.pt put inside it. Every size comes from the files.
 *
 * GGUF content written here (the plans add unet.* / vae.* and their KVs):
 *   seed_decode.*                  the decode MLP (seed_decode_plan.c), KVs seed-unclip.seed_decode.*
 *   text_context                   F32 [hidden, model_max_length]: last_hidden_state of the
 *                                  empty prompt (bos, eos, pad...), token-major
 *   image_normalizer.mean / .std   F32 [embedding_dim]
 *   KVs seed-unclip.scheduler.* and seed-unclip.noising.* (sched_config.c) */
#include "seed_unclip.h"

#include "anygpt/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SD_FOLDER "stable-diffusion-2-1-unclip"

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

typedef struct {
    char sd[4096], seed[4096];
    char sched_class[64];
    const convert_opts *o;
    /* seed_quantizer.pt */
    ckpt seed_ck;
    tensor_plan seed_tp;
    seed_decode_dims dims;
    /* text context [n][hidden] */
    float *ctx;
    int64_t ctx_n, ctx_d;
    /* image normaliser */
    ckpt norm_ck;
    tensor_plan norm_tp;
    ag_sched_config sched, noising;
    /* unet / vae */
    json_value *unet_cfg, *vae_cfg;
    ckpt unet_ck, vae_ck;
    unclip_part *unet, *vae;
} su_job;

/* INPUT -> the diffusers folder and seed_quantizer.pt */
static int locate(su_job *j, const char *in)
{
    char p[4096];
    if (!is_dir(in)) {
        ag_set_error("%s: not a folder (seed-unclip reads a folder holding seed_quantizer.pt and %s/)", in, SD_FOLDER);
        return -1;
    }
    cv_nm(p, sizeof p, "%s/model_index.json", in);
    if (is_file(p))
        cv_nm(j->sd, sizeof j->sd, "%s", in);
    else
        cv_nm(j->sd, sizeof j->sd, "%s/%s", in, SD_FOLDER);
    cv_nm(p, sizeof p, "%s/model_index.json", j->sd);
    if (!is_file(p)) {
        ag_set_error("%s: no %s/model_index.json (nor model_index.json in the folder itself)", in, SD_FOLDER);
        return -1;
    }
    static const char *const seeds[] = {"seed_quantizer.pt", "seed-tokenizer-2/seed_quantizer.pt"};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        cv_nm(j->seed, sizeof j->seed, "%s/%s", in, seeds[i]);
        if (is_file(j->seed))
            return 0;
    }
    ag_set_error("%s: no seed_quantizer.pt (nor seed-tokenizer-2/seed_quantizer.pt)", in);
    return -1;
}

/* model_index.json: the pipeline class and the class of every component this converter reads. */
static int check_model_index(su_job *j)
{
    static const struct {
        const char *key, *cls[2];
    } comps[] = {{"text_encoder", {"CLIPTextModel", NULL}},
                 {"tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"}},
                 {"unet", {"UNet2DConditionModel", NULL}},
                 {"vae", {"AutoencoderKL", NULL}},
                 {"scheduler", {"PNDMScheduler", "DDIMScheduler"}},
                 {"image_noising_scheduler", {"DDPMScheduler", NULL}},
                 {"image_normalizer", {"StableUnCLIPImageNormalizer", NULL}}};
    char p[4096];
    cv_nm(p, sizeof p, "%s/model_index.json", j->sd);
    json_value *mi = json_parse_file(p);
    if (!mi)
        return -1;
    int rc = -1;
    const char *cls = json_get_str(mi, "_class_name");
    if (!cls || strcmp(cls, "StableUnCLIPImg2ImgPipeline")) {
        ag_set_error("%s: _class_name '%s' is not StableUnCLIPImg2ImgPipeline", p, cls ? cls : "(none)");
        goto out;
    }
    for (size_t i = 0; i < sizeof comps / sizeof comps[0]; i++) {
        const json_value *v = json_get(mi, comps[i].key);
        const char *c = v && v->kind == JSON_ARRAY && v->n == 2 && v->items[1]->kind == JSON_STRING
                            ? v->items[1]->str
                            : NULL;
        if (!c || (strcmp(c, comps[i].cls[0]) && (!comps[i].cls[1] || strcmp(c, comps[i].cls[1])))) {
            ag_set_error("%s: component '%s' is %s%s%s, expected %s%s%s", p, comps[i].key, c ? "'" : "",
                         c ? c : "absent", c ? "'" : "", comps[i].cls[0], comps[i].cls[1] ? " or " : "",
                         comps[i].cls[1] ? comps[i].cls[1] : "");
            goto out;
        }
        if (!strcmp(comps[i].key, "scheduler"))
            cv_nm(j->sched_class, sizeof j->sched_class, "%s", c);
        cv_nm(p, sizeof p, "%s/%s", j->sd, comps[i].key);
        if (!is_dir(p)) {
            ag_set_error("%s: the %s/ folder is missing", j->sd, comps[i].key);
            goto out;
        }
        cv_nm(p, sizeof p, "%s/model_index.json", j->sd);
    }
    rc = 0;
out:
    json_free(mi);
    return rc;
}

static json_value *component_json(const su_job *j, const char *comp, const char *file)
{
    char p[4096];
    cv_nm(p, sizeof p, "%s/%s/%s", j->sd, comp, file);
    if (!is_file(p)) {
        ag_set_error("%s/%s: no %s", j->sd, comp, file);
        return NULL;
    }
    return json_parse_file(p);
}

static int schedulers(su_job *j)
{
    char p[4096];
    json_value *s = component_json(j, "scheduler", "scheduler_config.json");
    cv_nm(p, sizeof p, "%s/scheduler/scheduler_config.json", j->sd);
    int rc = s ? sched_config_parse(s, p, j->sched_class, false, &j->sched) : -1;
    json_free(s);
    if (rc)
        return -1;
    s = component_json(j, "image_noising_scheduler", "scheduler_config.json");
    cv_nm(p, sizeof p, "%s/image_noising_scheduler/scheduler_config.json", j->sd);
    rc = s ? sched_config_parse(s, p, "DDPMScheduler", true, &j->noising) : -1;
    json_free(s);
    return rc;
}

static int seed_decode(su_job *j)
{
    if (!j->o->quiet)
        fprintf(stderr, "anygpt-convert: reading %s\n", j->seed);
    return ckpt_load_file(&j->seed_ck, j->seed) || tp_init(&j->seed_tp, &j->seed_ck, "seed_quantizer.pt") ||
                   seed_decode_plan(&j->seed_tp, &j->dims)
               ? -1
               : 0;
}

/* image_normalizer/: config.json embedding_dim, mean and std (1, embedding_dim). */
static int normalizer(su_job *j)
{
    char dir[4096];
    int64_t e = 0;
    json_value *cfg = component_json(j, "image_normalizer", "config.json");
    if (!cfg)
        return -1;
    const bool ok = json_get_int(cfg, "embedding_dim", &e);
    json_free(cfg);
    if (!ok) {
        ag_set_error("%s/image_normalizer/config.json: no integer embedding_dim", j->sd);
        return -1;
    }
    if (e != j->dims.embed) {
        ag_set_error("image_normalizer embedding_dim %lld differs from the SEED decoder's output size %lld",
                     (long long)e, (long long)j->dims.embed);
        return -1;
    }
    cv_nm(dir, sizeof dir, "%s/image_normalizer", j->sd);
    if (diffusers_load_weights(dir, "image_normalizer", false, j->o->quiet, &j->norm_ck) ||
        tp_init(&j->norm_tp, &j->norm_ck, "image_normalizer"))
        return -1;
    const int64_t s[2] = {1, e};
    if (tp_add(&j->norm_tp, "image_normalizer.mean", tp_need(&j->norm_tp, "mean", 2, s), false, 1, &e) ||
        tp_add(&j->norm_tp, "image_normalizer.std", tp_need(&j->norm_tp, "std", 2, s), false, 1, &e))
        return -1;
    return ckpt_check_used(&j->norm_ck, j->norm_tp.used, NULL, "StableUnCLIPImageNormalizer");
}

/* The empty-prompt context: tokenizer files -> ids, text_encoder -> last_hidden_state. */
static int text_context(su_job *j)
{
    char dir[4096], p[4096];
    clip_text_config cfg;
    int32_t *ids = NULL;
    ckpt c;
    ckpt_init(&c);
    cv_nm(p, sizeof p, "%s/text_encoder/config.json", j->sd);
    json_value *js = component_json(j, "text_encoder", "config.json");
    int rc = js ? clip_text_config_parse(js, p, &cfg) : -1;
    json_free(js);
    cv_nm(dir, sizeof dir, "%s/tokenizer", j->sd);
    if (rc || clip_empty_prompt_ids(dir, cfg.vocab, &ids, &j->ctx_n))
        goto fail;
    j->ctx_d = cfg.hidden;
    if (!(j->ctx = malloc((size_t)(j->ctx_n * j->ctx_d) * sizeof *j->ctx))) {
        ag_set_error("out of memory");
        goto fail;
    }
    cv_nm(dir, sizeof dir, "%s/text_encoder", j->sd);
    if (diffusers_load_weights(dir, "text_encoder", true, j->o->quiet, &c))
        goto fail;
    if (!j->o->quiet)
        fprintf(stderr, "anygpt-convert: text_encoder: %lld layers, %s, on the empty prompt (%lld tokens)\n",
                (long long)cfg.layers, cfg.quick_gelu ? "quick_gelu" : "gelu", (long long)j->ctx_n);
    if (clip_text_encode(&cfg, &c, ids, j->ctx_n, j->ctx))
        goto fail;
    free(ids);
    ckpt_free(&c);
    return 0;
fail:
    free(ids);
    ckpt_free(&c);
    return -1;
}

/* Facts that tie the components together, where the unet config states them. */
static int cross_check(su_job *j)
{
    int64_t v;
    if (json_get_int(j->unet_cfg, "cross_attention_dim", &v) && v != j->ctx_d) {
        ag_set_error("unet cross_attention_dim %lld differs from the text encoder's hidden_size %lld", (long long)v,
                     (long long)j->ctx_d);
        return -1;
    }
    if (json_get_int(j->unet_cfg, "projection_class_embeddings_input_dim", &v) && v != 2 * j->dims.embed) {
        ag_set_error("unet projection_class_embeddings_input_dim %lld is not twice the image embedding size %lld",
                     (long long)v, (long long)j->dims.embed);
        return -1;
    }
    return 0;
}

static int diffusion_plans(su_job *j, gs_writer *w, const seed_unclip_parts *parts)
{
    char dir[4096];
    cv_nm(dir, sizeof dir, "%s/unet", j->sd);
    if (diffusers_load_weights(dir, "unet", false, j->o->quiet, &j->unet_ck) ||
        !(j->unet = parts->unet_plan(j->unet_cfg, &j->unet_ck, w, j->o)))
        return -1;
    cv_nm(dir, sizeof dir, "%s/vae", j->sd);
    if (diffusers_load_weights(dir, "vae", false, j->o->quiet, &j->vae_ck) ||
        !(j->vae = parts->vae_plan(j->vae_cfg, &j->vae_ck, w, j->o)))
        return -1;
    return 0;
}

static int write_kvs(su_job *j, gs_writer *w)
{
    return gs_set_str(w, "general.architecture", SEED_UNCLIP_ARCH) || gs_set_str(w, "general.type", "model") ||
                   gs_set_str(w, "general.name", "SEED decoder + Stable Diffusion 2.1 unCLIP") ||
                   gs_set_u32(w, "general.file_type", j->o->wtype == AG_TYPE_F16 ? 1 : 0) ||
                   seed_decode_kvs(w, &j->dims) || sched_config_kvs(w, SEED_UNCLIP_ARCH ".scheduler", &j->sched) ||
                   sched_config_kvs(w, SEED_UNCLIP_ARCH ".noising", &j->noising)
               ? -1
               : 0;
}

int seed_unclip_convert(const char *in, const char *out, const convert_opts *o, const seed_unclip_parts *parts)
{
    su_job *j = calloc(1, sizeof *j);
    gs_writer *w = NULL;
    int rc = -1;
    if (!j) {
        ag_set_error("out of memory");
        return -1;
    }
    j->o = o;
    ckpt_init(&j->seed_ck);
    ckpt_init(&j->norm_ck);
    ckpt_init(&j->unet_ck);
    ckpt_init(&j->vae_ck);
    if (locate(j, in) || check_model_index(j) || schedulers(j) ||
        !(j->unet_cfg = component_json(j, "unet", "config.json")) ||
        !(j->vae_cfg = component_json(j, "vae", "config.json")) || seed_decode(j) || normalizer(j) ||
        text_context(j) || cross_check(j))
        goto done;
    const int64_t ctx_ne[2] = {j->ctx_d, j->ctx_n};
    int ctx_idx;
    if (!(w = gs_new()) || write_kvs(j, w) || tp_declare(&j->seed_tp, w, o->wtype) ||
        (ctx_idx = gs_add_tensor(w, "text_context", AG_TYPE_F32, 2, ctx_ne)) < 0 ||
        tp_declare(&j->norm_tp, w, o->wtype) || (parts && diffusion_plans(j, w, parts)) || gs_begin(w, out) ||
        tp_write(&j->seed_tp, w, o->quiet) ||
        gs_write_tensor(w, ctx_idx, j->ctx, (size_t)(j->ctx_n * j->ctx_d) * sizeof(float)) ||
        tp_write(&j->norm_tp, w, o->quiet) || (parts && (parts->write(j->unet, w) || parts->write(j->vae, w))) ||
        gs_finish(w))
        goto done;
    if (!o->quiet)
        fprintf(stderr, "anygpt-convert: wrote %s%s\n", out,
                parts ? "" : " (without unet/vae: the diffusion plans are not part of this build)");
    rc = 0;
done:
    gs_free(w);
    if (parts) {
        parts->release(j->unet);
        parts->release(j->vae);
    }
    tp_free(&j->seed_tp);
    tp_free(&j->norm_tp);
    ckpt_free(&j->seed_ck);
    ckpt_free(&j->norm_ck);
    ckpt_free(&j->unet_ck);
    ckpt_free(&j->vae_ck);
    json_free(j->unet_cfg);
    json_free(j->vae_cfg);
    free(j->ctx);
    free(j);
    return rc;
}
