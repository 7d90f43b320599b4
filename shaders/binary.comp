#version 450
#extension GL_GOOGLE_include_directive : require
// ADD / MUL with broadcast of b (b.ne[i] == 1 or a.ne[i]). spec 1: 0 = add, 1 = mul.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint ne0, ne1, ne2, ne3;
    uint bne0, bne1, bne2, bne3;
    uint a_skew, b_skew, d_skew, n;
    uint base;    // absolute index of this chunk's first element (b's broadcast needs it)
    uint b_split; // b has a's shape and is windowed like a: index it chunk-locally
} p;

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint g = p.base + i;
    uint i0 = g % p.ne0;
    uint r = g / p.ne0;
    uint i1 = r % p.ne1;
    r /= p.ne1;
    uint i2 = r % p.ne2;
    uint i3 = r / p.ne2;
    uint bi = (i0 % p.bne0) + p.bne0 * ((i1 % p.bne1) + p.bne1 * ((i2 % p.bne2) + p.bne2 * (i3 % p.bne3)));
    if (p.b_split != 0u)
        bi = i;
    float x = a[p.a_skew + i], y = b[p.b_skew + bi];
    d[p.d_skew + i] = OP == 0 ? x + y : x * y;
}
