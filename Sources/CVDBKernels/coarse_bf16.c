#include "CVDBKernels.h"
#include "cpu_extensions.h"

#include <immintrin.h>
#include <string.h>

// The IVF coarse pass in bfloat16: queries and centroids rounded to bf16, products summed in
// float by AVX-512 BF16's dot-product instruction, two components per 32-bit lane, so a
// register does 32 multiply-adds where float does 16, and the centroids take half the bytes
// (1,024 × 384 of them: 768 KiB, inside L2, where float's 1.5 MiB is not). The rounding is
// bounded (``vdb_bf16_dot_error``), so callers re-score the lists near the cut in float.

int vdb_bf16_dot_supported(void) { return (vdb_cpu_extensions() & VDB_CPU_AVX512_BF16) != 0; }

void vdb_f32_to_bf16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &in[i], 4);
        // Round to nearest, ties to even (finite inputs: vectors are checked at ingest).
        bits += 0x7fff + ((bits >> 16) & 1);
        out[i] = (uint16_t)(bits >> 16);
    }
}

float vdb_bf16_dot_error(size_t dim) {
    // Each factor is within 2^-8 relative of its float (8 significant bits, round to nearest:
    // half of a 2^-7 step), so each product within 2^-7 + 2^-16; the float sums add at most
    // dim · 2^-24 relative. Times Σ|q_i c_i| ≤ ‖q‖ ‖c‖.
    return 1.0f / 128 + 1.0f / 65536 + (float)dim / 16777216.0f;
}

static inline float bf16_value(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void dot_bf16_scalar(const uint16_t *queries, size_t count, size_t pairs, const uint16_t *blocks, size_t nblocks, float *out) {
    for (size_t i = 0; i < count; i++) {
        const uint16_t *q = queries + i * 2 * pairs;
        for (size_t b = 0; b < nblocks; b++) {
            for (size_t c = 0; c < 16; c++) {
                float s = 0;
                for (size_t t = 0; t < pairs; t++) {
                    const uint16_t *p = blocks + ((b * pairs + t) * 16 + c) * 2;
                    s += bf16_value(q[2 * t]) * bf16_value(p[0]) + bf16_value(q[2 * t + 1]) * bf16_value(p[1]);
                }
                out[i * nblocks * 16 + b * 16 + c] = s;
            }
        }
    }
}

// Two blocks (32 centroids) by four queries: eight accumulators, each centroid load feeding
// four queries, so the centroids are read once per four queries.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void dot_bf16_avx512(
    const uint16_t *queries, size_t count, size_t pairs, const uint16_t *blocks, size_t nblocks, float *out) {
    const size_t stride = nblocks * 16, quads = count / 4 * 4;
    size_t b = 0;
    for (; b + 2 <= nblocks; b += 2) {
        const uint16_t *p0 = blocks + b * pairs * 32, *p1 = p0 + pairs * 32;
        for (size_t i = 0; i < quads; i += 4) {
            const uint32_t *q0 = (const uint32_t *)(queries + i * 2 * pairs);
            const uint32_t *q1 = q0 + pairs, *q2 = q1 + pairs, *q3 = q2 + pairs;
            __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps();
            __m512 a20 = _mm512_setzero_ps(), a21 = _mm512_setzero_ps(), a30 = _mm512_setzero_ps(), a31 = _mm512_setzero_ps();
            for (size_t t = 0; t < pairs; t++) {
                const __m512bh c0 = (__m512bh)_mm512_loadu_si512(p0 + t * 32), c1 = (__m512bh)_mm512_loadu_si512(p1 + t * 32);
                const __m512bh x0 = (__m512bh)_mm512_set1_epi32((int)q0[t]), x1 = (__m512bh)_mm512_set1_epi32((int)q1[t]);
                const __m512bh x2 = (__m512bh)_mm512_set1_epi32((int)q2[t]), x3 = (__m512bh)_mm512_set1_epi32((int)q3[t]);
                a00 = _mm512_dpbf16_ps(a00, c0, x0); a01 = _mm512_dpbf16_ps(a01, c1, x0);
                a10 = _mm512_dpbf16_ps(a10, c0, x1); a11 = _mm512_dpbf16_ps(a11, c1, x1);
                a20 = _mm512_dpbf16_ps(a20, c0, x2); a21 = _mm512_dpbf16_ps(a21, c1, x2);
                a30 = _mm512_dpbf16_ps(a30, c0, x3); a31 = _mm512_dpbf16_ps(a31, c1, x3);
            }
            float *o = out + i * stride + b * 16;
            _mm512_storeu_ps(o, a00); _mm512_storeu_ps(o + 16, a01);
            _mm512_storeu_ps(o + stride, a10); _mm512_storeu_ps(o + stride + 16, a11);
            _mm512_storeu_ps(o + 2 * stride, a20); _mm512_storeu_ps(o + 2 * stride + 16, a21);
            _mm512_storeu_ps(o + 3 * stride, a30); _mm512_storeu_ps(o + 3 * stride + 16, a31);
        }
        // The queries past the last whole quad, one at a time.
        for (size_t i = quads; i < count; i++) {
            const uint32_t *q = (const uint32_t *)(queries + i * 2 * pairs);
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            for (size_t t = 0; t < pairs; t++) {
                const __m512bh x = (__m512bh)_mm512_set1_epi32((int)q[t]);
                a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(p0 + t * 32), x);
                a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(p1 + t * 32), x);
            }
            _mm512_storeu_ps(out + i * stride + b * 16, a0);
            _mm512_storeu_ps(out + i * stride + b * 16 + 16, a1);
        }
    }
    if (b < nblocks) {
        const uint16_t *p0 = blocks + b * pairs * 32;
        for (size_t i = 0; i < count; i++) {
            const uint32_t *q = (const uint32_t *)(queries + i * 2 * pairs);
            __m512 a0 = _mm512_setzero_ps();
            for (size_t t = 0; t < pairs; t++)
                a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(p0 + t * 32), (__m512bh)_mm512_set1_epi32((int)q[t]));
            _mm512_storeu_ps(out + i * stride + b * 16, a0);
        }
    }
}

void vdb_dot_bf16_blocked16_batch(const uint16_t *queries, size_t count, size_t pairs, const uint16_t *blocks, size_t nblocks, float *out) {
    if (vdb_bf16_dot_supported()) dot_bf16_avx512(queries, count, pairs, blocks, nblocks, out);
    else dot_bf16_scalar(queries, count, pairs, blocks, nblocks, out);
}

void vdb_dot_bf16_blocked16_batch_portable(
    const uint16_t *queries, size_t count, size_t pairs, const uint16_t *blocks, size_t nblocks, float *out) {
    dot_bf16_scalar(queries, count, pairs, blocks, nblocks, out);
}
