#version 450
#extension GL_GOOGLE_include_directive : require
// ARGMAX along ne0 -> i32 per row, ties to the lowest index; one workgroup per row.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { int d[]; };
layout(push_constant) uniform PC { uint ncols, nrows, a_skew, d_skew; } p;

shared float rv[1024];
shared uint ri[1024];

void main()
{
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.nrows)
        return;
    uint t = gl_LocalInvocationID.x, W = gl_WorkGroupSize.x;
    uint base = p.a_skew + row * p.ncols;
    float best = uintBitsToFloat(0xff800000u);
    uint bi = 0xffffffffu;
    for (uint i = t; i < p.ncols; i += W) {
        float v = a[base + i];
        if (bi == 0xffffffffu || v > best) {
            best = v;
            bi = i;
        }
    }
    rv[t] = best;
    ri[t] = bi;
    barrier();
    for (uint s = W / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            float v = rv[t + s];
            uint j = ri[t + s];
            if (j != 0xffffffffu && (ri[t] == 0xffffffffu || v > rv[t] || (v == rv[t] && j < ri[t]))) {
                rv[t] = v;
                ri[t] = j;
            }
        }
        barrier();
    }
    if (t == 0u)
        d[p.d_skew + row] = int(ri[0]);
}
