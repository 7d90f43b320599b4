#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef AG_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// MUL_MAT for few columns (M <= 8, LLM decode): one workgroup computes NROWS output rows for
// all NCOLS columns; threads split K (elements for F32/F16, 32-blocks for Q8_0/Q4_0, read
// straight from the 2-byte aligned blocks) and reduce in shared memory; built a second time with
// AG_SUBGROUP (mul_mat_vec_subgroup), each subgroup first sums its lanes with subgroupAdd.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TYPE = 0;
layout(constant_id = 2) const uint NROWS = 2;
layout(constant_id = 3) const uint NCOLS = 1;
// b's offset and strides are multiples of 4 floats: read it as vec4 (4x fewer loads)
layout(constant_id = 4) const bool B_VEC4 = false;

layout(set = 0, binding = 0) readonly buffer A { uint W[]; };
layout(set = 0, binding = 1) readonly buffer Bb { float B[]; };
layout(set = 0, binding = 1) readonly buffer Bb4 { vec4 B4[]; };
layout(set = 0, binding = 2) writeonly buffer Dd { float D[]; };

layout(push_constant) uniform P {
    uint K, N, M;
    uint a_off, a_nb1, a_nb2, a_nb3;   // bytes
    uint b_off, b_nb1, b_nb2, b_nb3;   // floats
    uint d_off, d_nb1;                 // floats; d is [N, M, B2, B3] with rows d_nb1 apart
    uint B2, r2, r3;                   // b's dim 2; broadcast ratios B2/A2, B3/A3
} p;

#include "heavy_common.glsl"

shared float red[gl_WorkGroupSize.x * NROWS * NCOLS];

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint n0 = gl_WorkGroupID.x * NROWS;
    const uint i2 = gl_WorkGroupID.z % p.B2, i3 = gl_WorkGroupID.z / p.B2;
    const uint a_base = p.a_off + (i2 / p.r2) * p.a_nb2 + (i3 / p.r3) * p.a_nb3;
    const uint b_base = p.b_off + i2 * p.b_nb2 + i3 * p.b_nb3;

    float acc[NROWS * NCOLS];
    for (uint i = 0; i < NROWS * NCOLS; i++) acc[i] = 0.0;

    const bool f16_pairs = TYPE == T_F16 && (p.K & 1u) == 0u && (p.a_nb1 & 3u) == 0u && (a_base & 3u) == 0u;
    if (f16_pairs) {
        // word-aligned F16 rows: one 32-bit load gives two weights
        for (uint kp = tid; kp < p.K / 2u; kp += WG) {
            vec2 bv[NCOLS];
            for (uint m = 0; m < NCOLS; m++) {
                uint bo = b_base + m * p.b_nb1 + 2u * kp;
                bv[m] = vec2(B[bo], B[bo + 1u]);
            }
            for (uint r = 0; r < NROWS; r++) {
                uint n = min(n0 + r, p.N - 1u);
                vec2 a = unpackHalf2x16(W[((a_base + n * p.a_nb1) >> 2) + kp]);
                for (uint m = 0; m < NCOLS; m++) acc[r * NCOLS + m] += dot(a, bv[m]);
            }
        }
    } else if (TYPE == T_F32 || TYPE == T_F16) {
        for (uint k = tid; k < p.K; k += WG) {
            float bv[NCOLS];
            for (uint m = 0; m < NCOLS; m++) bv[m] = B[b_base + m * p.b_nb1 + k];
            for (uint r = 0; r < NROWS; r++) {
                uint n = min(n0 + r, p.N - 1u); // clamped rows are computed and dropped
                uint row = a_base + n * p.a_nb1;
                float a = TYPE == T_F32 ? uintBitsToFloat(W[(row >> 2) + k]) : w_half_at(row + 2u * k);
                for (uint m = 0; m < NCOLS; m++) acc[r * NCOLS + m] += a * bv[m];
            }
        }
    } else {
        const uint nblk = p.K >> 5;
        const uint bsz = TYPE == T_Q8_0 ? 34u : 18u;
        for (uint blk = tid; blk < nblk; blk += WG) {
            float dq[NROWS];
            uint qw[NROWS * 8];
            for (uint r = 0; r < NROWS; r++) {
                uint n = min(n0 + r, p.N - 1u);
                uint o = a_base + n * p.a_nb1 + blk * bsz;
                dq[r] = w_half_at(o);
                for (uint j = 0; j < (TYPE == T_Q8_0 ? 8u : 4u); j++) qw[r * 8 + j] = w_word_at(o + 2u + 4u * j);
            }
            for (uint m = 0; m < NCOLS; m++) {
                uint bo = b_base + m * p.b_nb1 + blk * 32u;
                float bv[32];
                if (B_VEC4) {
                    for (uint j = 0; j < 8; j++) {
                        vec4 v = B4[(bo >> 2) + j];
                        bv[4 * j] = v.x; bv[4 * j + 1] = v.y; bv[4 * j + 2] = v.z; bv[4 * j + 3] = v.w;
                    }
                } else {
                    for (uint j = 0; j < 32; j++) bv[j] = B[bo + j];
                }
                for (uint r = 0; r < NROWS; r++) {
                    float s = 0.0;
                    if (TYPE == T_Q8_0) {
                        for (uint j = 0; j < 8; j++) {
                            int w = int(qw[r * 8 + j]);
                            s += float(bitfieldExtract(w, 0, 8)) * bv[4 * j] + float(bitfieldExtract(w, 8, 8)) * bv[4 * j + 1]
                               + float(bitfieldExtract(w, 16, 8)) * bv[4 * j + 2] + float(bitfieldExtract(w, 24, 8)) * bv[4 * j + 3];
                        }
                    } else {
                        for (uint j = 0; j < 4; j++) {
                            uint w = qw[r * 8 + j];
                            for (uint c = 0; c < 4; c++) {
                                uint byte_v = (w >> (8u * c)) & 0xffu;
                                s += (float(byte_v & 15u) - 8.0) * bv[4 * j + c] + (float(byte_v >> 4) - 8.0) * bv[16 + 4 * j + c];
                            }
                        }
                    }
                    acc[r * NCOLS + m] += dq[r] * s;
                }
            }
        }
    }

#ifdef AG_SUBGROUP
    // one partial sum per subgroup and output, then one barrier; each output's partials are then
    // added up by one thread (threads take outputs WG apart: there may be more outputs than threads)
    for (uint i = 0; i < NROWS * NCOLS; i++) {
        float s = subgroupAdd(acc[i]);
        if (subgroupElect()) red[i * gl_NumSubgroups + gl_SubgroupID] = s;
    }
    barrier();
#else
    for (uint i = 0; i < NROWS * NCOLS; i++) red[i * WG + tid] = acc[i];
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            for (uint i = 0; i < NROWS * NCOLS; i++) red[i * WG + tid] += red[i * WG + tid + s];
        barrier();
    }
#endif
    for (uint i = tid; i < NROWS * NCOLS; i += WG) {
#ifdef AG_SUBGROUP
        float total = 0.0;
        for (uint g = 0; g < gl_NumSubgroups; g++) total += red[i * gl_NumSubgroups + g];
#else
        const float total = red[i * WG];
#endif
        uint r = i / NCOLS, m = i % NCOLS;
        uint n = n0 + r;
        if (n < p.N && m < p.M)
            D[p.d_off + n + m * p.d_nb1 + gl_WorkGroupID.z * p.d_nb1 * p.M] = total;
    }
}
