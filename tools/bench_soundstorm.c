/* anygpt-bench-soundstorm WORKDIR [--python PY --ref soundstorm_ref.py --convert ANYGPT_CONVERT]
 *                                 [--model FILE.gguf] [--dtype f32|f16] [--threads N] [--steps S]
 *                                 [--devices cpu,vulkan] [--one-pass] [--repeat R]
 *
 * SoundStorm speed at the real shape (dim 1024, depth 12, 8 x 128 heads, K 1024, 7 levels) on a
 * 3 s voice prompt + 5 s target (150 + 250 frames, N = 400), AnyGPT's decoding (steps 3:
 * 10 passes, greedy). With --python/--ref/--convert the PyTorch reference (tests/reference/
 * soundstorm_ref.py bench) writes a random real-sized checkpoint in the published layout, times
 * its own generate on 2 threads, and this tool converts that checkpoint and times ours on each
 * device, printing seconds and the ratio to PyTorch. --model skips PyTorch and uses a GGUF
 * (the prompt and semantic codes are then random). --one-pass times a single network pass at
 * N = 400 instead (for slow devices such as lavapipe). The machine may be shared: PyTorch and
 * ours run --repeat times each (default 3) in the same run, alternating (PyTorch, cpu, PyTorch,
 * cpu, ...), and the quietest (fastest) of each gives the ratio; every generate also prints where its time went (network passes, the fastest
 * one, host-side decoding), next to single passes timed alone. Not run by meson test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/soundstorm.h"

#define T_TGT 250
#define T_PROMPT 150

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int read_i32(const char *dir, const char *name, int32_t *dst, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(dst, sizeof *dst, n, f) : 0;
    if (f)
        fclose(f);
    return got == n ? 0 : -1;
}

static int sh(const char *cmd)
{
    printf("$ %s\n", cmd);
    fflush(stdout);
    return system(cmd);
}

/* One run of the PyTorch reference (the first also writes the checkpoint); its seconds, 0 on
 * failure. */
