#version 450
#extension GL_GOOGLE_include_directive : require
// VQ_ARGMIN: one workgroup per vector t; threads scan codewords k = tid, tid + WG, ... with
// the exact squared distance sum_d (x_d - c_kd)^2, then a (distance, index) tree reduction
// that keeps the lowest index on ties.
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer C { float cb[]; };
layout(set = 0, binding = 2) writeonly buffer O { int o[]; };

layout(push_constant) uniform P {
    uint D, K, T;
    uint x_off, c_off, o_off; // elements
} p;

shared float sd[gl_WorkGroupSize.x];
shared uint si[gl_WorkGroupSize.x];

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint tid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (t >= p.T) return; // whole workgroup leaves together
    const uint xb = p.x_off + t * p.D;
    float best = uintBitsToFloat(0x7f800000u); // +inf
    uint bi = 0xffffffffu;
    for (uint k = tid; k < p.K; k += WG) {
        uint cbase = p.c_off + k * p.D;
        float s = 0.0;
        for (uint d = 0; d < p.D; d++) {
            float e = x[xb + d] - cb[cbase + d];
            s += e * e;
        }
        if (s < best || bi == 0xffffffffu) { best = s; bi = k; }
    }
    sd[tid] = best;
    si[tid] = bi;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) {
            float od = sd[tid + s];
            uint oi = si[tid + s];
            if (oi != 0xffffffffu && (si[tid] == 0xffffffffu || od < sd[tid] || (od == sd[tid] && oi < si[tid]))) {
                sd[tid] = od;
                si[tid] = oi;
            }
        }
        barrier();
    }
    if (tid == 0) o[p.o_off + t] = int(si[0]);
}
