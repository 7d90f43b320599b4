#version 450
#extension GL_GOOGLE_include_directive : require
// GLU along ne0: out[i, r] = a[i, r] * act(a[i + n, r]), a rows of 2n; spec 1 = ag_glu_mode
// (0: sigmoid, 1: exact erf gelu = diffusers' GEGLU).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 0;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC { uint ncols, n, a_skew, d_skew; } p;

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint c = i % p.ncols, r = i / p.ncols;
    uint ai = p.a_skew + r * 2u * p.ncols + c;
    float g = a[ai + p.ncols], act;
    if (MODE == 1u) {
        act = 0.5 * g * (1.0 + erf_approx(g * 0.70710678118654752));
    } else {
        float e = exp(-abs(g));
        act = g >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    }
    d[p.d_skew + i] = a[ai] * act;
}
