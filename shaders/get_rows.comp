#version 450
#extension GL_GOOGLE_include_directive : require
// GET_ROWS: out[i0, r] = table[i0, ids[r]] as f32. spec 1: table type 0 f32, 1 f16, 2 q8_0,
// 3 q4_0. The table is bound as uint[] and addressed in bytes (quantized blocks are 34 / 18
// bytes, so only 2-byte aligned).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TYPE = 0;
layout(binding = 0) readonly buffer T { uint tw[]; };
layout(binding = 1) readonly buffer I { int ids[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint D, n, row_bytes, t_skew_bytes, i_skew, d_skew;
    uint row_lo, row_hi; // the table rows bound in this window (big tables take several)
} p;

uint byte_at(uint b) { return (tw[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }
float half_at(uint b) { return unpackHalf2x16((tw[b >> 2] >> ((b & 2u) * 8u)) & 0xffffu).x; }

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint i0 = i % p.D, r = i / p.D;
    uint id = uint(ids[p.i_skew + r]);
    if (id < p.row_lo || id >= p.row_hi)
        return;
    uint row = p.t_skew_bytes + (id - p.row_lo) * p.row_bytes;
    float v;
    if (TYPE == 0) {
        v = uintBitsToFloat(tw[(row >> 2) + i0]);
    } else if (TYPE == 1) {
        v = half_at(row + i0 * 2u);
    } else if (TYPE == 2) {
        uint blk = row + (i0 / 32u) * 34u;
        int q = int(byte_at(blk + 2u + (i0 % 32u)) << 24) >> 24; // sign-extend int8
        v = float(q) * half_at(blk);
    } else {
        uint blk = row + (i0 / 32u) * 18u;
        uint j = i0 % 32u;
        uint by = byte_at(blk + 2u + (j & 15u));
        uint q = j < 16u ? (by & 15u) : (by >> 4);
        v = (float(q) - 8.0) * half_at(blk);
    }
    d[p.d_skew + i] = v;
}
