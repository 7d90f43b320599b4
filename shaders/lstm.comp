#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_GOOGLE_include_directive : require
// LSTM recurrence in ONE dispatch of ONE workgroup: the time loop runs inside the shader and
// a workgroup barrier separates the steps (h_{t-1} lives in shared memory, c in registers of
// the thread owning the unit). Thread u owns hidden units u, u + WG, ... (UPT of them) and
// computes their four gate dot products against whh.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TYPE = 0; // whh F32/F16
layout(constant_id = 2) const uint UPT = 1; // units per thread = ceil(H / WG)
layout(constant_id = 3) const uint HMAX = 1024; // >= H

layout(set = 0, binding = 0) readonly buffer Ww { uint W[]; };
layout(set = 0, binding = 1) readonly buffer G { float gx[]; };
layout(set = 0, binding = 2) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint H, T, reverse;
    uint w_off, gx_off, o_off; // bytes, floats, floats
} p;

#include "heavy_common.glsl"

shared float hs[HMAX];

float row_dot(uint row) {
    float s = 0.0;
    if (TYPE == T_F32) {
        uint base = (p.w_off >> 2) + row * p.H;
        for (uint k = 0; k < p.H; k++) s += uintBitsToFloat(W[base + k]) * hs[k];
    } else {
        uint base = p.w_off + row * p.H * 2u;
        for (uint k = 0; k < p.H; k++) s += w_half_at(base + 2u * k) * hs[k];
    }
    return s;
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint H = p.H;
    float c[UPT], hn[UPT];
    for (uint u = 0; u < UPT; u++) c[u] = 0.0;
    for (uint j = tid; j < H; j += WG) hs[j] = 0.0;
    barrier();
    for (uint step = 0; step < p.T; step++) {
        uint t = p.reverse != 0u ? p.T - 1u - step : step;
        uint g = p.gx_off + t * 4u * H;
        for (uint u = 0; u < UPT; u++) {
            uint j = tid + u * WG;
            if (j >= H) break;
            float gi = gx[g + j] + row_dot(j);
            float gf = gx[g + H + j] + row_dot(H + j);
            float gg = gx[g + 2u * H + j] + row_dot(2u * H + j);
            float go = gx[g + 3u * H + j] + row_dot(3u * H + j);
            c[u] = sigmoid_f(gf) * c[u] + sigmoid_f(gi) * tanh_f(gg);
            hn[u] = sigmoid_f(go) * tanh_f(c[u]);
        }
        barrier(); // every thread has read h_{t-1}
        for (uint u = 0; u < UPT; u++) {
            uint j = tid + u * WG;
            if (j >= H) break;
            hs[j] = hn[u];
            o[p.o_off + t * H + j] = hn[u];
        }
        barrier(); // h_t visible to all
    }
}
