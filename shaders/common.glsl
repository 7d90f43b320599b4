// Shared helpers for the compute shaders (included by every *.comp).
// Buffers are bound as uint[] or float[]; f16 and quantized data are decoded by hand so no
// 16-bit storage feature is needed. Offsets ("skew") arrive in elements via push constants.
#extension GL_EXT_control_flow_attributes : enable

// Flat thread index for dispatches spread over x and y (vk_dispatch_1d).
uint flat_index()
{
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

// Element i of an f16 array stored as uint words.
float half_at_words(uint w, uint i)
{
    vec2 v = unpackHalf2x16(w);
    return (i & 1u) == 0u ? v.x : v.y;
}

// float -> f16 bits (round to nearest even, as packHalf2x16 does on every driver we know).
uint half_bits(float f) { return packHalf2x16(vec2(f, 0.0)) & 0xffffu; }

// erf for the exact gelu (GLSL has none): Abramowitz-Stegun 7.1.26 (absolute error <= 1.5e-7)
// for |x| >= 0.5, and the Maclaurin series below that, so small arguments keep their relative
// accuracy (truncation error < 2e-8 there).
float erf_approx(float x)
{
    float a = abs(x);
    if (a < 0.5) {
        float x2 = x * x;
        // 2/sqrt(pi) * (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320 + x^13/9360)
        float p = 1.0 / 9360.0;
        p = p * x2 - 1.0 / 1320.0;
        p = p * x2 + 1.0 / 216.0;
        p = p * x2 - 1.0 / 42.0;
        p = p * x2 + 1.0 / 10.0;
        p = p * x2 - 1.0 / 3.0;
        p = p * x2 + 1.0;
        return 1.1283791670955126 * x * p;
    }
    float t = 1.0 / (1.0 + 0.3275911 * a);
    float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
                        exp(-a * a);
    return sign(x) * y;
}
