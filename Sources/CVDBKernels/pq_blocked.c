#include "CVDBKernels.h"
#include "cpu_extensions.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

// PQ codes in blocks of 64 rows ([block][m][64] bytes): sub-quantizer j of 64 consecutive rows
// is one 64-byte line, so a SIMD register holds one code of 64 rows and a byte permute looks all
// of them up at once (the "fast scan" of André et al. and FAISS, here with 8-bit codes).

void vdb_pq_block_codes(const uint8_t *rows, size_t n, size_t m, uint8_t *out) {
    size_t blocks = (n + 63) / 64;
    memset(out, 0, blocks * 64 * m);
    for (size_t r = 0; r < n; r++) {
        uint8_t *block = out + (r / 64) * 64 * m + r % 64;
        for (size_t j = 0; j < m; j++) block[j * 64] = rows[r * m + j];
    }
}

// One row's exact sum. Even and odd sub-quantizers are summed apart (two chains in flight);
// every path below adds in this order, so a row scores the same bits whichever path scored it.
static inline float blocked_row(const float *tables, const uint8_t *lane, size_t m, float start) {
    float a = start, b = 0;
    size_t j = 0;
    for (; j + 2 <= m; j += 2) {
        a += tables[j * 256 + lane[j * 64]];
        b += tables[(j + 1) * 256 + lane[(j + 1) * 64]];
    }
    if (j < m) a += tables[j * 256 + lane[j * 64]];
    return a + b;
}

// The float scan is scalar on purpose: gathers (AVX2 and AVX-512) measured 1.5-2x slower than
// scalar loads on the machines we run (AMD Zen 4). Four rows and two sums per row keep eight
// load-and-add chains in flight (0.4-0.5 ns a lookup at m = 96, whose 96 KiB of tables sit in
// L2; about half that when the tables fit L1).
void vdb_pq_adc_scan_blocked(const float *tables, const uint8_t *codes, size_t m, size_t first, size_t n, const float *bias, float *out) {
    size_t i = 0;
    while (i < n) {
        size_t r = first + i, lane = r % 64;
        const uint8_t *block = codes + (r / 64) * 64 * m;
        // Four rows of one block at a time: one 4-byte load gives sub-quantizer j of all four.
        if (lane + 4 <= 64 && i + 4 <= n) {
            float a0 = bias ? bias[i] : 0, a1 = bias ? bias[i + 1] : 0, a2 = bias ? bias[i + 2] : 0, a3 = bias ? bias[i + 3] : 0;
            float b0 = 0, b1 = 0, b2 = 0, b3 = 0;
            size_t j = 0;
            for (; j + 2 <= m; j += 2) {
                uint32_t x, y;
                memcpy(&x, block + j * 64 + lane, 4);
                memcpy(&y, block + (j + 1) * 64 + lane, 4);
                const float *t = tables + j * 256, *u = t + 256;
                a0 += t[x & 0xff];
                a1 += t[(x >> 8) & 0xff];
                a2 += t[(x >> 16) & 0xff];
                a3 += t[x >> 24];
                b0 += u[y & 0xff];
                b1 += u[(y >> 8) & 0xff];
                b2 += u[(y >> 16) & 0xff];
                b3 += u[y >> 24];
            }
            if (j < m) {
                uint32_t x;
                memcpy(&x, block + j * 64 + lane, 4);
                const float *t = tables + j * 256;
                a0 += t[x & 0xff];
                a1 += t[(x >> 8) & 0xff];
                a2 += t[(x >> 16) & 0xff];
                a3 += t[x >> 24];
            }
            out[i] = a0 + b0;
            out[i + 1] = a1 + b1;
            out[i + 2] = a2 + b2;
            out[i + 3] = a3 + b3;
            i += 4;
        } else {
            out[i] = blocked_row(tables, block + lane, m, bias ? bias[i] : 0);
            i += 1;
        }
    }
}

