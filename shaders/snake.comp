#version 450
#extension GL_GOOGLE_include_directive : require
// SNAKE on a [T, C, B]: x + sin(alpha_c x)^2 / (alpha_c + 1e-9).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer L { float alpha[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC { uint T, C, n, a_skew, l_skew, d_skew, base; } p; // base: first row (of T) of this chunk

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    float al = alpha[p.l_skew + (p.base + i / p.T) % p.C];
    float x = a[p.a_skew + i];
    float s = sin(al * x);
    d[p.d_skew + i] = x + s * s / (al + 1e-9);
}
