#version 450
#extension GL_GOOGLE_include_directive : require
// PAD dims 0 and 1, zero or reflect (PyTorch: the edge is not repeated).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC {
    uint ne0, ne1, one0, one1;
    uint l0, l1, reflect, n;
    uint a_skew, d_skew;
} p;

// Source index along one dim for output index o, or -1 when it falls in zero padding.
int src_index(int o, int l, int ne)
{
    int i = o - l;
    if (i >= 0 && i < ne)
        return i;
    if (p.reflect == 0u)
        return -1;
    if (i < 0)
        i = -i;
    if (i >= ne)
        i = 2 * (ne - 1) - i;
    return i;
}

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint o0 = i % p.one0;
    uint r = i / p.one0;
    uint o1 = r % p.one1;
    uint plane = r / p.one1;
    int s0 = src_index(int(o0), int(p.l0), int(p.ne0));
    int s1 = src_index(int(o1), int(p.l1), int(p.ne1));
    float v = 0.0;
    if (s0 >= 0 && s1 >= 0)
        v = a[p.a_skew + (plane * p.ne1 + uint(s1)) * p.ne0 + uint(s0)];
    d[p.d_skew + i] = v;
}
