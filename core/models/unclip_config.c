/* Scheduler configs of a seed-unclip GGUF (the KVs tools/convert/sched_config.c writes) back into
 * ag_sched_config. Every key is required: the converter always writes all of them. */
#include "unclip_internal.h"

#include "anygpt/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const ag_gguf *f;
    const char *label, *prefix;
    char key[128];
} kv_ctx;

static const char *key(kv_ctx *c, const char *name)
{
    snprintf(c->key, sizeof c->key, "%s.%s", c->prefix, name);
    return c->key;
}

static int bad(kv_ctx *c, const char *what)
{
    ag_set_error("%s: missing or invalid hyper-parameter '%s'%s%s", c->label, c->key, what ? ": " : "",
                 what ? what : "");
    return -1;
}

/* The string KV NAME as an index into names. */
static int get_enum(kv_ctx *c, const char *name, const char *const *names, int n, int *out)
{
    const char *v = ag_gguf_get_str(c->f, key(c, name));
    for (int i = 0; v && i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
    return bad(c, NULL);
}

static int get_i32(kv_ctx *c, const char *name, int32_t lo, int32_t hi, int32_t *out)
{
    uint32_t v;
    if (!ag_gguf_get_u32(c->f, key(c, name), &v) || v < (uint32_t)lo || v > (uint32_t)hi)
        return bad(c, NULL);
    *out = (int32_t)v;
    return 0;
}

static int get_bool(kv_ctx *c, const char *name, bool *out)
{
    return ag_gguf_get_bool(c->f, key(c, name), out) ? 0 : bad(c, NULL);
}

/* A beta: f64 only (an f32 value would change the scaled_linear betas; files from an older
 * converter must be converted again). */
static int get_beta(kv_ctx *c, const char *name, double *out)
{
    const int64_t k = ag_gguf_find_key(c->f, key(c, name));
    if (k < 0 || ag_gguf_kv_type(c->f, k) != AG_GGUF_FLOAT64)
        return bad(c, "an f64 is required (convert the model again with this version of anygpt-convert)");
    if (!ag_gguf_get_f64(c->f, c->key, out) || !isfinite(*out) || *out < 0.0 || *out > 1.0)
        return bad(c, NULL);
    return 0;
}

int ag_unclip_read_sched(const ag_gguf *f, const char *label, const char *prefix, ag_sched_config *out)
{
    static const char *const kinds[] = {"pndm", "ddim", "ddpm"};
    static const char *const betas[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample"};
    static const char *const spacings[] = {"leading", "trailing", "linspace"};
    kv_ctx c = {.f = f, .label = label, .prefix = prefix};
    int kind = 0, b = 0, p = 0, s = 0;
    memset(out, 0, sizeof *out);
    if (get_enum(&c, "kind", kinds, 3, &kind) ||
        get_i32(&c, "num_train_timesteps", 1, 100000, &out->num_train_timesteps) ||
        get_beta(&c, "beta_start", &out->beta_start) || get_beta(&c, "beta_end", &out->beta_end) ||
        get_enum(&c, "beta_schedule", betas, 3, &b) || get_enum(&c, "prediction_type", preds, 3, &p) ||
        get_i32(&c, "steps_offset", 0, 100000, &out->steps_offset) ||
        get_bool(&c, "set_alpha_to_one", &out->set_alpha_to_one) ||
        get_bool(&c, "skip_prk_steps", &out->skip_prk_steps) || get_enum(&c, "timestep_spacing", spacings, 3, &s) ||
        get_bool(&c, "clip_sample", &out->clip_sample))
        return -1;
    if (!ag_gguf_get_f32(f, key(&c, "clip_sample_range"), &out->clip_sample_range) ||
        !isfinite(out->clip_sample_range) || out->clip_sample_range < 0.0f)
        return bad(&c, NULL);
    out->kind = (ag_sched_kind)kind;
    out->betas = (ag_betas_kind)b;
    out->prediction = (ag_pred_kind)p;
    out->spacing = (ag_spacing_kind)s;
    return 0;
}
