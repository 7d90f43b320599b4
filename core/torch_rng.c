/* PyTorch's CPU generator and torch.randn (float32), bit for bit.
 *
 * How PyTorch (1.13, read in aten/src/ATen: CPUGeneratorImpl, core/MT19937RNGEngine.h,
 * core/DistributionsHelper.h, core/TransformationHelper.h, native/cpu/DistributionTemplates.h,
 * native/cpu/avx_mathfun.h) draws normals, in our words:
 *  - The engine is the reference mt19937 with 32-bit state words. manual_seed(S) keeps S (64-bit)
 *    but seeds the state with its low 32 bits; the first draw regenerates the whole state.
 *  - A float uniform is the low 24 bits of one 32-bit draw times 2^-24; a double uniform is the
 *    low 53 bits of (first draw << 32 | second draw) times 2^-53.
 *  - randn of n >= 16 contiguous floats first fills all n slots with float uniforms, then turns
 *    each block of 16 into normals by Box-Muller: u1 = 1 - slot[j], u2 = slot[j + 8],
 *    r = sqrt(-2 log u1), theta = 2 pi u2, slot[j] = r cos theta, slot[j + 8] = r sin theta.
 *    When n % 16 != 0, 16 *fresh* uniforms overwrite the last 16 slots and that block is
 *    transformed again (so the tail overlaps the last full block and n + 16 draws are used).
 *  - On x86 with AVX2 (the capability PyTorch picks there, also on AVX-512 machines) the block
 *    transform is the 8-wide Cephes-style log/sincos of avx_mathfun.h in float, compiled with
 *    GCC's default FMA contraction; torch_rng_avx_math.c reproduces those roundings lane by lane.
 *    Without AVX2 (ATEN_CPU_CAPABILITY=default, other CPUs) it is libm logf/cosf/sinf in float
 *    with theta = (float)(2 pi (double) u2).
 *  - randn of n < 16 uses the scalar Box-Muller in double: u1, u2 double uniforms,
 *    r = sqrt(-2 log(1 - u2)), theta = 2 pi u1; it returns r cos theta (rounded to float) and keeps
 *    r sin theta as the generator's cached next double normal, which the next scalar draw
 *    returns first. The n >= 16 path neither uses nor clears that cache. */
#include "anygpt/torch_rng.h"

#include <math.h>
#include <string.h>

#include "torch_rng_internal.h"

enum { MT_N = 624, MT_M = 397 };

void ag_torch_manual_seed(ag_torch_gen *g, uint64_t seed)
{
    memset(g, 0, sizeof(*g));
    g->seed = seed;
    g->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + j;
    g->index = MT_N; /* the first draw regenerates the state, as PyTorch's left_ = 1 does */
}

static void mt_regenerate(ag_torch_gen *g)
{
    uint32_t *s = g->state;
    for (int k = 0; k < MT_N; k++) {
        uint32_t y = (s[k] & 0x80000000u) | (s[(k + 1) % MT_N] & 0x7fffffffu);
        s[k] = s[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((s[(k + 1) % MT_N] & 1u) ? 0x9908b0dfu : 0u);
    }
    g->index = 0;
}

uint32_t ag_torch_random32(ag_torch_gen *g)
{
    if (g->index >= MT_N)
        mt_regenerate(g);
    uint32_t y = g->state[g->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static float uniform_float(ag_torch_gen *g)
{
    return (float)(ag_torch_random32(g) & 0xffffffu) * (1.0f / 16777216.0f);
}

static double uniform_double(ag_torch_gen *g)
{
    uint64_t hi = ag_torch_random32(g);
    uint64_t lo = ag_torch_random32(g);
    uint64_t v = (hi << 32) | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* One normal from the scalar (n < 16) path, with the generator's cached second value. */
static double normal_double(ag_torch_gen *g)
{
    if (g->has_next_double) {
        g->has_next_double = 0;
        return g->next_double;
    }
    double u1 = uniform_double(g);
    double u2 = uniform_double(g);
    double r = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * M_PI * u1;
    g->next_double = r * sin(theta);
    g->has_next_double = 1;
    return r * cos(theta);
}

/* The libm block transform (PyTorch without AVX2). */
static void box_muller16_libm(float *d)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0 * M_PI * (double)u2);
        d[j] = radius * cosf(theta);
        d[j + 8] = radius * sinf(theta);
    }
}

static void randn_blocks(ag_torch_gen *g, float *out, int64_t n, void (*block)(float *))
{
    if (n <= 0)
        return;
    if (n < 16) {
        for (int64_t i = 0; i < n; i++)
            out[i] = (float)normal_double(g);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = uniform_float(g);
    for (int64_t i = 0; i + 16 <= n; i += 16)
        block(out + i);
    if (n % 16) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = uniform_float(g);
        block(tail);
    }
}

void ag_torch_randn(ag_torch_gen *g, float *out, int64_t n)
{
    randn_blocks(g, out, n, ag_torch_box_muller16_avx2);
}

void ag_torch_randn_noavx(ag_torch_gen *g, float *out, int64_t n)
{
    randn_blocks(g, out, n, box_muller16_libm);
}
