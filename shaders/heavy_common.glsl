// vkheavy: weight decoders for buffers bound as uint[] (no 16-bit storage feature assumed).
// The including shader declares `uint W[]` (the weight/operand words) before including this.
// Type ids are ggml's (tensor.h): F32 0, F16 1, Q4_0 2, Q8_0 8.
#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q8_0 8

// Half at a 2-byte aligned byte offset.
float w_half_at(uint byte_off) {
    uint w = W[byte_off >> 2];
    return unpackHalf2x16((byte_off & 2u) != 0u ? (w >> 16) : w).x;
}

// 4 bytes starting at a 2-byte aligned byte offset (blocks are only 2-byte aligned).
uint w_word_at(uint byte_off) {
    uint i = byte_off >> 2;
    return (byte_off & 2u) != 0u ? ((W[i] >> 16) | (W[i + 1u] << 16)) : W[i];
}

// Element k of a row starting at byte offset row (any supported type). Slow path for
// tile loaders; the matvec kernel decodes whole blocks instead.
float w_elem(int type, uint row, uint k) {
    if (type == T_F32) return uintBitsToFloat(W[(row >> 2) + k]);
    if (type == T_F16) return w_half_at(row + 2u * k);
    if (type == T_Q8_0) {
        uint o = row + (k >> 5) * 34u;
        uint j = k & 31u;
        uint b = o + 2u + j;
        int q = bitfieldExtract(int(W[b >> 2]), int((b & 3u) * 8u), 8);
        return w_half_at(o) * float(q);
    }
    // Q4_0: low nibbles hold elements 0..15, high nibbles 16..31.
    uint o = row + (k >> 5) * 18u;
    uint j = k & 31u;
    uint b = o + 2u + (j & 15u);
    uint byte_v = (W[b >> 2] >> ((b & 3u) * 8u)) & 0xffu;
    uint q = j < 16u ? (byte_v & 15u) : (byte_v >> 4);
    return w_half_at(o) * (float(q) - 8.0);
}

float sigmoid_f(float x) { return 1.0 / (1.0 + exp(-x)); }
// tanh that stays finite for large |x| (exp overflow gives inf/inf on some drivers).
float tanh_f(float x) {
    float e = exp(-2.0 * abs(x));
    float t = (1.0 - e) / (1.0 + e);
    return x < 0.0 ? -t : t;
}