static double torch_run(const char *py, const char *ref, const char *dir)
{
    char cmd[16384], path[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' bench '%s'", py, ref, dir);
    if (sh(cmd) != 0) {
        fprintf(stderr, "the PyTorch reference failed (needs torch in %s)\n", py);
        return 0;
    }
    double s_run = 0;
    snprintf(path, sizeof path, "%s/torch_seconds.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%lf", &s_run) != 1)
        s_run = 0;
    if (f)
        fclose(f);
    return s_run;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *py = NULL, *ref = NULL, *conv = NULL, *model = NULL, *dtype = "f16", *devs = "cpu,vulkan";
    int threads = 2, steps = 3, repeat = 3;
    bool one_pass = false;
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures show up as they come, even into a file */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            dir = a;
            continue;
        }
        if (!strcmp(a, "--one-pass")) {
            one_pass = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--python"))
            py = v;
        else if (!strcmp(a, "--ref"))
            ref = v;
        else if (!strcmp(a, "--convert"))
            conv = v;
        else if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--dtype"))
            dtype = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--steps"))
            steps = atoi(v);
        else if (!strcmp(a, "--devices"))
            devs = v;
        else if (!strcmp(a, "--repeat"))
            repeat = atoi(v) < 1 ? 1 : atoi(v) > 10 ? 10 : atoi(v);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (!dir || (!model && (!py || !ref || !conv))) {
        fprintf(stderr, "usage: %s WORKDIR (--python PY --ref soundstorm_ref.py --convert ANYGPT_CONVERT | --model "
                        "FILE.gguf) [--dtype f32|f16] [--threads N] [--steps S] [--devices cpu,vulkan]\n",
                argv[0]);
        return 2;
    }
    mkdir(dir, 0755);
    char cmd[16384], gguf[4096];
    double torch_s = 0;
    int32_t sem[T_TGT], prompt[T_PROMPT * 8];
    if (!model) {
        /* the other runs alternate with ours on the first device, so both meet the same load */
        if ((torch_s = torch_run(py, ref, dir)) <= 0)
            return 1;
        snprintf(gguf, sizeof gguf, "%s/soundstorm-%s.gguf", dir, dtype);
        snprintf(cmd, sizeof cmd, "'%s' soundstorm '%s/speechtokenizer_soundstorm_mls.pt' '%s' --quiet --dtype %s",
                 conv, dir, gguf, dtype);
        if (sh(cmd) != 0)
            return 1;
        model = gguf;
    }
    if (read_i32(dir, "sem.i32", sem, T_TGT) || read_i32(dir, "prompt.i32", prompt, T_PROMPT * 8)) {
        srand(1);
        for (int i = 0; i < T_TGT; i++)
            sem[i] = rand() % 1024;
        for (int i = 0; i < T_PROMPT * 8; i++)
            prompt[i] = rand() % 1024;
    }
    int32_t *out = malloc(sizeof(int32_t) * T_TGT * 8), *first = malloc(sizeof(int32_t) * T_TGT * 8);
    bool have_first = false;
    int rc = 0;
    int torch_runs = torch_s > 0;
    bool interleaved = false;
    for (int d = 0; d < 2; d++) {
        const char *name = d ? "vulkan" : "cpu";
        if (!strstr(devs, name))
            continue;
        ag_backend *be = d ? ag_backend_vulkan_new(-1) : ag_backend_cpu_new(threads);
        if (!be) {
            printf("%s: unavailable (%s)\n", name, ag_last_error());
            continue;
        }
        double t0 = now_s();
        ag_soundstorm *m = ag_soundstorm_load(be, model, NULL, NULL);
        double t_load = now_s() - t0;
        if (!m) {
            printf("%s: load failed: %s\n", name, ag_last_error());
            ag_backend_free(be);
            rc = 1;
            continue;
        }
        if (one_pass) {
            const int64_t n = T_TGT + T_PROMPT;
            int32_t *tok = malloc(sizeof(int32_t) * (size_t)n * 7), *cond = malloc(sizeof(int32_t) * (size_t)n);
            float *lg = malloc(sizeof(float) * (size_t)n * 7 * 1024);
            for (int64_t i = 0; tok && cond && i < n; i++) {
                cond[i] = i < T_PROMPT ? prompt[i * 8] : sem[i - T_PROMPT];
                for (int q = 0; q < 7; q++)
                    tok[i * 7 + q] = i < T_PROMPT ? prompt[i * 8 + 1 + q] : 1024;
            }
            double best = 1e30;
            for (int r = 0; r < 2 && tok && cond && lg; r++) { /* the first run also builds the graph */
                t0 = now_s();
                if (ag_soundstorm_forward(m, tok, cond, n, lg) != 0) {
                    printf("%s: forward failed: %s\n", name, ag_last_error());
                    rc = 1;
                    break;
                }
                const double dt = now_s() - t0;
                best = dt < best ? dt : best;
            }
            printf("%s (%s, %s weights): one pass at N = %lld: %.2f s (x10 passes = %.1f s)\n", name,
                   ag_backend_device_name(be), dtype, (long long)n, best, 10 * best);
            free(tok);
            free(cond);
            free(lg);
            ag_soundstorm_free(m);
            ag_backend_free(be);
            continue;
        }
        /* page the mmap'd weights in and build the graph (PyTorch's weights are in RAM already):
         * one untimed single-step generation of the same shape */
        t0 = now_s();
        if (ag_soundstorm_generate(m, sem, T_TGT, prompt, T_PROMPT, 1, 1, true, out) == 0)
            printf("%s: warm-up (page-in, graph) %.2f s\n", name, now_s() - t0);
        int g = 0;
        double t = 1e30;
        for (int r = 0; r < repeat && g == 0; r++) {
            if (r > 0 && torch_runs > 0 && !interleaved) {
                const double ts = torch_run(py, ref, dir);
                torch_s = ts > 0 && ts < torch_s ? ts : torch_s;
                torch_runs++;
            }
            t0 = now_s();
            g = ag_soundstorm_generate(m, sem, T_TGT, prompt, T_PROMPT, steps, 1, true, out);
            const double tr = now_s() - t0;
            ag_soundstorm_timing tm;
            ag_soundstorm_last_timing(m, &tm);
            if (g == 0)
                printf("%s: generate %d: %.2f s = %d network passes %.2f s (fastest %.2f s, mean %.2f s) + host "
                       "decoding %.2f s\n",
                       name, r + 1, tr, tm.passes, tm.network_s, tm.fastest_pass_s, tm.network_s / tm.passes,
                       tm.host_s);
            t = tr < t ? tr : t;
        }
        interleaved = interleaved || torch_runs > 0;
        if (torch_runs > 0 && d == 0)
            printf("pytorch (2 threads, quietest of %d, alternating with cpu's): %.2f s for %d passes (%.2f s/pass)\n",
                   torch_runs, torch_s, steps + 7, torch_s / (steps + 7));
        if (g != 0) {
            printf("%s: generate failed: %s\n", name, ag_last_error());
            rc = 1;
        } else {
            printf("%s (%s, %s weights%s): load %.2f s, generate (quietest of %d) %.2f s (%.2f s/pass)", name,
                   ag_backend_device_name(be), dtype, d ? "" : (threads == 2 ? ", 2 threads" : ""), t_load, repeat, t,
                   t / (steps + 7));
            if (torch_s > 0)
                printf(", %.2fx PyTorch's time (%.1fx faster)", t / torch_s, torch_s / t);
            printf("\n");
            /* the same network pass alone, right after: a pass inside generate costs this plus
             * the host-side decoding (top-k, sampling, re-masking) */
            const int64_t n = T_TGT + T_PROMPT;
            int32_t *tok = malloc(sizeof(int32_t) * (size_t)n * 7), *cond = malloc(sizeof(int32_t) * (size_t)n);
            float *lg = malloc(sizeof(float) * (size_t)n * 7 * 1024);
            double sum = 0, best = 1e30;
            int done = 0;
            for (int64_t i = 0; tok && cond && lg && i < n; i++) {
                cond[i] = i < T_PROMPT ? prompt[i * 8] : sem[i - T_PROMPT];
                for (int q = 0; q < 7; q++)
                    tok[i * 7 + q] = i < T_PROMPT ? prompt[i * 8 + 1 + q] : out[(i - T_PROMPT) * 8 + 1 + q];
            }
            for (int r = 0; r < 3 && tok && cond && lg; r++, done++) {
                t0 = now_s();
                if (ag_soundstorm_forward(m, tok, cond, n, lg) != 0)
                    break;
                const double dt = now_s() - t0;
                sum += dt;
                best = dt < best ? dt : best;
            }
            if (done)
                printf("  a pass alone right after: best %.2f s, mean %.2f s (inside generate: %.2f s/pass)\n", best,
                       sum / done, t / (steps + 7));
            free(tok);
            free(cond);
            free(lg);
            if (have_first) {
                int diff = 0;
                for (int i = 0; i < T_TGT * 8; i++)
                    diff += out[i] != first[i];
                printf("  tokens differing from cpu: %d of %d\n", diff, T_TGT * 8);
            } else {
                memcpy(first, out, sizeof(int32_t) * T_TGT * 8);
                have_first = true;
            }
        }
        ag_soundstorm_free(m);
        ag_backend_free(be);
    }
    free(out);
    free(first);
    return rc;
}
