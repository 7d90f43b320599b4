#version 450
#extension GL_GOOGLE_include_directive : require
// SOFTMAX along ne0 of (a * scale + mask), optional causal mask; one workgroup per row.
// A row whose every entry is -inf gives zeros.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer M { float m[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint N, M, A2, nrows;
    uint has_mask, mask_ne2, causal;
    uint a_skew, m_skew, d_skew;
    float scale;
    uint row_base; // absolute index of this chunk's first row
} p;

shared float red[1024];

#define NEG_INF uintBitsToFloat(0xff800000u)

float value(uint base, uint mrow, uint i1, uint n)
{
    float v = a[base + n] * p.scale;
    if (p.has_mask != 0u)
        v += m[p.m_skew + mrow * p.N + n];
    if (p.causal != 0u && n > i1 + (p.N - p.M))
        v = NEG_INF;
    return v;
}

void main()
{
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.nrows)
        return;
    uint t = gl_LocalInvocationID.x, W = gl_WorkGroupSize.x;
    uint arow = p.row_base + row;
    uint i1 = arow % p.M, i2 = (arow / p.M) % p.A2;
    uint mrow = i1 + (p.mask_ne2 > 1u ? i2 * p.M : 0u);
    uint base = p.a_skew + row * p.N, dbase = p.d_skew + row * p.N;

    float mx = NEG_INF;
    for (uint n = t; n < p.N; n += W)
        mx = max(mx, value(base, mrow, i1, n));
    red[t] = mx;
    barrier();
    for (uint s = W / 2u; s > 0u; s >>= 1u) {
        if (t < s)
            red[t] = max(red[t], red[t + s]);
        barrier();
    }
    mx = red[0];
    barrier();
    if (mx == NEG_INF) {
        for (uint n = t; n < p.N; n += W)
            d[dbase + n] = 0.0;
        return;
    }
    float sum = 0.0;
    for (uint n = t; n < p.N; n += W)
        sum += exp(value(base, mrow, i1, n) - mx);
    red[t] = sum;
    barrier();
    for (uint s = W / 2u; s > 0u; s >>= 1u) {
        if (t < s)
            red[t] += red[t + s];
        barrier();
    }
    float inv = 1.0 / red[0];
    for (uint n = t; n < p.N; n += W)
        d[dbase + n] = exp(value(base, mrow, i1, n) - mx) * inv;
}
