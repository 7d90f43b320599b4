/* Type traits, tensor shape helpers and F16 conversion. */
#include "anygpt/tensor.h"

#include <string.h>

bool ag_type_valid(int type)
{
    return type == AG_TYPE_F32 || type == AG_TYPE_F16 || type == AG_TYPE_Q4_0 || type == AG_TYPE_Q8_0 ||
           type == AG_TYPE_I32;
}

const char *ag_type_name(ag_type type)
{
    switch (type) {
    case AG_TYPE_F32: return "f32";
    case AG_TYPE_F16: return "f16";
    case AG_TYPE_Q4_0: return "q4_0";
    case AG_TYPE_Q8_0: return "q8_0";
    case AG_TYPE_I32: return "i32";
    default: return "unknown";
    }
}

int64_t ag_type_block_elems(ag_type type)
{
    switch (type) {
    case AG_TYPE_Q4_0: return AG_QK4_0;
    case AG_TYPE_Q8_0: return AG_QK8_0;
    default: return 1;
    }
}

size_t ag_type_block_size(ag_type type)
{
    switch (type) {
    case AG_TYPE_F32: return 4;
    case AG_TYPE_F16: return 2;
    case AG_TYPE_Q4_0: return sizeof(ag_block_q4_0);
    case AG_TYPE_Q8_0: return sizeof(ag_block_q8_0);
    case AG_TYPE_I32: return 4;
    default: return 0;
    }
}

bool ag_type_is_quantized(ag_type type) { return type == AG_TYPE_Q4_0 || type == AG_TYPE_Q8_0; }

size_t ag_row_size(ag_type type, int64_t n)
{
    int64_t be = ag_type_block_elems(type);
    size_t bs = ag_type_block_size(type);
    if (n < 0 || be <= 0 || n % be != 0 || bs == 0 || (uint64_t)(n / be) > SIZE_MAX / bs)
        return 0; /* not whole blocks, or a size that does not fit size_t (hostile shapes) */
    return (size_t)(n / be) * bs;
}

int64_t ag_nelements(const ag_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

int64_t ag_nrows(const ag_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

size_t ag_nbytes(const ag_tensor *t)
{
    for (int i = 0; i < AG_MAX_DIMS; i++)
        if (t->ne[i] <= 0)
            return 0;
    size_t n = ag_row_size(t->type, t->ne[0]);
    if (t->nb[0] != ag_type_block_size(t->type)) /* strided elements (views) */
        n = (size_t)(t->ne[0] - 1) * t->nb[0] + t->nb[0];
    for (int i = 1; i < AG_MAX_DIMS; i++)
        n += (size_t)(t->ne[i] - 1) * t->nb[i];
    return n;
}

bool ag_is_contiguous(const ag_tensor *t)
{
    size_t expect = ag_type_block_size(t->type);
    if (t->nb[0] != expect)
        return false;
    expect = ag_row_size(t->type, t->ne[0]);
    for (int i = 1; i < AG_MAX_DIMS; i++) {
        if (t->ne[i] != 1 && t->nb[i] != expect)
            return false;
        expect *= (size_t)t->ne[i];
    }
    return true;
}

bool ag_same_shape(const ag_tensor *a, const ag_tensor *b)
{
    return memcmp(a->ne, b->ne, sizeof a->ne) == 0;
}

int ag_n_dims(const ag_tensor *t)
{
    for (int i = AG_MAX_DIMS - 1; i >= 1; i--)
        if (t->ne[i] > 1)
            return i + 1;
    return 1;
}

/* IEEE binary16 conversion by bit manipulation, so results do not depend on the compiler's
 * _Float16 support. Round to nearest even; NaN stays NaN (quiet). */
float ag_fp16_to_fp32(ag_fp16 h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while ((man & 0x400u) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

ag_fp16 ag_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) /* inf or nan */
        return (ag_fp16)(sign | 0x7c00u | (man ? 0x200u : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) /* overflow -> inf */
        return (ag_fp16)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal or zero in half */
        if (e < -10)
            return (ag_fp16)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half_man = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half_man & 1u)))
            half_man++;
        return (ag_fp16)(sign | half_man);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* may carry into the exponent: correct, gives the next binade or inf */
    return (ag_fp16)h;
}
