#version 450
#extension GL_GOOGLE_include_directive : require
// ATTENTION, flash style: a workgroup owns BR query rows of one head and streams the keys in
// tiles of BC through shared memory with an online softmax (running max m, sum l, output
// rescaled by exp(m_old - m_new)); the Nq x Nk score matrix never exists. GQA: head h reads kv
// head h / gqa. k/v are F32 or F16 (bound as uint[]), strided (nb1/nb2 in elements).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int KTYPE = 0; // 0 F32, 1 F16
layout(constant_id = 2) const int VTYPE = 0;
layout(constant_id = 3) const uint BR = 8;
layout(constant_id = 4) const uint BC = 16;
layout(constant_id = 5) const uint DMAX = 128;
layout(constant_id = 6) const uint DVMAX = 128;
layout(constant_id = 7) const uint OPT = 8; // output entries per thread: ceil(BR * DVMAX / WG)
// SPLIT (decode: few query rows, many keys): workgroup z takes keys [z*chunk, (z+1)*chunk) and
// writes its unnormalised output with (m, l) to `part`; attention_combine.comp merges them.
layout(constant_id = 8) const uint SPLIT = 0;

layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer Kb { uint kw[]; };
layout(set = 0, binding = 2) readonly buffer Vb { uint vw[]; };
layout(set = 0, binding = 3) readonly buffer Mb { float mask[]; };
layout(set = 0, binding = 4) writeonly buffer O { float o[]; };
layout(set = 0, binding = 5) writeonly buffer Part { float part[]; }; // [Dv + 2] per (i, h, z)

layout(push_constant) uniform P {
    uint D, Dv, Nq, Nk, H, gqa;
    uint q_off, q_nb1, q_nb2;
    uint k_off, k_nb1, k_nb2;
    uint v_off, v_nb1, v_nb2;
    uint m_off, m_nb1, has_mask, causal;
    float scale;
    uint o_off, chunk, n_split;
} p;

// Every loop but the key-tile loop has a trip count fixed at specialization (sizes padded to
// DMAX/DVMAX with zeros), so drivers unroll them: llvmpipe caps the loop iterations one
// invocation may run (65535 in total), which runtime-bound inner loops hit after ~4k keys.
const uint D4 = DMAX / 4; // DMAX is a multiple of 16
shared vec4 Qs[BR * D4];
shared vec4 Ks[BC * D4];
shared float Vs[BC * DVMAX];
shared float Ss[BR * BC];
shared float row_m[BR], row_l[BR], row_a[BR];

