#version 450
#extension GL_GOOGLE_include_directive : require
// GROUP_NORM: each (group, ne3 index) is a contiguous run of group_size values; one
// workgroup normalises one run (two passes: mean, then biased variance).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint group_size, n_runs, a_skew, d_skew;
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
    uint run = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (run >= p.n_runs)
        return;
    uint t = gl_LocalInvocationID.x, W = gl_WorkGroupSize.x;
    uint base = p.a_skew + run * p.group_size, dbase = p.d_skew + run * p.group_size;
    float s = 0.0;
    for (uint i = t; i < p.group_size; i += W)
        s += a[base + i];
    float mean = reduce_sum(s) / float(p.group_size);
    float s2 = 0.0;
    for (uint i = t; i < p.group_size; i += W) {
        float x = a[base + i] - mean;
        s2 += x * x;
    }
    float inv = inversesqrt(reduce_sum(s2) / float(p.group_size) + p.eps);
    for (uint i = t; i < p.group_size; i += W)
        d[dbase + i] = (a[base + i] - mean) * inv;
}