// Quantizes float tables to bytes with one scale: q = round((t − min_j)·s), so that a row's
// byte sum over m sub-quantizers fits 16 bits (each entry at most min(255, 65535 / m)). The true
// sum is bias + sum / s, within `bound` (the summed per-sub-quantizer worst rounding errors).
// The fine table holds each entry's rounding r = x − q ∈ [−½, ½] as round(254·r) + 128, so
// x = q + (fine − 128 + r')/254 with |r'| ≤ ½: two byte sums give the sum to 1/254 of a step.
#define VDB_PQ_QUANTIZE_BODY                                                                     \
    float range = 0, bias = 0;                                                                   \
    for (size_t j = 0; j < m; j++) {                                                             \
        const float *t = tables + j * 256;                                                       \
        float lo = t[0], hi = t[0];                                                              \
        for (size_t c = 1; c < 256; c++) {                                                       \
            lo = t[c] < lo ? t[c] : lo;                                                          \
            hi = t[c] > hi ? t[c] : hi;                                                          \
        }                                                                                        \
        mins[j] = lo;                                                                            \
        bias += lo;                                                                              \
        range = hi - lo > range ? hi - lo : range;                                               \
    }                                                                                            \
    const float top = m <= 257 ? 255.0f : (float)(65535 / m);                                    \
    const float scale = range > 0 ? top / range : 1.0f;                                          \
    float bound = 0, fine_bound = 0;                                                             \
    for (size_t j = 0; j < m; j++) {                                                             \
        const float *t = tables + j * 256;                                                       \
        uint8_t *o = out + j * 256;                                                              \
        const float lo = mins[j];                                                                \
        float worst = 0, fine_worst = 0;                                                         \
        for (size_t c = 0; c < 256; c++) {                                                       \
            float x = (t[c] - lo) * scale;                                                       \
            x = x < top ? x : top;                                                               \
            const uint8_t q = (uint8_t)(x + 0.5f);                                               \
            o[c] = q;                                                                            \
            const float e = fabsf(x - (float)q);                                                 \
            worst = e > worst ? e : worst;                                                       \
            if (fine) {                                                                          \
                const float r = (x - (float)q) * 254.0f;                                         \
                const float f = nearbyintf(r);                                                   \
                fine[j * 256 + c] = (uint8_t)(int)(f + 128.0f);                                  \
                const float g = fabsf(r - f);                                                    \
                fine_worst = g > fine_worst ? g : fine_worst;                                    \
            }                                                                                    \
        }                                                                                        \
        bound += worst;                                                                          \
        fine_bound += fine_worst;                                                                \
    }                                                                                            \
    result->bias = bias;                                                                         \
    result->step = 1.0f / scale;                                                                 \
    result->bound = bound / scale;                                                               \
    result->fine_step = fine ? 1.0f / (254.0f * scale) : 0;                                      \
    result->fine_offset = fine ? -128.0f * (float)m / (254.0f * scale) : 0;                      \
    result->fine_bound = fine ? fine_bound / (254.0f * scale) : bound / scale;

static void quantize_scalar(const float *tables, size_t m, float *mins, uint8_t *out, uint8_t *fine, vdb_pq_quantized *result) {
    VDB_PQ_QUANTIZE_BODY
}
__attribute__((target("avx512f,avx512bw"))) static void quantize_avx512(
    const float *tables, size_t m, float *mins, uint8_t *out, uint8_t *fine, vdb_pq_quantized *result) {
    float range = 0, bias = 0;
    for (size_t j = 0; j < m; j++) {
        const float *t = tables + j * 256;
        __m512 lo = _mm512_loadu_ps(t), hi = lo;
        for (size_t c = 16; c < 256; c += 16) {
            const __m512 x = _mm512_loadu_ps(t + c);
            lo = _mm512_min_ps(lo, x);
            hi = _mm512_max_ps(hi, x);
        }
        const float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
        mins[j] = l;
        bias += l;
        range = h - l > range ? h - l : range;
    }
    const float top = m <= 257 ? 255.0f : (float)(65535 / m);
    const float scale = range > 0 ? top / range : 1.0f;
    const __m512 vscale = _mm512_set1_ps(scale), vtop = _mm512_set1_ps(top);
    const __m512 v254 = _mm512_set1_ps(254.0f), v128 = _mm512_set1_ps(128.0f);
    float bound = 0, fine_bound = 0;
    for (size_t j = 0; j < m; j++) {
        const float *t = tables + j * 256;
        const __m512 lo = _mm512_set1_ps(mins[j]);
        __m512 worst = _mm512_setzero_ps(), fine_worst = _mm512_setzero_ps();
        for (size_t c = 0; c < 256; c += 16) {
            const __m512 x = _mm512_min_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + c), lo), vscale), vtop);
            const __m512 q = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m512 e = _mm512_sub_ps(x, q);
            worst = _mm512_max_ps(worst, _mm512_abs_ps(e));
            _mm_storeu_si128((__m128i *)(out + j * 256 + c), _mm512_cvtusepi32_epi8(_mm512_cvtps_epu32(q)));
            if (fine) {
                const __m512 r = _mm512_mul_ps(e, v254);
                const __m512 f = _mm512_roundscale_ps(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                fine_worst = _mm512_max_ps(fine_worst, _mm512_abs_ps(_mm512_sub_ps(r, f)));
                _mm_storeu_si128((__m128i *)(fine + j * 256 + c), _mm512_cvtusepi32_epi8(_mm512_cvtps_epu32(_mm512_add_ps(f, v128))));
            }
        }
        bound += _mm512_reduce_max_ps(worst);
        fine_bound += _mm512_reduce_max_ps(fine_worst);
    }
    result->bias = bias;
    result->step = 1.0f / scale;
    result->bound = bound / scale;
    result->fine_step = fine ? 1.0f / (254.0f * scale) : 0;
    result->fine_offset = fine ? -128.0f * (float)m / (254.0f * scale) : 0;
    result->fine_bound = fine ? fine_bound / (254.0f * scale) : bound / scale;
}

