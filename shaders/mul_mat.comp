#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_GOOGLE_include_directive : require
// Tiled MUL_MAT for many columns (prefill) and implicit-GEMM convolution (MODE 1: the B tile
// is gathered from the conv input on the fly, no im2col buffer). Each workgroup computes a
// BN x BM output tile; each thread a TN x TM sub-tile; K advances in BK steps through shared
// memory. Weights of any type are decoded while loading the A tile.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TYPE = 0;
layout(constant_id = 2) const uint BM = 64;
layout(constant_id = 3) const uint BN = 64;
layout(constant_id = 4) const uint BK = 16;
layout(constant_id = 5) const uint TM = 4;
layout(constant_id = 6) const uint TN = 4;
layout(constant_id = 7) const int MODE = 0; // 0 mul_mat, 1 conv2d (conv1d = conv2d with H = 1)

layout(set = 0, binding = 0) readonly buffer A { uint W[]; };
layout(set = 0, binding = 1) readonly buffer Bb { float B[]; };
layout(set = 0, binding = 2) writeonly buffer Dd { float D[]; };

layout(push_constant) uniform P {
    uint K, N, M;
    uint a_off, a_nb1, a_nb2, a_nb3;   // bytes
    uint b_off, b_nb1, b_nb2, b_nb3;   // floats
    uint d_off, d_sn, d_sm, d_nb2, d_nb3; // floats: out[n * d_sn + m * d_sm + ...]
    uint B2, r2, r3;
    // MODE 1: weight row n = output channel, k = kw + KW * (kh + KH * ci); column m = wo + Wo * ho
    uint KW, KH, IW, IH, OW, s0, s1, p0, p1, d0, d1;
} p;

#include "heavy_common.glsl"

const uint AS = BN + 1; // padded strides against bank conflicts
const uint BS = BM + 1;
shared float As[BK * AS];
shared float Bs[BK * BS];

float load_b(uint b_base, uint k, uint m) {
    if (MODE == 0) return B[b_base + m * p.b_nb1 + k];
    uint kwh = p.KW * p.KH;
    uint ci = k / kwh, rem = k % kwh;
    uint kh = rem / p.KW, kw = rem % p.KW;
    uint ho = m / p.OW, wo = m % p.OW;
    int wi = int(wo * p.s0 + kw * p.d0) - int(p.p0);
    int hi = int(ho * p.s1 + kh * p.d1) - int(p.p1);
    if (wi < 0 || hi < 0 || wi >= int(p.IW) || hi >= int(p.IH)) return 0.0;
    return B[b_base + uint(wi) + p.IW * (uint(hi) + p.IH * ci)];
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint TPN = BN / TN;
    const uint tn = tid % TPN, tm = tid / TPN;
    const uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
    const uint i2 = gl_WorkGroupID.z % p.B2, i3 = gl_WorkGroupID.z / p.B2;
    const uint a_base = p.a_off + (i2 / p.r2) * p.a_nb2 + (i3 / p.r3) * p.a_nb3;
    const uint b_base = p.b_off + i2 * p.b_nb2 + i3 * p.b_nb3;

    float acc[TN * TM];
    for (uint i = 0; i < TN * TM; i++) acc[i] = 0.0;

    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        if (TYPE == T_Q8_0 && BK == 32) {
            // one block per row and k-step: a thread decodes 4 quants from one word
            for (uint e = tid; e < BN * 8; e += WG) {
                uint nn = e / 8, wq = e % 8, n = n0 + nn;
                uint o = a_base + min(n, p.N - 1u) * p.a_nb1 + (k0 >> 5) * 34u;
                float d = n < p.N ? w_half_at(o) : 0.0;
                int w = int(w_word_at(o + 2u + 4u * wq));
                for (uint c = 0; c < 4; c++) As[(4 * wq + c) * AS + nn] = d * float(bitfieldExtract(w, int(8 * c), 8));
            }
        } else if (TYPE == T_Q4_0 && BK == 32) {
            // a word holds 4 low nibbles (elements 4wq..) and 4 high ones (16 + 4wq..)
            for (uint e = tid; e < BN * 4; e += WG) {
                uint nn = e / 4, wq = e % 4, n = n0 + nn;
                uint o = a_base + min(n, p.N - 1u) * p.a_nb1 + (k0 >> 5) * 18u;
                float d = n < p.N ? w_half_at(o) : 0.0;
                uint w = w_word_at(o + 2u + 4u * wq);
                for (uint c = 0; c < 4; c++) {
                    uint b = (w >> (8 * c)) & 0xffu;
                    As[(4 * wq + c) * AS + nn] = d * (float(b & 15u) - 8.0);
                    As[(16 + 4 * wq + c) * AS + nn] = d * (float(b >> 4) - 8.0);
                }
            }
        } else {
            for (uint e = tid; e < BK * BN; e += WG) {
                uint kk = e % BK, nn = e / BK;
                uint n = n0 + nn, k = k0 + kk;
                As[kk * AS + nn] = (n < p.N && k < p.K) ? w_elem(TYPE, a_base + n * p.a_nb1, k) : 0.0;
            }
        }
        for (uint e = tid; e < BK * BM; e += WG) {
            uint kk = e % BK, mm = e / BK;
            uint m = m0 + mm, k = k0 + kk;
            Bs[kk * BS + mm] = (m < p.M && k < p.K) ? load_b(b_base, k, m) : 0.0;
        }
        barrier();
        for (uint kk = 0; kk < BK; kk++) {
            float av[TN], bv[TM];
            for (uint i = 0; i < TN; i++) av[i] = As[kk * AS + tn + i * TPN];
            for (uint j = 0; j < TM; j++) bv[j] = Bs[kk * BS + tm + j * (BM / TM)];
            for (uint i = 0; i < TN; i++)
                for (uint j = 0; j < TM; j++) acc[i * TM + j] += av[i] * bv[j];
        }
        barrier();
    }

    const uint d_base = p.d_off + i2 * p.d_nb2 + i3 * p.d_nb3;
    for (uint j = 0; j < TM; j++) {
        uint m = m0 + tm + j * (BM / TM);
        if (m >= p.M) continue;
        for (uint i = 0; i < TN; i++) {
            uint n = n0 + tn + i * TPN;
            if (n < p.N) D[d_base + n * p.d_sn + m * p.d_sm] = acc[i * TM + j];
        }
    }
}
