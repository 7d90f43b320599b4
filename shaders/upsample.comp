#version 450
#extension GL_GOOGLE_include_directive : require
// UPSAMPLE nearest by integer factors on dims 0 and 1.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC { uint ne0, ne1, f0, f1, n, a_skew, d_skew; } p;

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    uint one0 = p.ne0 * p.f0, one1 = p.ne1 * p.f1;
    uint o0 = i % one0;
    uint r = i / one0;
    uint o1 = r % one1;
    uint plane = r / one1;
    d[p.d_skew + i] = a[p.a_skew + (plane * p.ne1 + o1 / p.f1) * p.ne0 + o0 / p.f0];
}
