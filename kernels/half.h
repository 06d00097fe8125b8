/**
 * @file kernels/half.h
 * @brief Host-side binary16 and bfloat16 conversions (round to nearest even), shared
 *        by the reference code, the CPU backend and the tests.
 */
#ifndef HETRUN_KERNELS_HALF_H
#define HETRUN_KERNELS_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t hetrun_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float hetrun_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t hetrun_f32_to_bf16(float f) {
    uint32_t u = hetrun_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float hetrun_bf16_to_f32(uint16_t h) {
    return hetrun_bits_f32((uint32_t)h << 16);
}

static inline uint16_t hetrun_f32_to_f16(float f) {
    uint32_t u = hetrun_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* NaN */
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow: inf */
    if (absu < 0x38800000u) {                                   /* subnormal or 0 */
        if (absu < 0x33000000u) return (uint16_t)sign;          /* below half ulp */
        uint32_t e = absu >> 23;
        uint32_t mant = (absu & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u);
        uint32_t mid = 1u << (shift - 1u);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t r = absu + 0xfffu + ((absu >> 13) & 1u); /* round mantissa to 10 bits */
    r -= 0x38000000u;                                 /* rebias exponent 127 -> 15 */
    return (uint16_t)(sign | (r >> 13));
}

static inline float hetrun_f16_to_f32(uint16_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (e == 0) {
        if (mant == 0) return hetrun_bits_f32(sign);
        float f = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24 */
        return sign ? -f : f;
    }
    if (e == 31) return hetrun_bits_f32(sign | 0x7f800000u | (mant << 13));
    return hetrun_bits_f32(sign | ((e + 112u) << 23) | (mant << 13));
}

#endif
