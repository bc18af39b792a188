#include "CVDBKernels.h"
#include "resolver.h"
#include <immintrin.h>

// ---- scalar -------------------------------------------------------------------------------

static float l2sq_scalar(const float *a, const float *b, size_t n) {
    // Four partial sums let the compiler vectorise without -ffast-math reassociation.
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1], d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < n; i++) { float d = a[i] - b[i]; s0 += d * d; }
    return (s0 + s1) + (s2 + s3);
}

static float dot_scalar(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

// ---- AVX2 + FMA ---------------------------------------------------------------------------

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 0x55));
    return _mm_cvtss_f32(lo);
}

/// Loads the first `r` (< 8) floats of `p`, zeroing the rest, without reading past them.
__attribute__((target("avx2,fma"))) static inline __m256 load_tail256(const float *p, size_t r) {
    static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    __m256i mask = _mm256_loadu_si256((const __m256i *)(mask_src + 8 - r));
    return _mm256_maskload_ps(p, mask);
}

__attribute__((target("avx2,fma"))) static float l2sq_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0); s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2); s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __m256 d = _mm256_sub_ps(load_tail256(a + i, n - i), load_tail256(b + i, n - i));
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) s1 = _mm256_fmadd_ps(load_tail256(a + i, n - i), load_tail256(b + i, n - i), s1);
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// ---- AVX-512 ------------------------------------------------------------------------------

__attribute__((target("avx512f"))) static float l2sq_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0); s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2); s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// ---- 16-bit weights x uint8 codes (scalar quantization) -------------------------------------
// Integer arithmetic: one vpmaddwd multiplies and pair-sums 16 widened codes, where the float
// kernel needed a widen, a convert and an FMA per 8; 384 codes in cache took 10 ns against 30.
// The caller bounds sum |w[i]| * 255 below 2^31, so no partial sum overflows.

static int32_t dot_i16_u8_scalar(const int16_t *w, const uint8_t *c, size_t n) {
    int32_t s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += (int32_t)w[i] * c[i];
        s1 += (int32_t)w[i + 1] * c[i + 1];
    }
    if (i < n) s0 += (int32_t)w[i] * c[i];
    return s0 + s1;
}

__attribute__((target("avx2"))) static int32_t dot_i16_u8_avx2(const int16_t *w, const uint8_t *c, size_t n) {
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i + 16)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a, _mm256_loadu_si256((const __m256i *)(w + i))));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(b, _mm256_loadu_si256((const __m256i *)(w + i + 16))));
    }
    if (i + 16 <= n) {
        __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a, _mm256_loadu_si256((const __m256i *)(w + i))));
        i += 16;
    }
    __m256i s = _mm256_add_epi32(s0, s1);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    int32_t total = _mm_cvtsi128_si32(t);
    for (; i < n; i++) total += (int32_t)w[i] * c[i];
    return total;
}

// Row scans: the per-row kernel is inlined into each variant so the loop has no indirect call.
#define VDB_ROWS(name, kernel, attr)                                                                   \
    attr static void name(const float *q, const float *base, size_t rows, size_t dim, float *out) {   \
        for (size_t r = 0; r < rows; r++) {                                                           \
            if (r + 2 < rows) __builtin_prefetch(base + (r + 2) * dim);                               \
            out[r] = kernel(q, base + r * dim, dim);                                                  \
        }                                                                                             \
    }
// Low dimensions (geo, small embeddings): one kernel call per row costs more than the row
// itself. With the dimension a compile-time constant the compiler vectorises across rows.
#define VDB_SMALL_ROWS(name, D, OP, attr)                                                            \
    attr static void name##_##D(const float *q, const float *base, size_t rows, float *out) {        \
        for (size_t r = 0; r < rows; r++) {                                                          \
            const float *x = base + r * D;                                                           \
            float s = 0;                                                                             \
            for (int j = 0; j < D; j++) s += OP(q[j], x[j]);                                         \
            out[r] = s;                                                                              \
        }                                                                                            \
    }
#define SQ_DIFF(a, b) (((a) - (b)) * ((a) - (b)))
#define PRODUCT(a, b) ((a) * (b))
#define VDB_SMALL_FAMILY(name, OP, attr)                                                             \
    VDB_SMALL_ROWS(name, 1, OP, attr) VDB_SMALL_ROWS(name, 2, OP, attr) VDB_SMALL_ROWS(name, 3, OP, attr) \
    VDB_SMALL_ROWS(name, 4, OP, attr) VDB_SMALL_ROWS(name, 5, OP, attr) VDB_SMALL_ROWS(name, 6, OP, attr) \
    VDB_SMALL_ROWS(name, 7, OP, attr) VDB_SMALL_ROWS(name, 8, OP, attr)                                \
    attr static int name(const float *q, const float *base, size_t rows, size_t dim, float *out) {   \
        switch (dim) {                                                                               \
        case 1: name##_1(q, base, rows, out); return 1;                                              \
        case 2: name##_2(q, base, rows, out); return 1;                                              \
        case 3: name##_3(q, base, rows, out); return 1;                                              \
        case 4: name##_4(q, base, rows, out); return 1;                                              \
        case 5: name##_5(q, base, rows, out); return 1;                                              \
        case 6: name##_6(q, base, rows, out); return 1;                                              \
        case 7: name##_7(q, base, rows, out); return 1;                                              \
        case 8: name##_8(q, base, rows, out); return 1;                                              \
        default: return 0;                                                                           \
        }                                                                                            \
    }
