#version 450
#extension GL_GOOGLE_include_directive : require
// SCALE: d = a * s + bias.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint n, a_skew, d_skew;
    float s, bias;
} p;

void main()
{
    uint i = flat_index();
    if (i < p.n)
        d[p.d_skew + i] = a[p.a_skew + i] * p.s + p.bias;
}