float ld_k(uint i) {
    if (KTYPE == 0) return uintBitsToFloat(kw[i]);
    uint w = kw[i >> 1];
    return unpackHalf2x16((i & 1u) != 0u ? (w >> 16) : w).x;
}
float ld_v(uint i) {
    if (VTYPE == 0) return uintBitsToFloat(vw[i]);
    uint w = vw[i >> 1];
    return unpackHalf2x16((i & 1u) != 0u ? (w >> 16) : w).x;
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint i0 = gl_WorkGroupID.x * BR;
    const uint h = gl_WorkGroupID.y;
    const uint hk = h / p.gqa;
    const float NEG_INF = uintBitsToFloat(0xff800000u);
    const uint D = p.D, Dv = p.Dv;

    for (uint it = 0; it < (BR * DMAX + WG - 1) / WG; it++) {
        uint e = tid + it * WG;
        if (e < BR * DMAX) {
            uint r = e / DMAX, d = e % DMAX, i = i0 + r;
            Qs[r * D4 + d / 4][d & 3u] = (i < p.Nq && d < D) ? q[p.q_off + d + i * p.q_nb1 + h * p.q_nb2] : 0.0;
        }
    }
    if (tid < BR) { row_m[tid] = NEG_INF; row_l[tid] = 0.0; row_a[tid] = 1.0; }
    float acc[OPT];
    for (uint u = 0; u < OPT; u++) acc[u] = 0.0;

    // keys any row of this tile can see
    uint i_last = min(i0 + BR, p.Nq) - 1u;
    const int diag = int(p.Nk) - int(p.Nq); // query i sees keys j <= i + diag when causal
    uint n_keys = p.causal != 0u ? uint(clamp(int(i_last) + diag + 1, 0, int(p.Nk))) : p.Nk;
    const uint z = gl_WorkGroupID.z;
    const uint j_begin = SPLIT != 0u ? z * p.chunk : 0u;
    const uint j_end = SPLIT != 0u ? min(n_keys, j_begin + p.chunk) : n_keys;

    for (uint j0 = j_begin; j0 < j_end; j0 += BC) {
        barrier(); // previous tile fully consumed
        for (uint it = 0; it < (BC * DMAX + WG - 1) / WG; it++) {
            uint e = tid + it * WG;
            if (e < BC * DMAX) {
                uint c = e / DMAX, d = e % DMAX, j = j0 + c;
                Ks[c * D4 + d / 4][d & 3u] = (j < p.Nk && d < D) ? ld_k(p.k_off + d + j * p.k_nb1 + hk * p.k_nb2) : 0.0;
            }
        }
        for (uint it = 0; it < (BC * DVMAX + WG - 1) / WG; it++) {
            uint e = tid + it * WG;
            if (e < BC * DVMAX) {
                uint c = e / DVMAX, d = e % DVMAX, j = j0 + c;
                Vs[e] = (j < p.Nk && d < Dv) ? ld_v(p.v_off + d + j * p.v_nb1 + hk * p.v_nb2) : 0.0;
            }
        }
        barrier();
        for (uint it = 0; it < (BR * BC + WG - 1) / WG; it++) {
            uint e = tid + it * WG;
            if (e >= BR * BC) continue;
            uint r = e / BC, c = e % BC, i = i0 + r, j = j0 + c;
            float s = NEG_INF;
            if (i < p.Nq && j < j_end && (p.causal == 0u || int(j) <= int(i) + diag)) {
                float acc_d = 0.0;
                for (uint d4 = 0; d4 < D4; d4++) acc_d += dot(Qs[r * D4 + d4], Ks[c * D4 + d4]);
                s = acc_d * p.scale;
                if (p.has_mask != 0u) s += mask[p.m_off + j + i * p.m_nb1];
            }
            Ss[e] = s;
        }
        barrier();
        if (tid < BR) {
            float m_old = row_m[tid], mx = m_old;
            for (uint c = 0; c < BC; c++) mx = max(mx, Ss[tid * BC + c]);
            float alpha = 1.0, sum = 0.0;
            if (isinf(mx) && mx < 0.0) {
                for (uint c = 0; c < BC; c++) Ss[tid * BC + c] = 0.0; // nothing visible yet
            } else {
                alpha = (isinf(m_old) && m_old < 0.0) ? 0.0 : exp(m_old - mx);
                for (uint c = 0; c < BC; c++) {
                    float s = Ss[tid * BC + c];
                    float pr = (isinf(s) && s < 0.0) ? 0.0 : exp(s - mx);
                    Ss[tid * BC + c] = pr;
                    sum += pr;
                }
                row_m[tid] = mx;
            }
            row_l[tid] = row_l[tid] * alpha + sum;
            row_a[tid] = alpha;
        }
        barrier();
        for (uint u = 0; u < OPT; u++) {
            uint e = tid + u * WG;
            if (e >= BR * DVMAX) continue;
            uint r = e / DVMAX, d = e % DVMAX;
            float s = acc[u] * row_a[r];
            for (uint c = 0; c < BC; c++) s += Ss[r * BC + c] * Vs[c * DVMAX + d];
            acc[u] = s;
        }
    }
    barrier();
    if (SPLIT != 0u) {
        for (uint u = 0; u < OPT; u++) {
            uint e = tid + u * WG;
            if (e >= BR * DVMAX) continue;
            uint r = e / DVMAX, d = e % DVMAX, i = i0 + r;
            if (i < p.Nq && d < Dv) part[((i * p.H + h) * p.n_split + z) * (Dv + 2u) + d] = acc[u];
        }
        if (tid < BR && i0 + tid < p.Nq) {
            uint base = (((i0 + tid) * p.H + h) * p.n_split + z) * (Dv + 2u) + Dv;
            part[base] = row_m[tid];
            part[base + 1u] = row_l[tid];
        }
        return;
    }
    for (uint u = 0; u < OPT; u++) {
        uint e = tid + u * WG;
        if (e >= BR * DVMAX) continue;
        uint r = e / DVMAX, d = e % DVMAX, i = i0 + r;
        if (i >= p.Nq || d >= Dv) continue;
        float l = row_l[r];
        o[p.o_off + d + Dv * (h + p.H * i)] = l > 0.0 ? acc[u] / l : 0.0;
    }
}
