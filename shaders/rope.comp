#version 450
#extension GL_GOOGLE_include_directive : require
// ROPE on a [D, H, T, B] with positions pos[T]. One thread per element; the thread owning the
// first element of a rotated pair writes both, the partner returns. Dims >= n_dims pass through.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer P { int pos[]; };
layout(binding = 2) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint D, H, T, n;
    uint n_dims, neox;
    uint a_skew, p_skew, d_skew;
    float freq_base, freq_scale;
    uint base; // first row (of D) of this chunk
} p;

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint i0 = i % p.D;
    uint row = i / p.D;
    uint t = ((p.base + row) / p.H) % p.T;
    uint base = row * p.D;
    if (i0 >= p.n_dims) {
        d[p.d_skew + i] = a[p.a_skew + i];
        return;
    }
    uint half_dims = p.n_dims / 2u;
    uint k, j0, j1;
    if (p.neox != 0u) {
        if (i0 >= half_dims)
            return;
        k = i0;
        j0 = i0;
        j1 = i0 + half_dims;
    } else {
        if ((i0 & 1u) != 0u)
            return;
        k = i0 / 2u;
        j0 = i0;
        j1 = i0 + 1u;
    }
    float theta = float(pos[p.p_skew + t]) * p.freq_scale *
                  exp2(-2.0 * float(k) / float(p.n_dims) * log2(p.freq_base));
    float c = cos(theta), s = sin(theta);
    float x0 = a[p.a_skew + base + j0], x1 = a[p.a_skew + base + j1];
    d[p.d_skew + base + j0] = x0 * c - x1 * s;
    d[p.d_skew + base + j1] = x0 * s + x1 * c;
}
