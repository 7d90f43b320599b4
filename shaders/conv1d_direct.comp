#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_GOOGLE_include_directive : require
// CONV1D by direct summation, one output per thread: used for grouped / depthwise convs
// (groups == 1 goes through the implicit-GEMM path of mul_mat.comp).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TYPE = 0; // weight F32/F16

layout(set = 0, binding = 0) readonly buffer Ww { uint W[]; };
layout(set = 0, binding = 1) readonly buffer X { float x[]; };
layout(set = 0, binding = 2) writeonly buffer O { float o[]; };

layout(push_constant) uniform P {
    uint T, Cin, Tout, Cout, NB, K, cin_g, cout_g, stride, dil;
    uint w_off, x_off, o_off; // bytes, floats, floats
} p;

#include "heavy_common.glsl"

void main() {
    uint idx = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (idx >= p.Tout * p.Cout * p.NB) return;
    uint to = idx % p.Tout, co = (idx / p.Tout) % p.Cout, b = idx / (p.Tout * p.Cout);
    uint g = co / p.cout_g;
    uint wrow = p.w_off + co * p.K * p.cin_g * (TYPE == T_F32 ? 4u : 2u);
    float acc = 0.0;
    for (uint ci = 0; ci < p.cin_g; ci++) {
        uint xb = p.x_off + p.T * (g * p.cin_g + ci + p.Cin * b) + to * p.stride;
        for (uint k = 0; k < p.K; k++)
            acc += w_elem(TYPE, wrow, ci * p.K + k) * x[xb + k * p.dil];
    }
    o[p.o_off + idx] = acc;
}
