/* anygpt core: PyTorch's CPU random generator, reproduced bit for bit, so a `seed` property
 * gives the same starting noise as
 *     g = torch.Generator('cpu').manual_seed(S); torch.randn(shape, generator=g)
 * (float32). PyTorch's CPUGeneratorImpl is an mt19937 seeded with S; randn of n floats draws
 * uniform floats (24-bit) and turns them into normals with Box-Muller in blocks of 16, with its
 * own rules for n < 16 and for the tail of n % 16; successive calls continue the stream. */
#ifndef ANYGPT_TORCH_RNG_H
#define ANYGPT_TORCH_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t state[624];
    int32_t index;
    /* PyTorch keeps a cached second normal (next_float_normal_sample / next_double_normal_sample)
     * for the scalar path; kept here the same way. */
    int32_t has_next_double;
    double next_double;
    int32_t has_next_float;
    float next_float;
    uint64_t seed;
} ag_torch_gen;

/* torch.Generator('cpu').manual_seed(seed). */
void ag_torch_manual_seed(ag_torch_gen *g, uint64_t seed);
/* torch.randn(n, generator=g, dtype=torch.float32) into out (any shape of n elements: torch
 * fills contiguous tensors in memory order), as PyTorch computes it on x86-64 with AVX2 (the
 * kernel it picks there, AVX-512 machines included). */
void ag_torch_randn(ag_torch_gen *g, float *out, int64_t n);
/* The same draw as PyTorch computes it without AVX2 (ATEN_CPU_CAPABILITY=default, non-x86
 * builds): libm logf/sinf/cosf instead of the vectorised Cephes functions. Same stream of
 * uniforms; values differ from ag_torch_randn by a few ulps for n >= 16. */
void ag_torch_randn_noavx(ag_torch_gen *g, float *out, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
