/* Beta schedules -> alphas_cumprod, with diffusers' dtypes and PyTorch's (1.13, CPU) roundings:
 *  - linear / scaled_linear use torch.linspace(..., dtype=float32); scaled_linear takes the
 *    square roots in Python double (x ** 0.5) first and squares the float32 result (x * x).
 *  - squaredcos_cap_v2 is betas_for_alpha_bar in Python double (cos(...) ** 2 is pow(c, 2)),
 *    capped at 0.999, then rounded to float32.
 *  - alphas = 1 - betas in float32; torch.cumprod on CPU accumulates in double (its acc_type)
 *    and rounds each prefix product to float32.
 * This file must be compiled without FP contraction (C17 mode: off); where PyTorch's compiled
 * code fuses a multiply-add, fmaf says so. */
#include <math.h>
#include <stdlib.h>

#include "anygpt/error.h"
#include "unclip_sched_internal.h"

/* torch.linspace(start, end, steps, dtype=float32) as PyTorch 1.13 computes it with its AVX2
 * kernels (the build here; GCC fused its multiply-adds): blocks of 8 from
 * base = start + step * idx (or end - step * (steps - idx - 1) past the middle), element k of
 * the block being base + k * step; two vectors per loop turn, the last steps % 16 elements one
 * by one. Newer PyTorch computes every element from its own index (no blocks): for the SD
 * schedule ~23% of the betas then differ by an ulp and alphas_cumprod by at most 6e-8. */
static void torch_linspace_f32(float start, float end, int32_t steps, float *out)
{
    if (steps == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(steps - 1);
    const int32_t halfway = steps / 2;
    int32_t i = 0;
    const int32_t vec_end = steps / 16 * 16;
    for (; i < vec_end; i += 8) {
        float base = i < halfway ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - i - 1), end);
        out[i] = base;
        for (int k = 1; k < 8; k++)
            out[i + k] = base + (float)k * step;
    }
    for (; i < steps; i++)
        out[i] = i < halfway ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - i - 1), end);
}

static double alpha_bar_cosine(double t)
{
    return pow(cos((t + 0.008) / 1.008 * M_PI / 2), 2.0);
}

int ag_sched_alphas_cumprod(const ag_sched_config *c, float *ac)
{
    const int32_t n = c->num_train_timesteps;
    float *betas = malloc(sizeof(float) * (size_t)n);
    if (!betas) {
        ag_set_error("scheduler: out of memory");
        return -1;
    }
    switch (c->betas) {
    case AG_BETAS_LINEAR:
        torch_linspace_f32((float)c->beta_start, (float)c->beta_end, n, betas);
        break;
    case AG_BETAS_SCALED_LINEAR:
        torch_linspace_f32((float)pow(c->beta_start, 0.5), (float)pow(c->beta_end, 0.5), n, betas);
        for (int32_t i = 0; i < n; i++)
            betas[i] = betas[i] * betas[i];
        break;
    case AG_BETAS_SQUAREDCOS_CAP_V2:
        for (int32_t i = 0; i < n; i++) {
            double t1 = (double)i / n, t2 = (double)(i + 1) / n;
            double b = 1 - alpha_bar_cosine(t2) / alpha_bar_cosine(t1);
            betas[i] = (float)(0.999 < b ? 0.999 : b);
        }
        break;
    default:
        free(betas);
        ag_set_error("scheduler: unknown beta schedule %d", (int)c->betas);
        return -1;
    }
    double prod = 1.0;
    for (int32_t i = 0; i < n; i++) {
        if (!(betas[i] >= 0.0f && betas[i] < 1.0f)) {
            ag_set_error("scheduler: beta[%d] = %g is outside [0, 1) (beta_start %g, beta_end %g)", i,
                         (double)betas[i], c->beta_start, c->beta_end);
            free(betas);
            return -1;
        }
        prod *= (double)(1.0f - betas[i]);
        ac[i] = (float)prod;
    }
    free(betas);
    return 0;
}
