/* hetrun OpenCL kernels: shared helpers, included once before the per-dtype bodies.
 * Storage types: f32 (float), f16 (half via the core vload_half/vstore_half, so no
 * cl_khr_fp16 is needed), bf16 (ushort bits), all computed in float; f64 (double,
 * computed in double) only where the device has cl_khr_fp64. */
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

/* Kahan-compensated sum, so row/column reductions of ~1e3..1e6 terms stay within the
 * stated tolerance. Expanded inside a per-dtype body: CT is that body's compute type. */
#define HR_KADD(s, c, x)                                                                           \
    do {                                                                                           \
        CT y_ = (x) - (c);                                                                         \
        CT t_ = (s) + y_;                                                                          \
        (c) = (t_ - (s)) - y_;                                                                     \
        (s) = t_;                                                                                  \
    } while (0)

/* Tree sum of `loc` (work-group size entries) into loc[0]; any group size. */
#define HR_TREE(loc, lid, wg)                                                                      \
    for (uint s_ = 1; s_ < (wg); s_ *= 2) {                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        if ((lid) % (2 * s_) == 0 && (lid) + s_ < (wg)) (loc)[lid] += (loc)[(lid) + s_];           \
    }                                                                                              \
    barrier(CLK_LOCAL_MEM_FENCE)
