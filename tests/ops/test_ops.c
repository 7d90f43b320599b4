/* Op reference and backend parity tests.
 *
 * Reads the fixture written by tests/reference/op_cases.py (expectations computed in float64
 * numpy from graph.h's text), builds each case's graph with the graph.h constructors, runs it
 * on the cpu backend and on vulkan when a device exists, compares each result with the
 * expectation and the two backends with each other, all under the case's tolerance
 * |got - expect| <= atol + rtol * |expect|.
 *
 * usage: test_ops [--filter SUBSTR] [--backend cpu|vulkan] [--parity] [--list] [--borrow-weights] [FIXTURE.gguf]
 * --borrow-weights wraps weights from host memory (as a mapped model file is) where the backend
 * can, so the cpu backend runs its matmuls on the weights packed once.
 * --backend picks the backend under test (default: both, cpu vs vulkan parity when a device
 * exists); --parity with --backend vulkan also runs cpu and checks the two against each other.
 * env: AG_REQUIRE_VULKAN=1 turns "no vulkan device" into a failure.
 * Output: '# device: ...' per backend, one 'ok N name (...)' / 'not ok N name (...)' line per
 * case, and 'N passed, M failed, S skipped'. Exit 1 on failure, 77 when everything skipped. */
#include "ops_harness.h"
#include "ops_long.h"

#include "anygpt/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- comparing */

typedef struct {
    double max_abs, max_ratio;
    int64_t worst;
    bool bad; /* a value out of tolerance (or not finite) */
} cmp_stats;

static cmp_stats compare(const double *got, const double *want, int64_t n, double atol, double rtol)
{
    cmp_stats s = {0, 0, -1, false};
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        double lim = atol + rtol * fabs(want[i]);
        double ratio = d <= lim ? (lim > 0 ? d / lim : 0) : (lim > 0 ? d / lim : INFINITY);
        if (!isfinite(got[i]))
            d = ratio = INFINITY;
        if (s.worst < 0 || ratio > s.max_ratio) {
            s.max_ratio = ratio;
            s.worst = i;
        }
        if (d > s.max_abs)
            s.max_abs = d;
    }
    s.bad = s.max_ratio > 1.0;
    return s;
}

static void index_str(int64_t i, const int64_t ne[4], char *out, size_t len)
{
    int64_t idx[4];
    for (int d = 0; d < 4; d++) {
        idx[d] = i % ne[d];
        i /= ne[d];
    }
    snprintf(out, len, "[%lld,%lld,%lld,%lld]", (long long)idx[0], (long long)idx[1], (long long)idx[2],
             (long long)idx[3]);
}

/* Check a backend result against the expectation; appends a summary to msg. Returns false on
 * a mismatch. */
static bool check_expect(const tcase *c, const char *bname, const result *r, const double *want,
                         const int64_t wne[4], char *msg, size_t ml)
{
    size_t used = strlen(msg);
    if (memcmp(r->ne, wne, sizeof r->ne) != 0) {
        snprintf(msg + used, ml - used, "%s%s: shape [%lld,%lld,%lld,%lld], expected [%lld,%lld,%lld,%lld]",
                 used ? ", " : "", bname, (long long)r->ne[0], (long long)r->ne[1], (long long)r->ne[2],
                 (long long)r->ne[3], (long long)wne[0], (long long)wne[1], (long long)wne[2], (long long)wne[3]);
        return false;
    }
    cmp_stats s = compare(r->v, want, r->n, c->atol, c->rtol);
    if (s.bad) {
        char at[96];
        index_str(s.worst, wne, at, sizeof at);
        snprintf(msg + used, ml - used, "%s%s: max_err %.3g = %.3g x tol at %s: got %.9g expect %.9g",
                 used ? ", " : "", bname, s.max_abs, s.max_ratio, at, r->v[s.worst], want[s.worst]);
        return false;
    }
    snprintf(msg + used, ml - used, "%s%s max_err %.2g = %.2g tol", used ? ", " : "", bname, s.max_abs, s.max_ratio);
    return true;
}

