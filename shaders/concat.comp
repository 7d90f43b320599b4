#version 450
#extension GL_GOOGLE_include_directive : require
// CONCAT along dim: out index i_dim < a.ne[dim] comes from a, the rest from b.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint one0, one1, one2, one3;
    uint ane0, ane1, ane2, ane3;
    uint dim, n, a_skew, b_skew, d_skew;
} p;

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint o[4];
    uint r = i;
    o[0] = r % p.one0;
    r /= p.one0;
    o[1] = r % p.one1;
    r /= p.one1;
    o[2] = r % p.one2;
    o[3] = r / p.one2;
    uint ane[4] = uint[4](p.ane0, p.ane1, p.ane2, p.ane3);
    uint one[4] = uint[4](p.one0, p.one1, p.one2, p.one3);
    float v;
    if (o[p.dim] < ane[p.dim]) {
        v = a[p.a_skew + o[0] + ane[0] * (o[1] + ane[1] * (o[2] + ane[2] * o[3]))];
    } else {
        uint bne[4] = one;
        bne[p.dim] = one[p.dim] - ane[p.dim];
        o[p.dim] -= ane[p.dim];
        v = b[p.b_skew + o[0] + bne[0] * (o[1] + bne[1] * (o[2] + bne[2] * o[3]))];
    }
    d[p.d_skew + i] = v;
}
