/* hetrun OpenCL kernels: shared helpers, included once before the per-dtype bodies.
 * Storage types: f32 (float), f16 (half via the core vload_half/vstore_half, so no
 * cl_khr_fp16 is needed), bf16 (ushort bits). All arithmetic is done in float. */
#define HR_CAT_(a, b) a##b
#define HR_CAT(a, b) HR_CAT_(a, b)

/* bfloat16 <-> float with round to nearest even, quiet NaN kept NaN (as kernels/half.h). */
inline float hr_bf16_ld(__global const ushort *p, size_t i) { return as_float((uint)p[i] << 16); }
inline void hr_bf16_st(__global ushort *p, size_t i, float v) {
    uint u = as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        p[i] = (ushort)((u >> 16) | 0x40u);
    else
        p[i] = (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Kahan-compensated sum, so row/column reductions of ~1e3..1e6 terms stay within 1e-5. */
#define HR_KADD(s, c, x)                                                                           \
    do {                                                                                           \
        float y_ = (x) - (c);                                                                      \
        float t_ = (s) + y_;                                                                       \
        (c) = (t_ - (s)) - y_;                                                                     \
        (s) = t_;                                                                                  \
    } while (0)

/* GELU, tanh form, written as x * sigmoid(2u): same value, no cancellation for x << 0. */
inline float hr_gelu(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return x / (1.0f + exp(-2.0f * u));
}
inline float hr_gelu_grad(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    float du = 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
    float s = 1.0f / (1.0f + exp(-2.0f * u)); /* (1 + tanh u) / 2 */
    return s + 2.0f * x * s * (1.0f - s) * du;
}
inline float hr_act(int act, float x) { return act == 0 ? fmax(x, 0.0f) : hr_gelu(x); }
inline float hr_act_grad(int act, float x) {
    return act == 0 ? (x > 0.0f ? 1.0f : 0.0f) : hr_gelu_grad(x);
}
