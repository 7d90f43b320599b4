/* The unCLIP diffusion schedulers against tests/reference/sched_ref.py (an independent
 * PyTorch/numpy rendering of diffusers' PNDMScheduler, DDIMScheduler and DDPMScheduler with
 * diffusers' dtypes): the timestep lists for every spacing, offset and many step counts
 * (including the ones diffusers cannot run, which must be refused), every step's output of
 * whole runs on synthetic model outputs (PLMS, PRK + PLMS, DDIM; epsilon, v, sample), add_noise,
 * and sqrt(abar_t), sqrt(1 - abar_t) for every t of three beta schedules; all bit for bit.
 * Also the closed-form anchors of the spec and refusals of bad configs and calls.
 *
 * usage: test_unclip_sched FIXTURE_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/error.h"
#include "anygpt/unclip_sched.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fix_dir;

static void *fixture(const char *name, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", fix_dir, name);
    void *p = ag_read_file(path, n);
    CHECK(p != NULL, "cannot read fixture %s", path);
    return p;
}

static char *text_fixture(const char *name)
{
    size_t n;
    char *p = fixture(name, &n);
    if (p) {
        p = realloc(p, n + 1);
        p[n] = 0;
    }
    return p;
}

static int lookup(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* "kind betas beta_start beta_end N pred offset set_one skip_prk spacing clip clip_range" as
 * sched_ref.cfg_line writes it; returns the rest of the line, NULL if malformed. */
static char *parse_config(char *line, ag_sched_config *c)
{
    static const char *const kinds[] = {"pndm", "ddim", "ddpm"};
    static const char *const betas[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample"};
    static const char *const spacings[] = {"leading", "trailing", "linspace"};
    char kind[16], beta[32], pred[16], spacing[16];
    int n_train, offset, set_one, skip, clip, used = 0;
    double bs, be, range;
    if (sscanf(line, "%15s %31s %lf %lf %d %15s %d %d %d %15s %d %lf%n", kind, beta, &bs, &be, &n_train, pred, &offset,
               &set_one, &skip, spacing, &clip, &range, &used) != 12)
        return NULL;
    memset(c, 0, sizeof *c);
    int k = lookup(kind, kinds, 3), b = lookup(beta, betas, 3), p = lookup(pred, preds, 3),
        sp = lookup(spacing, spacings, 3);
    if (k < 0 || b < 0 || p < 0 || sp < 0)
        return NULL;
    c->kind = (ag_sched_kind)k;
    c->betas = (ag_betas_kind)b;
    c->prediction = (ag_pred_kind)p;
    c->spacing = (ag_spacing_kind)sp;
    c->num_train_timesteps = n_train;
    c->beta_start = bs;
    c->beta_end = be;
    c->steps_offset = offset;
    c->set_alpha_to_one = set_one;
    c->skip_prk_steps = skip;
    c->clip_sample = clip;
    c->clip_sample_range = (float)range;
    return line + used;
}

static void check_timesteps(void)
{
    char *man = text_fixture("ts_cases.txt");
    if (!man)
        return;
    int cases = 0, refused = 0, bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(man, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ag_sched_config c;
        char *rest = parse_config(line, &c);
        int steps, count, used;
        if (!rest || sscanf(rest, "%d %d%n", &steps, &count, &used) != 2) {
            CHECK(0, "bad ts_cases line '%s'", line);
            break;
        }
        rest += used;
        ag_clear_error();
        ag_sched *s = ag_sched_new(&c, steps);
        cases++;
        if (count < 0) {
            refused++;
            CHECK(s == NULL && ag_last_error() && *ag_last_error(), "%s: diffusers cannot run %d steps, accepted", line,
                  steps);
        } else if (!s) {
            bad++;
            CHECK(0, "%s: refused (%s)", line, ag_last_error());
        } else {
            int ok = ag_sched_n_evals(s) == count;
            for (int i = 0; ok && i < count; i++) {
                int t = (int)strtol(rest, &rest, 10);
                ok = ag_sched_timestep(s, i) == t;
            }
            bad += !ok;
            CHECK(ok, "%s: timesteps differ (%d evaluations)", line, ag_sched_n_evals(s));
        }
        ag_sched_free(s);
    }
    printf("# timesteps: %d step counts x kinds x spacings x offsets, %d refused like diffusers' failures, %d differ\n",
           cases, refused, bad);
    CHECK(cases > 1000 && refused > 10, "only %d timestep cases (%d refused)", cases, refused);
    free(man);
}

static uint32_t ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = INT32_MIN - ia;
    if (ib < 0)
        ib = INT32_MIN - ib;
    int64_t d = (int64_t)ia - ib;
    return (uint32_t)(d < 0 ? -d : d);
}

