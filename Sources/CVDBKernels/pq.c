#include "CVDBKernels.h"
#include "resolver.h"
#include <immintrin.h>

// The nearest of k centroids stored transposed ([dim][k]: component t of every centroid in a
// row), for the small dimensions of PQ sub-spaces: one row of subtract-and-FMA over all k
// centroids per component, which vectorises across centroids, then one pass for the minimum.
// A row-layout search paid one short call per centroid (~1 us per 256 at d = 4, the
// bulk of an IVF-PQ build).
#define VDB_NEAREST_T_BODY                                                                       \
    for (size_t c = 0; c < k; c++) distances[c] = 0;                                             \
    for (size_t t = 0; t < dim; t++) {                                                           \
        const float x = q[t];                                                                    \
        const float *row = centroids_t + t * k;                                                  \
        for (size_t c = 0; c < k; c++) {                                                         \
            const float d = row[c] - x;                                                          \
            distances[c] += d * d;                                                               \
        }                                                                                        \
    }                                                                                            \
    return ARGMIN(distances, k);

// The first index of the smallest of `count` floats.
static size_t argmin_scalar(const float *v, size_t count) {
    size_t best = 0;
    for (size_t c = 1; c < count; c++)
        if (v[c] < v[best]) best = c;
    return best;
}

// The same in two vector passes: the minimum 8 lanes at a time (a scalar chain of compares
// was half of an IVF-PQ build), then the first block holding it.
__attribute__((target("avx2,fma"))) static size_t argmin_avx2(const float *v, size_t count) {
    if (count < 16) return argmin_scalar(v, count);
    __m256 low = _mm256_loadu_ps(v);
    size_t c = 8;
    for (; c + 8 <= count; c += 8) low = _mm256_min_ps(low, _mm256_loadu_ps(v + c));
    float lanes[8];
    _mm256_storeu_ps(lanes, low);
    float smallest = lanes[0];
    for (int i = 1; i < 8; i++) smallest = lanes[i] < smallest ? lanes[i] : smallest;
    for (; c < count; c++) smallest = v[c] < smallest ? v[c] : smallest;
    const __m256 target = _mm256_set1_ps(smallest);
    size_t b = 0;
    for (; b + 8 <= count; b += 8) {
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + b), target, _CMP_EQ_OQ));
        if (mask) return b + (size_t)__builtin_ctz((unsigned)mask);
    }
    for (; b < count; b++)
        if (v[b] == smallest) return b;
    return argmin_scalar(v, count);  // NaNs only
}

typedef size_t (*nearest_t_fn)(const float *, const float *, size_t, size_t, float *);
#define ARGMIN argmin_scalar
static size_t nearest_t_scalar(const float *q, const float *centroids_t, size_t k, size_t dim, float *distances) {
    VDB_NEAREST_T_BODY
}
#undef ARGMIN
#define ARGMIN argmin_avx2
// The first lane-wise minimum of `best` (value) and `index` (its centroid): smallest value,
// then smallest index among equal values, so ties go to the first centroid as in the scalar.
// In registers: a store-and-loop reduction here was a fifth of the kernel at k = 256.
__attribute__((target("avx2,fma"))) static inline size_t reduce_min_index(__m256 best, __m256i index, float *value) {
    __m256 m = _mm256_min_ps(best, _mm256_permute2f128_ps(best, best, 1));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    const __m256 tied = _mm256_cmp_ps(best, m, _CMP_EQ_OQ);
    // Lanes not holding the minimum (or NaN) drop out with the largest index.
    __m256i i = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), _mm256_castsi256_ps(index), tied));
    i = _mm256_min_epu32(i, _mm256_permute2x128_si256(i, i, 1));
    i = _mm256_min_epu32(i, _mm256_shuffle_epi32(i, _MM_SHUFFLE(1, 0, 3, 2)));
    i = _mm256_min_epu32(i, _mm256_shuffle_epi32(i, _MM_SHUFFLE(2, 3, 0, 1)));
    *value = _mm256_cvtss_f32(m);
    const int first = _mm256_cvtsi256_si32(i);
    return first == 0x7fffffff ? 0 : (size_t)first;
}

