/* Run-time choice of the kernel level: the best the CPU supports, capped by AG_SIMD
 * (scalar | avx2 | avx512novnni | avx512noamx, the last two only for testing the non-VNNI AVX-512
 * kernels and the VNNI prompt GEMM on CPUs that have more). */
#include <pthread.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <string.h>

#include "anygpt/quant.h"
#include "quant_internal.h"

static ag_kernels g_kernels;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if AG_HAVE_X86_KERNELS
/* CPUID.1:ECX bit 29. Asked directly: clang 14 (the fuzz build's compiler) does not know
 * __builtin_cpu_supports("f16c"). */
static bool cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

#if AG_HAVE_X86_KERNELS
/* The stream prefetch hint (ag_kernels.stream_nta): AG_PREFETCH=nta|l2, else by vendor, as
 * measured: non-temporal on AMD, into L2 elsewhere. */
static int stream_nta(void)
{
    const char *pf = getenv("AG_PREFETCH");
    if (pf && strcmp(pf, "nta") == 0)
        return 1;
    if (pf && strcmp(pf, "l2") == 0)
        return 0;
    unsigned a, b, c, d;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u; /* AuthenticAMD */
}
#endif

static void kernels_init(void)
{
    ag_kernels_scalar(&g_kernels);
#if AG_HAVE_X86_KERNELS
    g_kernels.stream_nta = stream_nta();
    const char *cap = getenv("AG_SIMD");
    int max_level = 2; /* 0 scalar, 1 avx2, 2 avx512 */
    bool no_vnni = false;  /* AG_SIMD=avx512novnni: the plain AVX-512 kernels, for tests on VNNI CPUs */
    bool no_amx = false;   /* AG_SIMD=avx512noamx: VNNI for the prompt GEMM too, for tests on AMX CPUs */
    if (cap && strcmp(cap, "scalar") == 0)
        max_level = 0;
    else if (cap && strcmp(cap, "avx2") == 0)
        max_level = 1;
    else if (cap && strcmp(cap, "avx512novnni") == 0)
        no_vnni = true;
    else if (cap && strcmp(cap, "avx512noamx") == 0)
        no_amx = true;
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (max_level >= 2 && avx512) {
#if AG_HAVE_AVX512VNNI
        if (!no_vnni && __builtin_cpu_supports("avx512vnni")) {
            ag_kernels_avx512vnni(&g_kernels);
            ag_vmath_avx512vnni(&g_kernels);
#if AG_HAVE_AMX
            if (!no_amx && ag_amx_available())
                ag_packed_fill_amx(&g_kernels);
#else
            (void)no_amx;
#endif
        } else
#endif
        {
            ag_kernels_avx512(&g_kernels);
            ag_vmath_avx512(&g_kernels);
        }
    } else if (max_level >= 1 && avx2) {
        ag_kernels_avx2(&g_kernels);
        ag_vmath_avx2(&g_kernels);
    }
#endif
}

const ag_kernels *ag_kernels_get(void)
{
    pthread_once(&g_once, kernels_init);
    return &g_kernels;
}

const char *ag_simd_level(void)
{
    return ag_kernels_get()->name;
}

const char *ag_simd_prefetch(void)
{
    const ag_kernels *k = ag_kernels_get();
    if (strcmp(k->name, "scalar") == 0)
        return "";
    return k->stream_nta ? "non-temporal" : "L2";
}

static int slot_of(ag_type t)
{
    switch (t) {
    case AG_TYPE_F32:
        return AG_KSLOT_F32;
    case AG_TYPE_F16:
        return AG_KSLOT_F16;
    case AG_TYPE_Q8_0:
        return AG_KSLOT_Q8_0;
    case AG_TYPE_Q4_0:
        return AG_KSLOT_Q4_0;
    default:
        return -1;
    }
}

ag_vec_dot_fn ag_vec_dot_for(ag_type weight_type)
{
    const int s = slot_of(weight_type);
    return s < 0 ? NULL : ag_kernels_get()->dot[s];
}

ag_type ag_vec_dot_act_type(ag_type weight_type)
{
    return (weight_type == AG_TYPE_Q8_0 || weight_type == AG_TYPE_Q4_0) ? AG_TYPE_Q8_0 : AG_TYPE_F32;
}

void ag_vec_dot_rows(ag_type weight_type, int64_t n, const void *w_rows, size_t w_stride, int nr, const void *act_row,
                     float *out)
{
    const int s = slot_of(weight_type);
    if (s < 0 || nr <= 0)
        return;
    ag_kernels_get()->rows[s](n, w_rows, w_stride, nr, act_row, out);
}

float ag_vec_scale_max(float *x, int64_t n, float scale) { return ag_kernels_get()->scale_max(x, n, scale); }
float ag_vec_exp_sum(float *x, int64_t n, float sub) { return ag_kernels_get()->exp_sum(x, n, sub); }
void ag_vec_silu(const float *x, float *y, int64_t n) { ag_kernels_get()->silu(x, y, n); }
