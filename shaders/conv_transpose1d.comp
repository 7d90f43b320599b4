#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_GOOGLE_include_directive : require
// CONV_TRANSPOSE1D, one output per thread gathering its K/stride contributing taps:
// out[to, co] = sum_ci sum_{k = to - t*stride} x[t, ci] * w[k, co, ci].
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TYPE = 0; // weight F32/F16

layout(set = 0, binding = 0) readonly buffer Ww { uint W[]; };
layout(set = 0, binding = 1) readonly buffer X { float x[]; };
layout(set = 0, binding = 2) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint T, Cin, Tout, Cout, NB, K, stride;
    uint w_off, x_off, o_off; // bytes, floats, floats
} p;

#include "heavy_common.glsl"

void main() {
    uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (idx >= p.Tout * p.Cout * p.NB) return;
    uint to = idx % p.Tout, co = (idx / p.Tout) % p.Cout, b = idx / (p.Tout * p.Cout);
    // taps k = to - t*stride with 0 <= k < K and 0 <= t < T
    uint t_hi = min(to / p.stride, p.T - 1u);
    uint t_lo = to + 1u > p.K ? (to - p.K + p.stride) / p.stride : 0u;
    float acc = 0.0;
    for (uint ci = 0; ci < p.Cin; ci++) {
        uint xb = p.x_off + p.T * (ci + p.Cin * b);
        uint wrow = p.w_off + (co + p.Cout * ci) * p.K * (TYPE == T_F32 ? 4u : 2u);
        for (uint t = t_lo; t <= t_hi && t_lo <= t_hi; t++)
            acc += w_elem(TYPE, wrow, to - t * p.stride) * x[xb + t];
    }
    o[p.o_off + idx] = acc;
}
