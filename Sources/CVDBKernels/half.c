#include "CVDBKernels.h"
#include "resolver.h"
#include <immintrin.h>
#include <string.h>

// IEEE 754 binary16 vectors: conversion both ways and distances from a float query to a half
// row, so float16 segments are scored in place. Hardware conversion (F16C, AVX-512) where the
// CPU has it; exact software conversion (round to nearest even) otherwise.

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // Subnormal: normalise.
        int shift = 0;
        while (!(mantissa & 0x400)) { mantissa <<= 1; shift++; }
        bits = sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7fffffff;
    if (abs >= 0x7f800000) return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);  // Inf, NaN
    if (abs >= 0x477ff000) return sign | 0x7c00;                                   // overflows to Inf
    if (abs < 0x38800000) {                                                        // subnormal or zero
        if (abs < 0x33000000) return sign;
        // value / 2^-24 = mantissa · 2^(exponent − 126), exponent ≤ 112: a right shift of 14...24.
        uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(abs >> 23);
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1), midpoint = 1u << (shift - 1);
        if (rest > midpoint || (rest == midpoint && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((abs >> 13) - (112 << 10));
    uint32_t rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

static void f16_to_f32_scalar(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = half_to_float(in[i]);
}
static void f32_to_f16_scalar(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = float_to_half(in[i]);
}
static float l2sq_f16_scalar(const float *q, const uint16_t *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) { float d = q[i] - half_to_float(x[i]); s += d * d; }
    return s;
}
static float dot_f16_scalar(const float *q, const uint16_t *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += q[i] * half_to_float(x[i]);
    return s;
}

__attribute__((target("avx2,fma,f16c"))) static void f16_to_f32_avx2(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++) out[i] = half_to_float(in[i]);
}
__attribute__((target("avx2,fma,f16c"))) static void f32_to_f16_avx2(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = float_to_half(in[i]);
}
__attribute__((target("avx2,fma,f16c"))) static float hsum8(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 0x55));
    return _mm_cvtss_f32(lo);
}
__attribute__((target("avx2,fma,f16c"))) static float l2sq_f16_avx2(const float *q, const uint16_t *x, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) { float d = q[i] - half_to_float(x[i]); s += d * d; }
    return s;
}
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const float *q, const uint16_t *x, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * half_to_float(x[i]);
    return s;
}
__attribute__((target("avx512f"))) static float l2sq_f16_avx512(const float *q, const uint16_t *x, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16))));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) { float d = q[i] - half_to_float(x[i]); s += d * d; }
    return s;
}
__attribute__((target("avx512f"))) static float dot_f16_avx512(const float *q, const uint16_t *x, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16))), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * half_to_float(x[i]);
    return s;
}

// AVX2 here also needs F16C (every AVX2 CPU we know has it, but it is a separate flag).
VDB_RESOLVER static int has_f16c(void) {
    __builtin_cpu_init();
    return vdb_kernel_level_active() >= VDB_KERNEL_AVX2 && __builtin_cpu_supports("f16c");
}
typedef void (*to32_fn)(const uint16_t *, float *, size_t);
typedef void (*to16_fn)(const float *, uint16_t *, size_t);
typedef float (*half_pair_fn)(const float *, const uint16_t *, size_t);
VDB_RESOLVER static to32_fn resolve_to32(void) { return has_f16c() ? f16_to_f32_avx2 : f16_to_f32_scalar; }
VDB_RESOLVER static to16_fn resolve_to16(void) { return has_f16c() ? f32_to_f16_avx2 : f32_to_f16_scalar; }
VDB_RESOLVER static half_pair_fn resolve_l2sq_f16(void) {
    if (vdb_kernel_level_active() == VDB_KERNEL_AVX512) return l2sq_f16_avx512;
    return has_f16c() ? l2sq_f16_avx2 : l2sq_f16_scalar;
}
VDB_RESOLVER static half_pair_fn resolve_dot_f16(void) {
    if (vdb_kernel_level_active() == VDB_KERNEL_AVX512) return dot_f16_avx512;
    return has_f16c() ? dot_f16_avx2 : dot_f16_scalar;
}
void vdb_f16_to_f32(const uint16_t *in, float *out, size_t n) __attribute__((ifunc("resolve_to32")));
void vdb_f32_to_f16(const float *in, uint16_t *out, size_t n) __attribute__((ifunc("resolve_to16")));
float vdb_l2sq_f32_f16(const float *q, const uint16_t *x, size_t n) __attribute__((ifunc("resolve_l2sq_f16")));
float vdb_dot_f32_f16(const float *q, const uint16_t *x, size_t n) __attribute__((ifunc("resolve_dot_f16")));

void vdb_f16_to_f32_portable(const uint16_t *in, float *out, size_t n) { f16_to_f32_scalar(in, out, n); }
void vdb_f32_to_f16_portable(const float *in, uint16_t *out, size_t n) { f32_to_f16_scalar(in, out, n); }
float vdb_l2sq_f32_f16_portable(const float *q, const uint16_t *x, size_t n) { return l2sq_f16_scalar(q, x, n); }
float vdb_dot_f32_f16_portable(const float *q, const uint16_t *x, size_t n) { return dot_f16_scalar(q, x, n); }