// Fused for sub-spaces of up to 16 components (PQ's usual 2-8): eight centroids at a time,
// their distances summed in a register over every component and compared with the running
// minimum at once, instead of a row of distances written per component and read back for
// the minimum (that write-then-scan was a third of an IVF-PQ build).
__attribute__((target("avx2,fma"))) static size_t nearest_t_avx2(
    const float *q, const float *centroids_t, size_t k, size_t dim, float *distances) {
    if (dim > 16 || k < 8) {
        VDB_NEAREST_T_BODY
    }
    __m256 x[16];
    for (size_t t = 0; t < dim; t++) x[t] = _mm256_set1_ps(q[t]);
    __m256 best = _mm256_set1_ps(__builtin_inff());
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i current = index;
    const __m256i step = _mm256_set1_epi32(8);
    size_t c = 0;
    for (; c + 8 <= k; c += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t t = 0; t < dim; t++) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(centroids_t + t * k + c), x[t]);
            acc = _mm256_fmadd_ps(d, d, acc);
        }
        const __m256 closer = _mm256_cmp_ps(acc, best, _CMP_LT_OQ);
        best = _mm256_blendv_ps(best, acc, closer);
        index = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(index), _mm256_castsi256_ps(current), closer));
        current = _mm256_add_epi32(current, step);
    }
    float smallest;
    size_t nearest = reduce_min_index(best, index, &smallest);
    for (; c < k; c++) {
        float sum = 0;
        for (size_t t = 0; t < dim; t++) {
            const float d = centroids_t[t * k + c] - q[t];
            sum += d * d;
        }
        if (sum < smallest) {
            smallest = sum;
            nearest = c;
        }
    }
    return nearest;
}
#undef ARGMIN
VDB_RESOLVER static nearest_t_fn resolve_nearest_t(void) {
    switch (vdb_kernel_level_active()) {
    // The fused AVX2 kernel: its eight-wide blocks already keep two loads per FMA in flight.
    case VDB_KERNEL_AVX512:
    case VDB_KERNEL_AVX2: return nearest_t_avx2;
    default: return nearest_t_scalar;
    }
}
size_t vdb_nearest_l2sq_transposed(const float *q, const float *centroids_t, size_t k, size_t dim, float *distances)
    __attribute__((ifunc("resolve_nearest_t")));

// The first index of the smallest offsets[j] + scale * scores[j] (offsets NULL: zero), for
// turning a row of BLAS products into a k-means assignment: scale -2 with the centroids'
// squared norms for L2, scale -1 for the largest inner product.
static size_t argmin_affine_scalar(const float *scores, const float *offsets, float scale, size_t k) {
    size_t best = 0;
    float smallest = __builtin_inff();
    for (size_t j = 0; j < k; j++) {
        const float v = (offsets ? offsets[j] : 0) + scale * scores[j];
        if (v < smallest) {
            smallest = v;
            best = j;
        }
    }
    return best;
}
// Its lane-minimum lines repeat nearest_t_avx2's on purpose: a shared helper over a struct
// did not stay in registers (an IVF-PQ build went from 15 s to 22 s).
__attribute__((target("avx2,fma"))) static size_t argmin_affine_avx2(const float *scores, const float *offsets, float scale, size_t k) {
    if (k < 8) return argmin_affine_scalar(scores, offsets, scale, k);
    const __m256 factor = _mm256_set1_ps(scale);
    __m256 best = _mm256_set1_ps(__builtin_inff());
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i current = index;
    const __m256i step = _mm256_set1_epi32(8);
    size_t j = 0;
    for (; j + 8 <= k; j += 8) {
        const __m256 base = offsets ? _mm256_loadu_ps(offsets + j) : _mm256_setzero_ps();
        const __m256 v = _mm256_fmadd_ps(factor, _mm256_loadu_ps(scores + j), base);
        const __m256 closer = _mm256_cmp_ps(v, best, _CMP_LT_OQ);
        best = _mm256_blendv_ps(best, v, closer);
        index = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(index), _mm256_castsi256_ps(current), closer));
        current = _mm256_add_epi32(current, step);
    }
    float smallest;
    size_t nearest = reduce_min_index(best, index, &smallest);
    for (; j < k; j++) {
        const float v = (offsets ? offsets[j] : 0) + scale * scores[j];
        if (v < smallest) {
            smallest = v;
            nearest = j;
        }
    }
    return nearest;
}
typedef size_t (*argmin_affine_fn)(const float *, const float *, float, size_t);
VDB_RESOLVER static argmin_affine_fn resolve_argmin_affine(void) {
    return vdb_kernel_level_active() >= VDB_KERNEL_AVX2 ? argmin_affine_avx2 : argmin_affine_scalar;
}
size_t vdb_argmin_affine(const float *scores, const float *offsets, float scale, size_t k)
    __attribute__((ifunc("resolve_argmin_affine")));
