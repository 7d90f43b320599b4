#version 450
#extension GL_GOOGLE_include_directive : require
// RMS_NORM (spec 1 = 0) / LAYER_NORM (spec 1 = 1) over ne0: one workgroup per row.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 0;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint ncols, nrows, a_skew, d_skew;
    float eps;
} p;

shared float red[1024];

float reduce_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1u) {
        if (t < s)
            red[t] += red[t + s];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main()
{
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.nrows)
        return;
    uint t = gl_LocalInvocationID.x, W = gl_WorkGroupSize.x;
    uint base = p.a_skew + row * p.ncols, dbase = p.d_skew + row * p.ncols;
    float mean = 0.0;
    if (MODE == 1) {
        float s = 0.0;
        for (uint i = t; i < p.ncols; i += W)
            s += a[base + i];
        mean = reduce_sum(s) / float(p.ncols);
    }
    float s2 = 0.0;
    for (uint i = t; i < p.ncols; i += W) {
        float x = a[base + i] - mean;
        s2 += x * x;
    }
    float inv = inversesqrt(reduce_sum(s2) / float(p.ncols) + p.eps);
    for (uint i = t; i < p.ncols; i += W)
        d[dbase + i] = (a[base + i] - mean) * inv;
}