static int load_expect(const tcase *c, double **want, int64_t ne[4])
{
    int64_t ti = ag_gguf_find_tensor(c->f, ops_key(c, "expect"));
    if (ti < 0)
        return -1;
    ag_gguf_tensor_ne(c->f, ti, ne);
    int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
    ag_type t = ag_gguf_tensor_type(c->f, ti);
    const void *p = ag_gguf_tensor_data(c->f, ti);
    *want = malloc((size_t)(n ? n : 1) * sizeof **want);
    if (!*want || (t != AG_TYPE_F32 && t != AG_TYPE_I32))
        return -1;
    for (int64_t i = 0; i < n; i++) {
        if (t == AG_TYPE_F32) {
            float v;
            memcpy(&v, (const char *)p + 4 * i, 4);
            (*want)[i] = v;
        } else {
            int32_t v;
            memcpy(&v, (const char *)p + 4 * i, 4);
            (*want)[i] = v;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

typedef struct {
    ag_backend *be;
    ag_allocator *alloc;
    const char *label;
} backend_slot;

/* Cases whose inputs break the op's contract (e.g. ids out of range): cpu must refuse at compute
 * time with a message, not crash; other backends are not run (undefined there by contract). */
static int run_expect_error(const tcase *c, int number, backend_slot *bs, int nb, int *skipped)
{
    for (int k = 0; k < nb; k++) {
        if (strcmp(bs[k].label, "cpu") != 0)
            continue;
        result r;
        ops_run_case(c, bs[k].be, bs[k].alloc, &r);
        free(r.v);
        if (r.st == RUN_FAIL && strncmp(r.why, "compute: ", 9) == 0 && strlen(r.why) > 9) {
            printf("ok %d %s (cpu refused: %s)\n", number, c->name, r.why + 9);
            return 0;
        }
        printf("not ok %d %s (cpu: expected a compute error, got %s%s)\n", number, c->name,
               r.st == RUN_OK ? "success" : r.st == RUN_SKIP ? "skip: " : "", r.st == RUN_OK ? "" : r.why);
        return 1;
    }
    printf("ok %d %s # SKIP (only cpu defines the error)\n", number, c->name);
    (*skipped)++;
    return 0;
}

static int run_one(const tcase *c, int number, backend_slot *bs, int nb, int *skipped)
{
    if (ops_geti(c, "expect_error", 0))
        return run_expect_error(c, number, bs, nb, skipped);
    result res[2];
    double *want = NULL;
    int64_t wne[4];
    char msg[1024] = "", skipmsg[512] = "";
    bool ok = true, any_run = false, any_skip = false;
    bool is_long = strcmp(c->op, "attention_long") == 0;

    if (!is_long && load_expect(c, &want, wne) != 0) {
        printf("not ok %d %s (fixture: bad expectation)\n", number, c->name);
        free(want);
        return 1;
    }
    double slow = 0;
    for (int k = 0; k < nb; k++) {
        double t0 = ops_now();
        if (is_long)
            ops_attention_long(c->f, c->idx, bs[k].be, bs[k].alloc, c->atol, c->rtol, &res[k].st, &res[k].v,
                               &res[k].n, res[k].ne, &res[k].seconds, res[k].why, sizeof res[k].why);
        else
            ops_run_case(c, bs[k].be, bs[k].alloc, &res[k]);
        if (ops_now() - t0 > slow)
            slow = ops_now() - t0;
        if (res[k].st == RUN_SKIP) {
            any_skip = true;
            size_t u = strlen(skipmsg);
            snprintf(skipmsg + u, sizeof skipmsg - u, "%s%s", u ? "; " : "", res[k].why);
        } else if (res[k].st == RUN_FAIL) {
            ok = false;
            size_t u = strlen(msg);
            snprintf(msg + u, sizeof msg - u, "%s%s: %s", u ? ", " : "", bs[k].label, res[k].why);
        } else {
            any_run = true;
            if (is_long) {
                size_t u = strlen(msg);
                snprintf(msg + u, sizeof msg - u, "%s%s %s", u ? ", " : "", bs[k].label, res[k].why);
            } else if (!check_expect(c, bs[k].label, &res[k], want, wne, msg, sizeof msg)) {
                ok = false;
            }
        }
    }
    /* parity: both backends ran; vulkan against cpu's values under the case's tolerance */
    if (nb == 2 && res[0].st == RUN_OK && res[1].st == RUN_OK) {
        size_t u = strlen(msg);
        if (res[0].n != res[1].n) {
            ok = false;
            snprintf(msg + u, sizeof msg - u, ", parity: sizes differ");
        } else {
            cmp_stats s = compare(res[1].v, res[0].v, res[0].n, c->atol, c->rtol);
            if (s.bad) {
                ok = false;
                char at[96];
                index_str(s.worst, res[0].ne, at, sizeof at);
                snprintf(msg + u, sizeof msg - u, ", PARITY cpu vs vulkan: max_diff %.3g = %.3g x tol at %s", s.max_abs,
                         s.max_ratio, at);
            } else {
                snprintf(msg + u, sizeof msg - u, ", parity %.2g tol", s.max_ratio);
            }
        }
    }
    for (int k = 0; k < nb; k++)
        free(res[k].v);
    free(want);
    if (slow > 1.0) { /* keep an eye on the suite's run time */
        size_t u = strlen(msg);
        snprintf(msg + u, sizeof msg - u, ", %.1fs", slow);
    }
    if (!ok) {
        printf("not ok %d %s (%s)%s%s\n", number, c->name, msg, any_skip ? "; skipped: " : "", skipmsg);
        return 1;
    }
    if (any_skip) {
        (*skipped)++;
        if (any_run)
            printf("ok %d %s (%s) # SKIP %s\n", number, c->name, msg, skipmsg);
        else
            printf("ok %d %s # SKIP (%s)\n", number, c->name, skipmsg);
        return 0;
    }
    printf("ok %d %s (%s)\n", number, c->name, msg);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: test_ops [--filter SUBSTR] [--backend cpu|vulkan] [--parity] [--list] [--borrow-weights] "
                    "[FIXTURE.gguf]\n");
}

int main(int argc, char **argv)
{
    const char *filter = NULL, *which = NULL, *path = NULL;
    bool list = false, parity = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            which = argv[++i];
        else if (strcmp(argv[i], "--list") == 0)
            list = true;
        else if (strcmp(argv[i], "--parity") == 0)
            parity = true;
        else if (strcmp(argv[i], "--borrow-weights") == 0)
            ops_borrow_weights = true;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            usage();
            return 2;
        }
    }
    if (which && strcmp(which, "cpu") != 0 && strcmp(which, "vulkan") != 0) {
        usage();
        return 2;
    }
    char defpath[4096];
    if (!path) {
        const char *root = getenv("AG_BUILD_ROOT");
        snprintf(defpath, sizeof defpath, "%s/tests/ops/ops_cases.gguf", root ? root : ".");
        path = defpath;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ag_gguf *f = ag_gguf_open(path);
    if (!f) {
        printf("not ok 1 open fixture: %s\n0 passed, 1 failed, 0 skipped\n", ag_last_error());
        return 1;
    }
    int32_t n_cases = 0;
    if (!ag_gguf_get_i32(f, "ops.n_cases", &n_cases) || n_cases <= 0) {
        printf("not ok 1 fixture has no ops.n_cases\n0 passed, 1 failed, 0 skipped\n");
        ag_gguf_close(f);
        return 1;
    }

    backend_slot bs[2];
    int nb = 0, failed = 0, passed = 0, skipped = 0;
    const bool want_cpu = !which || strcmp(which, "cpu") == 0 || parity;
    const bool want_vk = !which || strcmp(which, "vulkan") == 0;
    const char *req = getenv("AG_REQUIRE_VULKAN");
    const bool require_vk = want_vk && req && strcmp(req, "1") == 0;
    if (!list && want_cpu) {
        ag_backend *be = ag_backend_cpu_new(0);
        if (!be) {
            printf("not ok 1 cpu backend: %s\n0 passed, 1 failed, 0 skipped\n", ag_last_error());
            ag_gguf_close(f);
            return 1;
        }
        bs[nb++] = (backend_slot){be, ag_allocator_new(be), "cpu"};
    }
    if (!list && want_vk) {
        int ndev = ag_vulkan_device_count();
        ag_backend *be = ndev > 0 ? ag_backend_vulkan_new(-1) : NULL;
        if (be) {
            bs[nb++] = (backend_slot){be, ag_allocator_new(be), "vulkan"};
        } else if (require_vk) {
            printf("not ok 1 vulkan required (AG_REQUIRE_VULKAN=1) but unavailable: %s\n",
                   ndev > 0 ? ag_last_error() : "no device");
            failed++;
        } else {
            printf("# vulkan: no device (%s)\n", ndev > 0 ? ag_last_error() : "none found");
        }
    }
    if (which && strcmp(which, "vulkan") == 0 && nb == 1 && parity) {
        /* cpu came up but vulkan did not: nothing under test */
        ag_allocator_free(bs[0].alloc);
        ag_backend_free(bs[0].be);
        nb = 0;
    }
    for (int k = 0; k < nb; k++)
        printf("# device: %s %s\n", bs[k].label, ag_backend_device_name(bs[k].be));

    const double t0 = ops_now();
    for (int32_t i = 0; i < n_cases && (nb > 0 || list); i++) {
        tcase c = {.f = f, .idx = i};
        c.name = ag_gguf_get_str(f, ops_key(&c, "name"));
        c.op = ag_gguf_get_str(f, ops_key(&c, "op"));
        if (!c.name || !c.op) {
            printf("not ok %d (fixture: case %d has no name/op)\n", i + 1, i);
            failed++;
            continue;
        }
        if (filter && !strstr(c.name, filter))
            continue;
        if (list) {
            printf("%d %s\n", i + 1, c.name);
            continue;
        }
        c.n_src = ops_geti(&c, "n_src", 0);
        c.atol = ops_getf(&c, "atol", 0);
        c.rtol = ops_getf(&c, "rtol", 0);
        int before = skipped;
        if (run_one(&c, i + 1, bs, nb, &skipped))
            failed++;
        else if (skipped == before)
            passed++;
    }
    if (!list)
        printf("# %.1f s\n", ops_now() - t0);
    for (int k = 0; k < nb; k++) {
        ag_allocator_free(bs[k].alloc);
        ag_backend_free(bs[k].be);
    }
    ag_gguf_close(f);
    if (list)
        return 0;
    if (nb == 0 && !failed) {
        printf("0 passed, 0 failed, 1 skipped\n");
        return 77;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (failed)
        return 1;
    return passed == 0 && skipped > 0 ? 77 : 0;
}