size_t vdb_argmin_affine_portable(const float *scores, const float *offsets, float scale, size_t k) {
    return argmin_affine_scalar(scores, offsets, scale, k);
}

// out[j * 256 + c] = factor * <q_j, codeword c of sub-space j>, from codebooks transposed so
// each sub-space is `sub` rows of 256 floats: a row of FMAs over the 256 codewords per
// component instead of 256 short dot products (compiled per instruction set, chosen by ifunc).
// The tables of `count` queries (`stride` floats apart) at once, sub-space by sub-space, so one
// sub-space's codewords (sub × 256 floats) stay in L1 while every query uses them.
#define VDB_PQ_TABLES_BODY                                                                       \
    for (size_t j = 0; j < m; j++) {                                                             \
        const float *b = books_t + j * sub * 256;                                                \
        for (size_t i = 0; i < count; i++) {                                                     \
            const float *qj = queries + i * stride + j * sub;                                    \
            float *o = out + (i * m + j) * 256;                                                  \
            if (sub == 4) {                                                                      \
                /* The default (d/4 sub-quantizers): each entry written once. */                 \
                const float a0 = factor * qj[0], a1 = factor * qj[1];                            \
                const float a2 = factor * qj[2], a3 = factor * qj[3];                            \
                for (size_t c = 0; c < 256; c++)                                                 \
                    o[c] = a0 * b[c] + a1 * b[256 + c] + a2 * b[512 + c] + a3 * b[768 + c];      \
                continue;                                                                        \
            }                                                                                    \
            const float a0 = factor * qj[0];                                                     \
            for (size_t c = 0; c < 256; c++) o[c] = a0 * b[c];                                   \
            for (size_t t = 1; t < sub; t++) {                                                   \
                const float a = factor * qj[t];                                                  \
                const float *bt = b + t * 256;                                                   \
                for (size_t c = 0; c < 256; c++) o[c] += a * bt[c];                              \
            }                                                                                    \
        }                                                                                        \
    }

typedef void (*tables_fn)(const float *, size_t, size_t, const float *, size_t, size_t, float, float *);
static void pq_tables_scalar(
    const float *queries, size_t count, size_t stride, const float *books_t, size_t m, size_t sub, float factor, float *out) {
    VDB_PQ_TABLES_BODY
}
__attribute__((target("avx2,fma"))) static void pq_tables_avx2(
    const float *queries, size_t count, size_t stride, const float *books_t, size_t m, size_t sub, float factor, float *out) {
    VDB_PQ_TABLES_BODY
}
__attribute__((target("avx512f"))) static void pq_tables_avx512(
    const float *queries, size_t count, size_t stride, const float *books_t, size_t m, size_t sub, float factor, float *out) {
    VDB_PQ_TABLES_BODY
}
VDB_RESOLVER static tables_fn resolve_pq_tables(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return pq_tables_avx512;
    case VDB_KERNEL_AVX2: return pq_tables_avx2;
    default: return pq_tables_scalar;
    }
}
void vdb_pq_query_tables_batch(
    const float *queries, size_t count, size_t stride, const float *books_t, size_t m, size_t sub, float factor, float *out)
    __attribute__((ifunc("resolve_pq_tables")));

