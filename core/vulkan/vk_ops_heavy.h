/* Helpers shared by the heavy Vulkan op files (vk_ops_heavy*.c): bounds checks on what the
 * shaders receive as 32-bit push constants, and tensor bindings with their skew. */
#ifndef AG_VK_OPS_HEAVY_H
#define AG_VK_OPS_HEAVY_H

#include "vulkan/vk_internal.h"

/* Every size/stride a shader sees is a uint32 (indices stay below 2^32 because a binding is
 * at most maxStorageBufferRange bytes, itself < 4 GiB). */
static inline bool vkh_fits_u32(uint64_t v) { return v <= 0xffffffffu; }

static inline bool vkh_tensor_u32(const ag_tensor *t)
{
    for (int i = 0; i < AG_MAX_DIMS; i++)
        if (t->ne[i] < 0 || !vkh_fits_u32((uint64_t)t->ne[i]) || !vkh_fits_u32(t->nb[i]))
            return false;
    return true;
}

/* Bind t; *off gets the skew in units of `unit` bytes (1 for byte-addressed weights, 2 for F16
 * halves, 4 for 32-bit words). -1 with an error when the skew is not a multiple of the unit. */
static inline int vkh_bind(vk_ctx *ctx, const ag_tensor *t, vk_binding *b, uint32_t unit, uint32_t *off)
{
    uint32_t skew = 0;
    if (vk_tensor_binding(ctx, t, b, &skew) != 0)
        return -1;
    if (skew % unit) {
        ag_set_error("vulkan: tensor '%s' starts at an offset not aligned to %u bytes", t->name, unit);
        return -1;
    }
    *off = skew / unit;
    return 0;
}

static inline bool vkh_is_weight_type(ag_type t)
{
    return t == AG_TYPE_F32 || t == AG_TYPE_F16 || t == AG_TYPE_Q8_0 || t == AG_TYPE_Q4_0;
}

static inline uint32_t vkh_type_size(ag_type t) { return t == AG_TYPE_F16 ? 2u : 4u; }

/* Push-constant block of mul_mat.comp (layout must match the shader). */
typedef struct vkh_mm_push {
    uint32_t K, N, M;
    uint32_t a_off, a_nb1, a_nb2, a_nb3;
    uint32_t b_off, b_nb1, b_nb2, b_nb3;
    uint32_t d_off, d_sn, d_sm, d_nb2, d_nb3;
    uint32_t B2, r2, r3;
    uint32_t KW, KH, IW, IH, OW, s0, s1, p0, p1, d0, d1;
} vkh_mm_push;

#endif