/* one whole run; in_place: the output overwrites the sample buffer (as a pipeline does) */
static void run_case(const ag_sched_config *c, int steps, size_t n, int evals, const float *data, const char *label,
                     bool in_place, size_t *n_cmp, size_t *n_same, double *max_abs, uint32_t *max_ulp)
{
    ag_sched *s = ag_sched_new(c, steps);
    CHECK(s != NULL, "%s: %s", label, ag_last_error());
    if (!s)
        return;
    CHECK(ag_sched_n_evals(s) == evals && ag_sched_init_noise_sigma(s) == 1.0f, "%s: %d evaluations, expected %d",
          label, ag_sched_n_evals(s), evals);
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    memcpy(x, data, n * sizeof(float));
    size_t bad = 0;
    for (int i = 0; i < evals && i < ag_sched_n_evals(s); i++) {
        const float *mo = data + n + (size_t)i * 2 * n, *ref = mo + n;
        float *out = in_place ? x : y;
        if (ag_sched_step(s, i, mo, x, out, n) != 0) {
            CHECK(0, "%s: step %d: %s", label, i, ag_last_error());
            break;
        }
        for (size_t j = 0; j < n; j++) {
            if (memcmp(&out[j], &ref[j], 4) == 0) {
                (*n_same)++;
            } else {
                bad++;
                double d = fabs((double)out[j] - ref[j]);
                *max_abs = d > *max_abs ? d : *max_abs;
                uint32_t u = ulps(out[j], ref[j]);
                *max_ulp = u > *max_ulp ? u : *max_ulp;
            }
        }
        *n_cmp += n;
        if (!in_place)
            memcpy(x, y, n * sizeof(float));
    }
    CHECK(bad == 0, "%s: %zu values differ from the reference", label, bad);
    /* a step past the end, or out of order, is refused */
    CHECK(ag_sched_step(s, evals, data, x, y, n) == -1, "%s: step past the end accepted", label);
    ag_sched_free(s);
    free(x);
    free(y);
}

