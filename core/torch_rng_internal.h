/* Internal to the torch RNG reproduction (core/torch_rng*.c). */
#ifndef AG_TORCH_RNG_INTERNAL_H
#define AG_TORCH_RNG_INTERNAL_H

#include "anygpt/torch_rng.h"

/* One 32-bit mt19937 draw (CPUGeneratorImpl::random). */
uint32_t ag_torch_random32(ag_torch_gen *g);
/* PyTorch's AVX2 Box-Muller block: d[0..7] hold u, d[8..15] hold v (uniforms in [0,1));
 * afterwards d[j] = r cos(2 pi v), d[j+8] = r sin(2 pi v), r = sqrt(-2 log(1 - u)). */
void ag_torch_box_muller16_avx2(float *d);

#endif
