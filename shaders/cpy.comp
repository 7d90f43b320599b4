#version 450
#extension GL_GOOGLE_include_directive : require
// CPY: elementwise copy with type conversion between any strides (ne/nb in elements).
// Types (spec 1 = source, spec 2 = destination): 0 = 32-bit word (f32 or i32), 1 = f16.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint SRC_F16 = 0;
layout(constant_id = 2) const uint DST_F16 = 0;
layout(binding = 0) readonly buffer S { uint s[]; };
layout(binding = 1) buffer D { uint d[]; };
layout(push_constant) uniform PC {
    uint ne0, ne1, ne2, ne3;
    uint snb0, snb1, snb2, snb3;
    uint dnb0, dnb1, dnb2, dnb3;
    uint s_skew, d_skew, n;
} p;

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint i0 = i % p.ne0;
    uint r = i / p.ne0;
    uint i1 = r % p.ne1;
    r /= p.ne1;
    uint i2 = r % p.ne2;
    uint i3 = r / p.ne2;
    uint si = p.s_skew + i0 * p.snb0 + i1 * p.snb1 + i2 * p.snb2 + i3 * p.snb3;
    uint di = p.d_skew + i0 * p.dnb0 + i1 * p.dnb1 + i2 * p.dnb2 + i3 * p.dnb3;
    if (DST_F16 == 0) {
        if (SRC_F16 == 0)
            d[di] = s[si];
        else
            d[di] = floatBitsToUint(half_at_words(s[si >> 1], si));
    } else {
        uint h;
        if (SRC_F16 == 0)
            h = half_bits(uintBitsToFloat(s[si]));
        else
            h = (s[si >> 1] >> ((si & 1u) * 16u)) & 0xffffu;
        // two threads may own the halves of one word: each updates only its own 16 bits
        uint sh = (di & 1u) * 16u;
        atomicAnd(d[di >> 1], ~(0xffffu << sh));
        atomicOr(d[di >> 1], h << sh);
    }
}