void vdb_pq_query_tables(const float *q, const float *books_t, size_t m, size_t sub, float factor, float *out) {
    vdb_pq_query_tables_batch(q, 1, m * sub, books_t, m, sub, factor, out);
}

// ---- inner products against centroids in blocks of 16 --------------------------------------
// Centroids are stored as [blocks][dim][16]: one load gives one component of 16 centroids, so
// the products are FMAs with the query component broadcast, no horizontal sums. Several blocks
// and even/odd components are summed apart so eight FMA chains are in flight.

#include <immintrin.h>

static void dot_blocked16_scalar(const float *q, const float *blocks, size_t nblocks, size_t dim, float *out) {
    for (size_t b = 0; b < nblocks; b++) {
        const float *p = blocks + b * dim * 16;
        float acc[16] = {0};
        for (size_t t = 0; t < dim; t++)
            for (size_t c = 0; c < 16; c++) acc[c] += q[t] * p[t * 16 + c];
        for (size_t c = 0; c < 16; c++) out[b * 16 + c] = acc[c];
    }
}

__attribute__((target("avx2,fma"))) static void dot_blocked16_avx2(
    const float *q, const float *blocks, size_t nblocks, size_t dim, float *out) {
    size_t b = 0;
    for (; b + 2 <= nblocks; b += 2) {
        const float *p0 = blocks + b * dim * 16, *p1 = p0 + dim * 16;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m256 e0 = _mm256_setzero_ps(), e1 = _mm256_setzero_ps(), e2 = _mm256_setzero_ps(), e3 = _mm256_setzero_ps();
        size_t t = 0;
        for (; t + 2 <= dim; t += 2) {
            __m256 x = _mm256_broadcast_ss(q + t), y = _mm256_broadcast_ss(q + t + 1);
            a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p0 + t * 16), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p0 + t * 16 + 8), a1);
            a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p1 + t * 16), a2);
            a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p1 + t * 16 + 8), a3);
            e0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(p0 + t * 16 + 16), e0);
            e1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(p0 + t * 16 + 24), e1);
            e2 = _mm256_fmadd_ps(y, _mm256_loadu_ps(p1 + t * 16 + 16), e2);
            e3 = _mm256_fmadd_ps(y, _mm256_loadu_ps(p1 + t * 16 + 24), e3);
        }
        if (t < dim) {
            __m256 x = _mm256_broadcast_ss(q + t);
            a0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p0 + t * 16), a0);
            a1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p0 + t * 16 + 8), a1);
            a2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p1 + t * 16), a2);
            a3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(p1 + t * 16 + 8), a3);
        }
        _mm256_storeu_ps(out + b * 16, _mm256_add_ps(a0, e0));
        _mm256_storeu_ps(out + b * 16 + 8, _mm256_add_ps(a1, e1));
        _mm256_storeu_ps(out + b * 16 + 16, _mm256_add_ps(a2, e2));
        _mm256_storeu_ps(out + b * 16 + 24, _mm256_add_ps(a3, e3));
    }
    if (b < nblocks) dot_blocked16_scalar(q, blocks + b * dim * 16, nblocks - b, dim, out + b * 16);
}