VDB_SMALL_FAMILY(l2sq_small_avx512, SQ_DIFF, __attribute__((target("avx512f"))))
VDB_SMALL_FAMILY(dot_small_avx512, PRODUCT, __attribute__((target("avx512f"))))
VDB_SMALL_FAMILY(l2sq_small_avx2, SQ_DIFF, __attribute__((target("avx2,fma"))))
VDB_SMALL_FAMILY(dot_small_avx2, PRODUCT, __attribute__((target("avx2,fma"))))

VDB_ROWS(l2sq_rows_scalar, l2sq_scalar, )
VDB_ROWS(dot_rows_scalar, dot_scalar, )
#define VDB_ROWS_WITH_SMALL(name, small, kernel, attr)                                                \
    attr static void name(const float *q, const float *base, size_t rows, size_t dim, float *out) {   \
        if (small(q, base, rows, dim, out)) return;                                                   \
        for (size_t r = 0; r < rows; r++) {                                                           \
            if (r + 2 < rows) __builtin_prefetch(base + (r + 2) * dim);                               \
            out[r] = kernel(q, base + r * dim, dim);                                                  \
        }                                                                                             \
    }
VDB_ROWS_WITH_SMALL(l2sq_rows_avx2, l2sq_small_avx2, l2sq_avx2, __attribute__((target("avx2,fma"))))
VDB_ROWS_WITH_SMALL(dot_rows_avx2, dot_small_avx2, dot_avx2, __attribute__((target("avx2,fma"))))
VDB_ROWS_WITH_SMALL(l2sq_rows_avx512, l2sq_small_avx512, l2sq_avx512, __attribute__((target("avx512f"))))
VDB_ROWS_WITH_SMALL(dot_rows_avx512, dot_small_avx512, dot_avx512, __attribute__((target("avx512f"))))

// ---- dispatch -----------------------------------------------------------------------------

VDB_RESOLVER int vdb_kernel_level_supported(vdb_kernel_level level) {
    __builtin_cpu_init();
    switch (level) {
    case VDB_KERNEL_SCALAR: return 1;
    case VDB_KERNEL_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case VDB_KERNEL_AVX512: return __builtin_cpu_supports("avx512f");
    }
    return 0;
}

VDB_RESOLVER vdb_kernel_level vdb_kernel_level_active(void) {
    if (vdb_kernel_level_supported(VDB_KERNEL_AVX512)) return VDB_KERNEL_AVX512;
    if (vdb_kernel_level_supported(VDB_KERNEL_AVX2)) return VDB_KERNEL_AVX2;
    return VDB_KERNEL_SCALAR;
}

typedef float (*pair_fn)(const float *, const float *, size_t);
typedef void (*rows_fn)(const float *, const float *, size_t, size_t, float *);

VDB_RESOLVER static pair_fn resolve_l2sq(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return l2sq_avx512;
    case VDB_KERNEL_AVX2: return l2sq_avx2;
    default: return l2sq_scalar;
    }
}
VDB_RESOLVER static pair_fn resolve_dot(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return dot_avx512;
    case VDB_KERNEL_AVX2: return dot_avx2;
    default: return dot_scalar;
    }
}
VDB_RESOLVER static rows_fn resolve_l2sq_rows(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return l2sq_rows_avx512;
    case VDB_KERNEL_AVX2: return l2sq_rows_avx2;
    default: return l2sq_rows_scalar;
    }
}
VDB_RESOLVER static rows_fn resolve_dot_rows(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return dot_rows_avx512;
    case VDB_KERNEL_AVX2: return dot_rows_avx2;
    default: return dot_rows_scalar;
    }
}

float vdb_l2sq_f32(const float *a, const float *b, size_t n) __attribute__((ifunc("resolve_l2sq")));
float vdb_dot_f32(const float *a, const float *b, size_t n) __attribute__((ifunc("resolve_dot")));
void vdb_l2sq_f32_rows(const float *q, const float *base, size_t rows, size_t dim, float *out)
    __attribute__((ifunc("resolve_l2sq_rows")));
void vdb_dot_f32_rows(const float *q, const float *base, size_t rows, size_t dim, float *out)
    __attribute__((ifunc("resolve_dot_rows")));

typedef int32_t (*i16_u8_fn)(const int16_t *, const uint8_t *, size_t);
VDB_RESOLVER static i16_u8_fn resolve_dot_i16_u8(void) {
    // AVX-512 machines take the AVX2 kernel: 512-bit vpmaddwd needs AVX512BW, which the
    // AVX512 level does not promise.
    return vdb_kernel_level_active() >= VDB_KERNEL_AVX2 ? dot_i16_u8_avx2 : dot_i16_u8_scalar;
}
int32_t vdb_dot_i16_u8(const int16_t *w, const uint8_t *c, size_t n) __attribute__((ifunc("resolve_dot_i16_u8")));

int32_t vdb_dot_i16_u8_level(vdb_kernel_level level, const int16_t *w, const uint8_t *c, size_t n) {
    return level >= VDB_KERNEL_AVX2 ? dot_i16_u8_avx2(w, c, n) : dot_i16_u8_scalar(w, c, n);
}

float vdb_l2sq_f32_level(vdb_kernel_level level, const float *a, const float *b, size_t n) {
    switch (level) {
    case VDB_KERNEL_AVX512: return l2sq_avx512(a, b, n);
    case VDB_KERNEL_AVX2: return l2sq_avx2(a, b, n);
    default: return l2sq_scalar(a, b, n);
    }
}
float vdb_dot_f32_level(vdb_kernel_level level, const float *a, const float *b, size_t n) {
    switch (level) {
    case VDB_KERNEL_AVX512: return dot_avx512(a, b, n);
    case VDB_KERNEL_AVX2: return dot_avx2(a, b, n);
    default: return dot_scalar(a, b, n);
    }
}
