/* ag_torch_manual_seed + ag_torch_randn against the installed PyTorch itself (draws written by
 * tests/reference/torch_rng_ref.py): every value must be bit-identical, for seeds up to 2^64-1,
 * sizes below 16 (the scalar double path and its cached second normal), at 16, with a tail
 * (n % 16 != 0), large, and successive calls on one generator. Both of PyTorch's kernels are
 * checked: the one it runs here by default (AVX2 on x86-64) and ATEN_CPU_CAPABILITY=default.
 *
 * usage: test_torch_rng FIXTURE_DIR */
#include "../common/ag_fixture.h"

#include "anygpt/torch_rng.h"

#include <inttypes.h>
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

/* a text fixture, NUL-terminated */
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

/* distance in units in the last place between two finite floats */
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

static void check_kind(const char *kind)
{
    char name[64];
    size_t n_ref;
    snprintf(name, sizeof name, "rng_%s.bin", kind);
    float *ref = fixture(name, &n_ref);
    snprintf(name, sizeof name, "rng_%s.txt", kind);
    char *cap = text_fixture(name);
    char *man = text_fixture("rng_cases.txt");
    if (!ref || !cap || !man) {
        free(ref);
        free(cap);
        free(man);
        return;
    }
    /* PyTorch's AVX2 kernel is also the one it uses on AVX-512 machines */
    const bool avx2 = strstr(cap, "AVX2") || strstr(cap, "AVX512");
    void (*randn)(ag_torch_gen *, float *, int64_t) = avx2 ? ag_torch_randn : ag_torch_randn_noavx;

    size_t off = 0, same = 0, total = 0;
    uint32_t max_ulp = 0;
    int cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(man, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sizes = strchr(line, ' ');
        if (!sizes) {
            CHECK(0, "bad manifest line '%s'", line);
            break;
        }
        *sizes++ = 0;
        uint64_t seed = strtoull(line, NULL, 10);
        ag_torch_gen g;
        ag_torch_manual_seed(&g, seed);
        size_t case_bad = 0;
        for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
            int64_t n = strtoll(tok, NULL, 10);
            if (n <= 0 || (off + (size_t)n) * 4 > n_ref) {
                CHECK(0, "reference %s too short at seed %" PRIu64, kind, seed);
                goto done;
            }
            float *got = malloc((size_t)n * sizeof(float));
            randn(&g, got, n);
            for (int64_t i = 0; i < n; i++) {
                if (memcmp(&got[i], &ref[off + (size_t)i], 4) == 0) {
                    same++;
                } else {
                    case_bad++;
                    uint32_t u = ulps(got[i], ref[off + (size_t)i]);
                    max_ulp = u > max_ulp ? u : max_ulp;
                }
            }
            total += (size_t)n;
            off += (size_t)n;
            free(got);
        }
        CHECK(case_bad == 0, "%s: seed %" PRIu64 " sizes %s: %zu values differ from torch.randn", kind, seed, sizes,
              case_bad);
        cases++;
    }
done:
    CHECK(off * 4 == n_ref && cases > 50, "%s: %d cases, %zu of %zu reference values used", kind, cases, off, n_ref / 4);
    printf("# torch.randn (%s kernel, PyTorch reported '%.*s'): %zu of %zu values bit-identical, max %u ulp apart\n",
           avx2 ? "AVX2" : "no-AVX", (int)strcspn(cap, "\n"), cap, same, total, max_ulp);
    free(ref);
    free(cap);
    free(man);
}

/* manual_seed keeps the 64-bit seed but only its low 32 bits seed the state */
static void check_seed_bits(void)
{
    ag_torch_gen a, b;
    ag_torch_manual_seed(&a, 5489);
    ag_torch_manual_seed(&b, 5489 + (UINT64_C(1) << 32));
    float x[40], y[40];
    ag_torch_randn(&a, x, 40);
    ag_torch_randn(&b, y, 40);
    CHECK(memcmp(x, y, sizeof x) == 0, "seeds equal mod 2^32 must draw the same stream");
    CHECK(a.seed == 5489 && b.seed == 5489 + (UINT64_C(1) << 32), "the generator keeps the full 64-bit seed");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    fix_dir = argv[1];
    check_seed_bits();
    check_kind("native");
    check_kind("default");
    return t_finish();
}