void vdb_pq_quantize_tables(const float *tables, size_t m, float *mins, uint8_t *out, uint8_t *fine, vdb_pq_quantized *result) {
    if (vdb_pq_fast_scan_supported()) quantize_avx512(tables, m, mins, out, fine, result);
    else quantize_scalar(tables, m, mins, out, fine, result);
}

int vdb_pq_fast_scan_supported(void) { return (vdb_cpu_extensions() & VDB_CPU_AVX512_VBMI) != 0; }

// Per sub-quantizer and block: the 256-byte table is four registers; two two-register permutes
// look up the low 7 bits of all 64 codes, the code's top bit picks between them. Bytes are
// widened by lane parity (even rows are the low byte of each 16-bit lane) so the adds stay
// in-lane; the two sums are interleaved back into row order at the end. Two blocks share each
// table load.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static inline __m512i lookup64(
    __m512i codes, __m512i t0, __m512i t1, __m512i t2, __m512i t3) {
    const __m512i low = _mm512_permutex2var_epi8(t0, codes, t1);
    const __m512i high = _mm512_permutex2var_epi8(t2, codes, t3);
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(codes), low, high);
}

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static inline void store_rows(__m512i even, __m512i odd, uint16_t *out) {
    const __m512i first = _mm512_set_epi16(
        47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i second = _mm512_set_epi16(
        63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54, 22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
    _mm512_storeu_si512(out, _mm512_permutex2var_epi16(even, first, odd));
    _mm512_storeu_si512(out + 32, _mm512_permutex2var_epi16(even, second, odd));
}

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void fast_scan_vbmi(
    const uint8_t *tables, const uint8_t *codes, size_t m, size_t first, size_t blocks, uint16_t *out) {
    const __m512i byte = _mm512_set1_epi16(0x00ff);
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        const uint8_t *c0 = codes + (first + b) * 64 * m, *c1 = c0 + 64 * m;
        __m512i e0 = _mm512_setzero_si512(), o0 = _mm512_setzero_si512();
        __m512i e1 = _mm512_setzero_si512(), o1 = _mm512_setzero_si512();
        for (size_t j = 0; j < m; j++) {
            _mm_prefetch((const char *)(c0 + (j + 16) * 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(c1 + (j + 16) * 64), _MM_HINT_T0);
            const uint8_t *t = tables + j * 256;
            const __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 64);
            const __m512i t2 = _mm512_loadu_si512(t + 128), t3 = _mm512_loadu_si512(t + 192);
            const __m512i v0 = lookup64(_mm512_loadu_si512(c0 + j * 64), t0, t1, t2, t3);
            const __m512i v1 = lookup64(_mm512_loadu_si512(c1 + j * 64), t0, t1, t2, t3);
            e0 = _mm512_add_epi16(e0, _mm512_and_si512(v0, byte));
            o0 = _mm512_add_epi16(o0, _mm512_srli_epi16(v0, 8));
            e1 = _mm512_add_epi16(e1, _mm512_and_si512(v1, byte));
            o1 = _mm512_add_epi16(o1, _mm512_srli_epi16(v1, 8));
        }
        store_rows(e0, o0, out + b * 64);
        store_rows(e1, o1, out + b * 64 + 64);
    }
    if (b < blocks) {
        const uint8_t *c0 = codes + (first + b) * 64 * m;
        __m512i e0 = _mm512_setzero_si512(), o0 = _mm512_setzero_si512();
        for (size_t j = 0; j < m; j++) {
            const uint8_t *t = tables + j * 256;
            const __m512i v0 = lookup64(
                _mm512_loadu_si512(c0 + j * 64), _mm512_loadu_si512(t), _mm512_loadu_si512(t + 64), _mm512_loadu_si512(t + 128),
                _mm512_loadu_si512(t + 192));
            e0 = _mm512_add_epi16(e0, _mm512_and_si512(v0, byte));
            o0 = _mm512_add_epi16(o0, _mm512_srli_epi16(v0, 8));
        }
        store_rows(e0, o0, out + b * 64);
    }
}

// Portable reference of the same sums (tests, and CPUs without VBMI when asked directly).
static void fast_scan_scalar(const uint8_t *tables, const uint8_t *codes, size_t m, size_t first, size_t blocks, uint16_t *out) {
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = codes + (first + b) * 64 * m;
        for (size_t i = 0; i < 64; i++) {
            uint32_t s = 0;
            for (size_t j = 0; j < m; j++) s += tables[j * 256 + block[j * 64 + i]];
            out[b * 64 + i] = (uint16_t)s;
        }
    }
}