__attribute__((target("avx512f"))) static void dot_blocked16_avx512(
    const float *q, const float *blocks, size_t nblocks, size_t dim, float *out) {
    size_t b = 0;
    for (; b + 4 <= nblocks; b += 4) {
        const float *p0 = blocks + b * dim * 16, *p1 = p0 + dim * 16, *p2 = p1 + dim * 16, *p3 = p2 + dim * 16;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        __m512 e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps(), e2 = _mm512_setzero_ps(), e3 = _mm512_setzero_ps();
        size_t t = 0;
        for (; t + 2 <= dim; t += 2) {
            __m512 x = _mm512_set1_ps(q[t]), y = _mm512_set1_ps(q[t + 1]);
            a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p0 + t * 16), a0);
            a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p1 + t * 16), a1);
            a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p2 + t * 16), a2);
            a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p3 + t * 16), a3);
            e0 = _mm512_fmadd_ps(y, _mm512_loadu_ps(p0 + t * 16 + 16), e0);
            e1 = _mm512_fmadd_ps(y, _mm512_loadu_ps(p1 + t * 16 + 16), e1);
            e2 = _mm512_fmadd_ps(y, _mm512_loadu_ps(p2 + t * 16 + 16), e2);
            e3 = _mm512_fmadd_ps(y, _mm512_loadu_ps(p3 + t * 16 + 16), e3);
        }
        if (t < dim) {
            __m512 x = _mm512_set1_ps(q[t]);
            a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p0 + t * 16), a0);
            a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p1 + t * 16), a1);
            a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p2 + t * 16), a2);
            a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(p3 + t * 16), a3);
        }
        _mm512_storeu_ps(out + b * 16, _mm512_add_ps(a0, e0));
        _mm512_storeu_ps(out + b * 16 + 16, _mm512_add_ps(a1, e1));
        _mm512_storeu_ps(out + b * 16 + 32, _mm512_add_ps(a2, e2));
        _mm512_storeu_ps(out + b * 16 + 48, _mm512_add_ps(a3, e3));
    }
    if (b < nblocks) dot_blocked16_avx2(q, blocks + b * dim * 16, nblocks - b, dim, out + b * 16);
}

typedef void (*blocked_fn)(const float *, const float *, size_t, size_t, float *);
VDB_RESOLVER static blocked_fn resolve_dot_blocked16(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return dot_blocked16_avx512;
    case VDB_KERNEL_AVX2: return dot_blocked16_avx2;
    default: return dot_blocked16_scalar;
    }
}
void vdb_dot_f32_blocked16(const float *q, const float *blocks, size_t nblocks, size_t dim, float *out)
    __attribute__((ifunc("resolve_dot_blocked16")));

void vdb_dot_f32_blocked16_level(
    vdb_kernel_level level, const float *q, const float *blocks, size_t nblocks, size_t dim, float *out) {
    switch (level) {
    case VDB_KERNEL_AVX512: dot_blocked16_avx512(q, blocks, nblocks, dim, out); break;
    case VDB_KERNEL_AVX2: dot_blocked16_avx2(q, blocks, nblocks, dim, out); break;
    default: dot_blocked16_scalar(q, blocks, nblocks, dim, out); break;
    }
}

void vdb_pq_query_tables_level(
    vdb_kernel_level level, const float *q, const float *books_t, size_t m, size_t sub, float factor, float *out) {
    switch (level) {
    case VDB_KERNEL_AVX512: pq_tables_avx512(q, 1, m * sub, books_t, m, sub, factor, out); break;
    case VDB_KERNEL_AVX2: pq_tables_avx2(q, 1, m * sub, books_t, m, sub, factor, out); break;
    default: pq_tables_scalar(q, 1, m * sub, books_t, m, sub, factor, out); break;
    }
}

