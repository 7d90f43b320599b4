#version 450
// Merge the key-split partial results of attention.comp (SPLIT = 1): for each output
// element, O = sum_z e^(m_z - M) acc_z / sum_z e^(m_z - M) l_z with M = max_z m_z.
layout(local_size_x_id = 0) in;

layout(set = 0, binding = 0) readonly buffer Part { float part[]; };
layout(set = 0, binding = 1) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint Dv, H, Nq, n_split, o_off;
} p;

void main() {
    uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (idx >= p.Dv * p.H * p.Nq) return;
    uint d = idx % p.Dv, hi = idx / p.Dv; // hi = h + H * i, the row of (query, head)
    uint stride = p.Dv + 2u, base = hi * p.n_split * stride;
    float M = uintBitsToFloat(0xff800000u);
    for (uint z = 0; z < p.n_split; z++) M = max(M, part[base + z * stride + p.Dv]);
    float num = 0.0, den = 0.0;
    if (!(isinf(M) && M < 0.0)) {
        for (uint z = 0; z < p.n_split; z++) {
            float m = part[base + z * stride + p.Dv];
            float w = (isinf(m) && m < 0.0) ? 0.0 : exp(m - M);
            num += w * part[base + z * stride + d];
            den += w * part[base + z * stride + p.Dv + 1u];
        }
    }
    o[p.o_off + d + p.Dv * hi] = den > 0.0 ? num / den : 0.0;
}