void vdb_pq_fast_scan(const uint8_t *tables, const uint8_t *codes, size_t m, size_t first, size_t blocks, uint16_t *out) {
    if (vdb_pq_fast_scan_supported()) fast_scan_vbmi(tables, codes, m, first, blocks, out);
    else fast_scan_scalar(tables, codes, m, first, blocks, out);
}

void vdb_pq_fast_scan_portable(const uint8_t *tables, const uint8_t *codes, size_t m, size_t first, size_t blocks, uint16_t *out) {
    fast_scan_scalar(tables, codes, m, first, blocks, out);
}

// Score bounds of one list's rows from their byte sums, keeping only the rows whose lower
// bound is at most `cut`. approx = offset + step · sum; L2 adds the row's term, cosine divides
// by √(norm + term) (the reconstruction's length); the bounds are approx ∓ slack, so scaled.
#define VDB_PQ_BOUNDS_SCALAR_ROW(i)                                                              \
    do {                                                                                         \
        float a = offset + step * (float)sums[i] + (fine ? fine_step * (float)fine[i] : 0.0f), lo, hi; \
        if (mode == VDB_PQ_BOUNDS_L2) {                                                          \
            a += terms[i];                                                                       \
            lo = a - slack;                                                                      \
            hi = a + slack;                                                                      \
        } else if (mode == VDB_PQ_BOUNDS_COSINE) {                                               \
            float n2 = norm + terms[i];                                                          \
            const float scale = 1.0f / sqrtf(n2 > 1e-12f ? n2 : 1e-12f);                         \
            lo = (a - slack) * scale;                                                            \
            hi = (a + slack) * scale;                                                            \
        } else {                                                                                 \
            lo = a - slack;                                                                      \
            hi = a + slack;                                                                      \
        }                                                                                        \
        if (lo <= cut) {                                                                         \
            low[kept] = lo;                                                                      \
            high[kept] = hi;                                                                     \
            index[kept] = (uint32_t)(i);                                                         \
            kept++;                                                                              \
        } else if (lo < dropped) {                                                               \
            dropped = lo;                                                                        \
        }                                                                                        \
    } while (0)

static size_t bounds_scalar(
    const uint16_t *sums, const uint16_t *fine, size_t n, const float *terms, vdb_pq_bounds_mode mode, float offset, float step,
    float fine_step, float slack, float norm, float cut, float *low, float *high, uint32_t *index, float *least_dropped) {
    size_t kept = 0;
    float dropped = *least_dropped;
    for (size_t i = 0; i < n; i++) VDB_PQ_BOUNDS_SCALAR_ROW(i);
    *least_dropped = dropped;
    return kept;
}