static void check_runs(void)
{
    char *man = text_fixture("run_cases.txt");
    if (!man)
        return;
    size_t n_cmp = 0, n_same = 0;
    double max_abs = 0;
    uint32_t max_ulp = 0;
    int runs = 0;
    char *save = NULL;
    for (char *line = strtok_r(man, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ag_sched_config c;
        char *rest = parse_config(line, &c);
        int steps, evals;
        size_t n;
        if (!rest || sscanf(rest, "%d %zu %d", &steps, &n, &evals) != 3) {
            CHECK(0, "bad run_cases line '%s'", line);
            break;
        }
        char name[32];
        snprintf(name, sizeof name, "run_%d.bin", runs);
        size_t bytes;
        float *data = fixture(name, &bytes);
        if (!data || bytes != (1 + 2 * (size_t)evals) * n * sizeof(float)) {
            CHECK(0, "%s: %zu bytes", name, bytes);
            free(data);
            break;
        }
        run_case(&c, steps, n, evals, data, line, false, &n_cmp, &n_same, &max_abs, &max_ulp);
        run_case(&c, steps, n, evals, data, line, true, &n_cmp, &n_same, &max_abs, &max_ulp);
        printf("# run %-2d %s %d steps: %d evaluations compared\n", runs, line, steps, evals);
        free(data);
        runs++;
    }
    printf("# scheduler runs: %zu of %zu step outputs bit-identical to the reference (max |diff| %.3g, %u ulp)\n",
           n_same, n_cmp, max_abs, max_ulp);
    CHECK(runs >= 15, "only %d runs", runs);
    free(man);
}

static void check_add_noise(void)
{
    char *man = text_fixture("noise.txt");
    size_t bytes;
    float *data = fixture("noise.bin", &bytes);
    if (!man || !data) {
        free(man);
        free(data);
        return;
    }
    size_t off = 0, same = 0, total = 0;
    char *save = NULL;
    for (char *line = strtok_r(man, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ag_sched_config c;
        char *rest = parse_config(line, &c);
        int t;
        size_t n;
        if (!rest || sscanf(rest, "%d %zu", &t, &n) != 2 || (off + 3 * n) * 4 > bytes) {
            CHECK(0, "bad noise case '%s'", line);
            break;
        }
        float *out = malloc(n * sizeof(float));
        CHECK(ag_ddpm_add_noise(&c, t, data + off, data + off + n, out, n) == 0, "add_noise: %s", ag_last_error());
        size_t s0 = same;
        for (size_t j = 0; j < n; j++)
            same += memcmp(&out[j], &data[off + 2 * n + j], 4) == 0;
        total += n;
        CHECK(same - s0 == n, "add_noise %s t=%d: %zu of %zu differ", line, t, n - (same - s0), n);
        free(out);
        off += 3 * n;
    }
    printf("# add_noise: %zu of %zu values bit-identical\n", same, total);
    free(man);
    free(data);
}

static ag_sched_config base_config(ag_betas_kind b, double start, double end)
{
    ag_sched_config c = {0};
    c.kind = AG_SCHED_PNDM;
    c.num_train_timesteps = 1000;
    c.beta_start = start;
    c.beta_end = end;
    c.betas = b;
    c.prediction = AG_PRED_V;
    c.steps_offset = 1;
    c.skip_prk_steps = true;
    c.clip_sample_range = 1.0f;
    return c;
}

/* sqrt(abar_t) and sqrt(1 - abar_t) for every t, probed through add_noise */
static void check_abar(const char *name, const ag_sched_config *c, float *sa0, float *sb0)
{
    char file[64];
    snprintf(file, sizeof file, "abar_%s.bin", name);
    size_t bytes;
    float *ref = fixture(file, &bytes);
    const int N = c->num_train_timesteps;
    if (!ref || bytes != 2 * (size_t)N * 4) {
        CHECK(0, "%s: %zu bytes", file, bytes);
        free(ref);
        return;
    }
    int bad = 0;
    for (int t = 0; t < N; t++) {
        float one = 1.0f, zero = 0.0f, sa, sb;
        if (ag_ddpm_add_noise(c, t, &one, &zero, &sa, 1) != 0 || ag_ddpm_add_noise(c, t, &zero, &one, &sb, 1) != 0) {
            CHECK(0, "add_noise t=%d: %s", t, ag_last_error());
            break;
        }
        bad += memcmp(&sa, &ref[t], 4) != 0 || memcmp(&sb, &ref[N + t], 4) != 0;
        if (t == 0) {
            *sa0 = sa;
            *sb0 = sb;
        }
    }
    CHECK(bad == 0, "%s schedule: sqrt(abar_t) or sqrt(1 - abar_t) differ at %d of %d timesteps", name, bad, N);
    printf("# %s betas: sqrt(abar_t), sqrt(1 - abar_t) bit-identical at %d of %d timesteps\n", name, N - bad, N);
    free(ref);
}

static void check_schedules(void)
{
    float sa, sb;
    ag_sched_config cos = base_config(AG_BETAS_SQUAREDCOS_CAP_V2, 0.0001, 0.02);
    check_abar("noising", &cos, &sa, &sb);
    /* the spec's closed-form values at t = 0 (8 decimals) */
    CHECK(fabs(sa - 0.99997932) < 5e-9 && fabs(sb - 0.00642698) < 5e-9, "squaredcos t=0: %.9f %.9f", (double)sa,
          (double)sb);
    ag_sched_config sd = base_config(AG_BETAS_SCALED_LINEAR, 0.00085, 0.012);
    check_abar("unclip", &sd, &sa, &sb);
    CHECK(fabs((double)sa * sa - 0.99915) < 1e-7, "scaled_linear abar_0 = %.9f, expected 0.99915", (double)sa * sa);
    ag_sched_config lin = base_config(AG_BETAS_LINEAR, 0.0001, 0.02);
    check_abar("linear", &lin, &sa, &sb);
}

static void expect_refused(const ag_sched_config *c, int steps, const char *what)
{
    ag_clear_error();
    ag_sched *s = ag_sched_new(c, steps);
    CHECK(s == NULL && ag_last_error() && strstr(ag_last_error(), what), "%s: accepted or error '%s'", what,
          ag_last_error() ? ag_last_error() : "(none)");
    ag_sched_free(s);
}

static void check_refusals(void)
{
    const ag_sched_config ok = base_config(AG_BETAS_SCALED_LINEAR, 0.00085, 0.012);
    ag_sched_config c = ok;
    expect_refused(&c, 0, "inference steps");
    expect_refused(&c, 1001, "inference steps");
    expect_refused(&c, 1000, "timestep 1000"); /* leading + offset 1 runs past the table */
    c.kind = AG_SCHED_DDPM;
    expect_refused(&c, 20, "DDPM");
    c = ok;
    c.prediction = AG_PRED_SAMPLE;
    expect_refused(&c, 20, "sample prediction");
    c = ok;
    c.skip_prk_steps = false;
    expect_refused(&c, 3, "at least 4");
    c = ok;
    c.num_train_timesteps = 0;
    expect_refused(&c, 1, "num_train_timesteps");
    c = ok;
    c.beta_end = NAN;
    expect_refused(&c, 20, "beta_end");
    c = ok;
    c.betas = AG_BETAS_LINEAR;
    c.beta_start = 0.5;
    c.beta_end = 1.5;
    expect_refused(&c, 20, "outside [0, 1)");
    c = ok;
    c.betas = (ag_betas_kind)7;
    expect_refused(&c, 20, "unknown");
    expect_refused(NULL, 20, "no config");

    float x[4] = {1, 2, 3, 4}, y[4];
    ag_clear_error();
    CHECK(ag_ddpm_add_noise(&ok, -1, x, x, y, 4) == -1 && strstr(ag_last_error(), "noise level"),
          "add_noise t=-1 accepted");
    CHECK(ag_ddpm_add_noise(&ok, 1000, x, x, y, 4) == -1, "add_noise t=1000 accepted");

    ag_sched *s = ag_sched_new(&ok, 20);
    CHECK(s != NULL, "SD unCLIP config refused: %s", ag_last_error());
    if (s) {
        CHECK(ag_sched_step(s, 1, x, x, y, 4) == -1 && strstr(ag_last_error(), "out of order"), "step 1 first accepted");
        CHECK(ag_sched_step(s, 0, x, x, y, 4) == 0, "step 0: %s", ag_last_error());
        CHECK(ag_sched_step(s, 1, x, x, y, 3) == -1 && strstr(ag_last_error(), "earlier steps"),
              "changed sample size accepted");
        CHECK(ag_sched_step(s, 1, NULL, x, y, 4) == -1, "missing model output accepted");
        CHECK(ag_sched_timestep(s, -1) == -1 && ag_sched_timestep(s, 21) == -1, "timestep out of range");
        ag_sched_free(s);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    check_timesteps();
    check_runs();
    check_add_noise();
    check_schedules();
    check_refusals();
    return t_finish();
}