// Several queries against the same blocks: each centroid load feeds four queries' FMAs, and a
// pair of blocks (2 × 16 centroids) is used by every query of the batch before the next pair is
// read, so the centroids come from memory once per batch, not once per query.
__attribute__((target("avx512f"))) static void dot_blocked16_batch_avx512(
    const float *queries, size_t count, const float *blocks, size_t nblocks, size_t dim, float *out) {
    const size_t stride = nblocks * 16;
    const size_t quads = count / 4 * 4;
    size_t b = 0;
    for (; b + 2 <= nblocks; b += 2) {
        const float *p0 = blocks + b * dim * 16, *p1 = p0 + dim * 16;
        for (size_t i = 0; i < quads; i += 4) {
            const float *q0 = queries + i * dim, *q1 = q0 + dim, *q2 = q1 + dim, *q3 = q2 + dim;
            float *o = out + i * stride + b * 16;
            __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps();
            __m512 a20 = _mm512_setzero_ps(), a21 = _mm512_setzero_ps(), a30 = _mm512_setzero_ps(), a31 = _mm512_setzero_ps();
            for (size_t t = 0; t < dim; t++) {
                __m512 c0 = _mm512_loadu_ps(p0 + t * 16), c1 = _mm512_loadu_ps(p1 + t * 16);
                __m512 x0 = _mm512_set1_ps(q0[t]), x1 = _mm512_set1_ps(q1[t]), x2 = _mm512_set1_ps(q2[t]), x3 = _mm512_set1_ps(q3[t]);
                a00 = _mm512_fmadd_ps(x0, c0, a00); a01 = _mm512_fmadd_ps(x0, c1, a01);
                a10 = _mm512_fmadd_ps(x1, c0, a10); a11 = _mm512_fmadd_ps(x1, c1, a11);
                a20 = _mm512_fmadd_ps(x2, c0, a20); a21 = _mm512_fmadd_ps(x2, c1, a21);
                a30 = _mm512_fmadd_ps(x3, c0, a30); a31 = _mm512_fmadd_ps(x3, c1, a31);
            }
            _mm512_storeu_ps(o, a00); _mm512_storeu_ps(o + 16, a01);
            _mm512_storeu_ps(o + stride, a10); _mm512_storeu_ps(o + stride + 16, a11);
            _mm512_storeu_ps(o + 2 * stride, a20); _mm512_storeu_ps(o + 2 * stride + 16, a21);
            _mm512_storeu_ps(o + 3 * stride, a30); _mm512_storeu_ps(o + 3 * stride + 16, a31);
        }
    }
    // The odd last block, and the queries past the last whole quad.
    if (b < nblocks) {
        for (size_t i = 0; i < quads; i++)
            dot_blocked16_avx512(queries + i * dim, blocks + b * dim * 16, nblocks - b, dim, out + i * stride + b * 16);
    }
    for (size_t i = quads; i < count; i++) dot_blocked16_avx512(queries + i * dim, blocks, nblocks, dim, out + i * stride);
}

static void dot_blocked16_batch_scalar(
    const float *queries, size_t count, const float *blocks, size_t nblocks, size_t dim, float *out) {
    for (size_t i = 0; i < count; i++) dot_blocked16_scalar(queries + i * dim, blocks, nblocks, dim, out + i * nblocks * 16);
}
__attribute__((target("avx2,fma"))) static void dot_blocked16_batch_avx2(
    const float *queries, size_t count, const float *blocks, size_t nblocks, size_t dim, float *out) {
    for (size_t i = 0; i < count; i++) dot_blocked16_avx2(queries + i * dim, blocks, nblocks, dim, out + i * nblocks * 16);
}

typedef void (*blocked_batch_fn)(const float *, size_t, const float *, size_t, size_t, float *);
VDB_RESOLVER static blocked_batch_fn resolve_dot_blocked16_batch(void) {
    switch (vdb_kernel_level_active()) {
    case VDB_KERNEL_AVX512: return dot_blocked16_batch_avx512;
    case VDB_KERNEL_AVX2: return dot_blocked16_batch_avx2;
    default: return dot_blocked16_batch_scalar;
    }
}
void vdb_dot_f32_blocked16_batch(const float *queries, size_t count, const float *blocks, size_t nblocks, size_t dim, float *out)
    __attribute__((ifunc("resolve_dot_blocked16_batch")));
