#version 450
#extension GL_GOOGLE_include_directive : require
// One LSTM time step over many workgroups (for large H, where a single workgroup cannot keep
// a GPU busy): a workgroup owns NU hidden units, its threads split the H-long dot products of
// their 4*NU whh rows (coalesced), reduce in shared memory, and NU threads update c and h.
// h_{t-1} is read from the previous output column; c lives in a scratch buffer. The host
// records one dispatch per step with a barrier in between.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TYPE = 0; // whh F32/F16
layout(constant_id = 2) const uint NU = 2;

layout(set = 0, binding = 0) readonly buffer Ww { uint W[]; };
layout(set = 0, binding = 1) readonly buffer G { float gx[]; };
layout(set = 0, binding = 2) buffer O { float o[]; };
layout(set = 0, binding = 3) buffer C { float cs[]; };

layout(push_constant) uniform P {
    uint H, t, t_prev, first;
    uint w_off, gx_off, o_off; // bytes, floats, floats
} p;

#include "heavy_common.glsl"

shared float red[gl_WorkGroupSize.x * 4 * NU];

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint H = p.H;
    const uint j0 = gl_WorkGroupID.x * NU;
    float acc[4 * NU];
    for (uint i = 0; i < 4 * NU; i++) acc[i] = 0.0;
    if (p.first == 0u) {
        for (uint k = tid; k < H; k += WG) {
            float hk = o[p.o_off + p.t_prev * H + k];
            for (uint u = 0; u < NU; u++) {
                uint j = min(j0 + u, H - 1u);
                for (uint q = 0; q < 4; q++) {
                    uint row = q * H + j;
                    float w = TYPE == T_F32 ? uintBitsToFloat(W[(p.w_off >> 2) + row * H + k])
                                            : w_half_at(p.w_off + 2u * (row * H + k));
                    acc[q * NU + u] += w * hk;
                }
            }
        }
    }
    for (uint i = 0; i < 4 * NU; i++) red[i * WG + tid] = acc[i];
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s)
            for (uint i = 0; i < 4 * NU; i++) red[i * WG + tid] += red[i * WG + tid + s];
        barrier();
    }
    if (tid < NU && j0 + tid < H) {
        uint j = j0 + tid;
        uint g = p.gx_off + p.t * 4u * H;
        float gi = gx[g + j] + red[(0 * NU + tid) * WG];
        float gf = gx[g + H + j] + red[(1 * NU + tid) * WG];
        float gg = gx[g + 2u * H + j] + red[(2 * NU + tid) * WG];
        float go = gx[g + 3u * H + j] + red[(3 * NU + tid) * WG];
        float c = p.first != 0u ? 0.0 : cs[j];
        c = sigmoid_f(gf) * c + sigmoid_f(gi) * tanh_f(gg);
        cs[j] = c;
        o[p.o_off + p.t * H + j] = sigmoid_f(go) * tanh_f(c);
    }
}
