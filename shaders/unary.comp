#version 450
#extension GL_GOOGLE_include_directive : require
// UNARY elementwise; spec 1 = ag_unary_op (silu, gelu (erf), elu, tanh, sigmoid, relu).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint OP = 0;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) writeonly buffer D { float d[]; };
layout(push_constant) uniform PC { uint n, a_skew, d_skew; } p;

float sigmoid(float x)
{
    // exp of a non-positive argument only, so no overflow to inf/inf
    float e = exp(-abs(x));
    return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

void main()
{
    uint i = flat_index();
    if (i >= p.n)
        return;
    float x = a[p.a_skew + i], y;
    if (OP == 0)
        y = x * sigmoid(x);
    else if (OP == 1)
        y = 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
    else if (OP == 2)
        y = x > 0.0 ? x : exp(x) - 1.0;
    else if (OP == 3) {
        // tanh via exp of a non-positive argument (GLSL tanh overflows on some drivers)
        float e = exp(-2.0 * abs(x));
        y = sign(x) * (1.0 - e) / (1.0 + e);
    } else if (OP == 4)
        y = sigmoid(x);
    else
        y = max(x, 0.0);
    d[p.d_skew + i] = y;
}
