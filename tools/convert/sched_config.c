/* scheduler_config.json (diffusers PNDMScheduler / DDIMScheduler / DDPMScheduler) -> ag_sched_config
 * (core/include/anygpt/unclip_sched.h) -> KVs. Absent fields take the class's defaults (its
 * __init__ signature), as diffusers does. Fields of another scheduler class that a saved config
 * may carry (e.g. PNDM's skip_prk_steps in a DDIM config) are ignored, as diffusers ignores them;
 * a field no class of these three knows is refused by name, and so is every value the struct
 * cannot express (trained_betas, thresholding, rescale_betas_zero_snr, other beta schedules,
 * spacings or prediction types).
 *
 * The noising scheduler (image_noising_scheduler, DDPM) is only asked for add_noise(), which reads
 * nothing but the betas: its step()-only fields (variance_type, clip_sample, thresholding,
 * prediction_type's use) are recorded or ignored, never refused.
 *
 * KVs under PREFIX (seed-unclip.scheduler / seed-unclip.noising): kind (str pndm|ddim|ddpm),
 * num_train_timesteps (u32), beta_start, beta_end (f64: the JSON's double exactly, as diffusers
 * takes sqrt of it before rounding to float32), beta_schedule (str linear|scaled_linear|
 * squaredcos_cap_v2), prediction_type (str epsilon|v_prediction|sample), steps_offset (u32),
 * set_alpha_to_one, skip_prk_steps (bool), timestep_spacing (str leading|trailing|linspace),
 * clip_sample (bool), clip_sample_range (f32); every key always written (the class default where
 * the class has no such field). */
#include "seed_unclip.h"

#include "anygpt/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const KIND_NAMES[] = {"pndm", "ddim", "ddpm"};
static const char *const CLASS_NAMES[] = {"PNDMScheduler", "DDIMScheduler", "DDPMScheduler"};
static const char *const BETAS[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
static const char *const PREDS[] = {"epsilon", "v_prediction", "sample"};
static const char *const SPACINGS[] = {"leading", "trailing", "linspace"};

/* Fields of each class (diffusers' __init__), for telling ignorable leftovers from unknown keys. */
static const char *const COMMON[] = {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                                     "prediction_type", "timestep_spacing", "steps_offset"};
static const char *const PNDM_ONLY[] = {"skip_prk_steps", "set_alpha_to_one"};
static const char *const DDIM_ONLY[] = {"clip_sample", "set_alpha_to_one", "thresholding", "dynamic_thresholding_ratio",
                                        "clip_sample_range", "sample_max_value", "rescale_betas_zero_snr"};
static const char *const DDPM_ONLY[] = {"variance_type", "clip_sample", "thresholding", "dynamic_thresholding_ratio",
                                        "clip_sample_range", "sample_max_value", "rescale_betas_zero_snr"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *k, const char *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, l[i]))
            return true;
    return false;
}

static bool field_of(const char *k, int kind)
{
    if (in_list(k, COMMON, N_OF(COMMON)))
        return true;
    switch (kind) {
    case AG_SCHED_PNDM: return in_list(k, PNDM_ONLY, N_OF(PNDM_ONLY));
    case AG_SCHED_DDIM: return in_list(k, DDIM_ONLY, N_OF(DDIM_ONLY));
    default: return in_list(k, DDPM_ONLY, N_OF(DDPM_ONLY));
    }
}

typedef struct {
    const json_value *cfg;
    const char *path;
    int kind;
} sc_ctx;

/* The field if this class has it and the config sets it (JSON null counts as absent). */
static const json_value *field(const sc_ctx *s, const char *key)
{
    const json_value *v = field_of(key, s->kind) ? json_get(s->cfg, key) : NULL;
    return v && v->kind != JSON_NULL ? v : NULL;
}

static int get_bool(const sc_ctx *s, const char *key, bool def, bool *out)
{
    const json_value *v = field(s, key);
    *out = def;
    if (v && v->kind != JSON_BOOL) {
        ag_set_error("%s: '%s' must be true or false", s->path, key);
        return -1;
    }
    if (v)
        *out = v->b;
    return 0;
}

static int get_num(const sc_ctx *s, const char *key, double def, double lo, double hi, double *out)
{
    const json_value *v = field(s, key);
    *out = def;
    if (v && v->kind != JSON_NUMBER) {
        ag_set_error("%s: '%s' must be a number", s->path, key);
        return -1;
    }
    if (v)
        *out = v->num;
    if (!(*out >= lo && *out <= hi)) {
        ag_set_error("%s: '%s' %g is outside %g..%g", s->path, key, *out, lo, hi);
        return -1;
    }
    return 0;
}