__attribute__((target("avx512f"))) static size_t bounds_avx512(
    const uint16_t *sums, const uint16_t *fine, size_t n, const float *terms, vdb_pq_bounds_mode mode, float offset, float step,
    float fine_step, float slack, float norm, float cut, float *low, float *high, uint32_t *index, float *least_dropped) {
    size_t kept = 0, i = 0;
    float dropped = *least_dropped;
    const __m512 voffset = _mm512_set1_ps(offset), vstep = _mm512_set1_ps(step), vslack = _mm512_set1_ps(slack), vfine = _mm512_set1_ps(fine_step);
    const __m512 vcut = _mm512_set1_ps(cut), vnorm = _mm512_set1_ps(norm), tiny = _mm512_set1_ps(1e-12f), one = _mm512_set1_ps(1);
    __m512 vdropped = _mm512_set1_ps(dropped);
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_fmadd_ps(vstep, _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(sums + i)))), voffset);
        if (fine) a = _mm512_fmadd_ps(vfine, _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(fine + i)))), a);
        __m512 lo, hi;
        if (mode == VDB_PQ_BOUNDS_L2) {
            a = _mm512_add_ps(a, _mm512_loadu_ps(terms + i));
            lo = _mm512_sub_ps(a, vslack);
            hi = _mm512_add_ps(a, vslack);
        } else if (mode == VDB_PQ_BOUNDS_COSINE) {
            const __m512 scale = _mm512_div_ps(one, _mm512_sqrt_ps(_mm512_max_ps(_mm512_add_ps(vnorm, _mm512_loadu_ps(terms + i)), tiny)));
            lo = _mm512_mul_ps(_mm512_sub_ps(a, vslack), scale);
            hi = _mm512_mul_ps(_mm512_add_ps(a, vslack), scale);
        } else {
            lo = _mm512_sub_ps(a, vslack);
            hi = _mm512_add_ps(a, vslack);
        }
        const __mmask16 keep = _mm512_cmp_ps_mask(lo, vcut, _CMP_LE_OQ);
        vdropped = _mm512_mask_min_ps(vdropped, (__mmask16)~keep, vdropped, lo);
        if (keep) {
            // Compress in registers and store whole vectors (the outputs have 16 spare slots):
            // a compressing store to memory is microcoded and slow on Zen 4.
            _mm512_storeu_ps(low + kept, _mm512_maskz_compress_ps(keep, lo));
            _mm512_storeu_ps(high + kept, _mm512_maskz_compress_ps(keep, hi));
            _mm512_storeu_si512(index + kept, _mm512_maskz_compress_epi32(keep, _mm512_add_epi32(lanes, _mm512_set1_epi32((int)i))));
            kept += (size_t)__builtin_popcount(keep);
        }
    }
    dropped = _mm512_reduce_min_ps(vdropped);
    for (; i < n; i++) VDB_PQ_BOUNDS_SCALAR_ROW(i);
    *least_dropped = dropped;
    return kept;
}

size_t vdb_pq_fast_bounds(
    const uint16_t *sums, const uint16_t *fine, size_t n, const float *terms, vdb_pq_bounds_mode mode, float offset, float step,
    float fine_step, float slack, float norm, float cut, float *low, float *high, uint32_t *index, float *least_dropped) {
    if (vdb_pq_fast_scan_supported())
        return bounds_avx512(sums, fine, n, terms, mode, offset, step, fine_step, slack, norm, cut, low, high, index, least_dropped);
    return bounds_scalar(sums, fine, n, terms, mode, offset, step, fine_step, slack, norm, cut, low, high, index, least_dropped);
}

size_t vdb_pq_fast_bounds_portable(
    const uint16_t *sums, const uint16_t *fine, size_t n, const float *terms, vdb_pq_bounds_mode mode, float offset, float step,
    float fine_step, float slack, float norm, float cut, float *low, float *high, uint32_t *index, float *least_dropped) {
    return bounds_scalar(sums, fine, n, terms, mode, offset, step, fine_step, slack, norm, cut, low, high, index, least_dropped);
}