static int get_int(const sc_ctx *s, const char *key, int64_t def, int64_t lo, int64_t hi, int32_t *out)
{
    const json_value *v = field(s, key);
    int64_t x = def;
    if (v && (v->kind != JSON_NUMBER || !v->is_int)) {
        ag_set_error("%s: '%s' must be an integer", s->path, key);
        return -1;
    }
    if (v)
        x = v->i;
    if (x < lo || x > hi) {
        ag_set_error("%s: '%s' %lld is outside %lld..%lld", s->path, key, (long long)x, (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

/* One of names (index into it), or an error naming the field, its value and the choices. */
static int get_enum(const sc_ctx *s, const char *key, const char *def, const char *const *names, int n_ok, int *out)
{
    const json_value *v = field(s, key);
    const char *x = v ? (v->kind == JSON_STRING ? v->str : NULL) : def;
    for (int i = 0; x && i < n_ok; i++)
        if (!strcmp(x, names[i])) {
            *out = i;
            return 0;
        }
    char choices[128] = "";
    for (int i = 0; i < n_ok; i++)
        cv_nm(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s", i ? ", " : "", names[i]);
    ag_set_error("%s: %s %s%s%s is not supported by %s (%s)", s->path, key, x ? "'" : "", x ? x : "(not a string)",
                 x ? "'" : "", CLASS_NAMES[s->kind], choices);
    return -1;
}

static int refuse_true(const sc_ctx *s, const char *key, const char *why)
{
    bool b;
    if (get_bool(s, key, false, &b))
        return -1;
    if (b) {
        ag_set_error("%s: %s true is not supported (%s)", s->path, key, why);
        return -1;
    }
    return 0;
}

int sched_config_parse(const json_value *cfg, const char *path, const char *expect_class, bool noising,
                       ag_sched_config *out)
{
    memset(out, 0, sizeof *out);
    if (!cfg || cfg->kind != JSON_OBJECT) {
        ag_set_error("%s: not a JSON object", path);
        return -1;
    }
    const char *cls = json_get_str(cfg, "_class_name");
    if (!cls) {
        ag_set_error("%s: no '_class_name'", path);
        return -1;
    }
    if (expect_class && strcmp(cls, expect_class)) {
        ag_set_error("%s: _class_name '%s' but model_index.json names '%s'", path, cls, expect_class);
        return -1;
    }
    sc_ctx s = {cfg, path, -1};
    for (int k = noising ? AG_SCHED_DDPM : AG_SCHED_PNDM; k <= (noising ? AG_SCHED_DDPM : AG_SCHED_DDIM); k++)
        if (!strcmp(cls, CLASS_NAMES[k]))
            s.kind = k;
    if (s.kind < 0) {
        ag_set_error("%s: scheduler class '%s' is not supported (%s)", path, cls,
                     noising ? "DDPMScheduler" : "PNDMScheduler or DDIMScheduler");
        return -1;
    }
    for (size_t i = 0; i < cfg->n; i++) {
        const char *k = cfg->keys[i];
        if (k[0] != '_' && !field_of(k, AG_SCHED_PNDM) && !field_of(k, AG_SCHED_DDIM) && !field_of(k, AG_SCHED_DDPM)) {
            ag_set_error("%s: unknown scheduler option '%s'", path, k);
            return -1;
        }
    }
    if (field(&s, "trained_betas")) {
        ag_set_error("%s: trained_betas (an explicit beta table) is not supported", path);
        return -1;
    }
    int betas, pred, spacing;
    double bs, be, range = 1.0;
    const bool ddim = s.kind == AG_SCHED_DDIM, pndm = s.kind == AG_SCHED_PNDM;
    out->kind = (ag_sched_kind)s.kind;
    if (get_int(&s, "num_train_timesteps", 1000, 1, 100000, &out->num_train_timesteps) ||
        get_num(&s, "beta_start", 0.0001, 0.0, 1.0, &bs) || get_num(&s, "beta_end", 0.02, 0.0, 1.0, &be) ||
        get_enum(&s, "beta_schedule", "linear", BETAS, 3, &betas) ||
        get_enum(&s, "prediction_type", "epsilon", PREDS, pndm ? 2 : 3, &pred) ||
        get_enum(&s, "timestep_spacing", "leading", SPACINGS, 3, &spacing) ||
        get_int(&s, "steps_offset", 0, 0, 100000, &out->steps_offset) ||
        get_bool(&s, "set_alpha_to_one", ddim, &out->set_alpha_to_one) ||
        get_bool(&s, "skip_prk_steps", false, &out->skip_prk_steps) ||
        get_bool(&s, "clip_sample", !pndm, &out->clip_sample) ||
        get_num(&s, "clip_sample_range", 1.0, 0.0, 1e6, &range) ||
        refuse_true(&s, "rescale_betas_zero_snr", "it changes the betas"))
        return -1;
    /* thresholding changes DDIM's step; the noising scheduler never steps */
    if (ddim && refuse_true(&s, "thresholding", "dynamic thresholding of the predicted sample"))
        return -1;
    out->beta_start = bs;
    out->beta_end = be;
    out->betas = (ag_betas_kind)betas;
    out->prediction = (ag_pred_kind)pred;
    out->spacing = (ag_spacing_kind)spacing;
    out->clip_sample_range = (float)range;
    return 0;
}

int sched_config_kvs(gs_writer *w, const char *prefix, const ag_sched_config *c)
{
    char k[128];
#define K(name) (cv_nm(k, sizeof k, "%s." name, prefix), k)
    return gs_set_str(w, K("kind"), KIND_NAMES[c->kind]) ||
                   gs_set_u32(w, K("num_train_timesteps"), (uint32_t)c->num_train_timesteps) ||
                   gs_set_f64(w, K("beta_start"), c->beta_start) || gs_set_f64(w, K("beta_end"), c->beta_end) ||
                   gs_set_str(w, K("beta_schedule"), BETAS[c->betas]) ||
                   gs_set_str(w, K("prediction_type"), PREDS[c->prediction]) ||
                   gs_set_u32(w, K("steps_offset"), (uint32_t)c->steps_offset) ||
                   gs_set_bool(w, K("set_alpha_to_one"), c->set_alpha_to_one) ||
                   gs_set_bool(w, K("skip_prk_steps"), c->skip_prk_steps) ||
                   gs_set_str(w, K("timestep_spacing"), SPACINGS[c->spacing]) ||
                   gs_set_bool(w, K("clip_sample"), c->clip_sample) ||
                   gs_set_f32(w, K("clip_sample_range"), c->clip_sample_range)
               ? -1
               : 0;
#undef K
}
