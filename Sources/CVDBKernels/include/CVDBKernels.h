#ifndef CVDBKERNELS_H
#define CVDBKERNELS_H
// Distance kernels and CRC32C for VDBKit.
//
// Each kernel exists in a scalar, an AVX2+FMA and an AVX-512 variant; the unsuffixed entry
// point is an ELF ifunc resolved once at load time to the best variant the CPU supports, so
// the hot path pays one indirect call and no branch. No allocation, no mutable globals.
#include <stddef.h>
#include <stdint.h>

#include "vdb_concurrency.h"
#include "vdb_thread.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels, in increasing order.
typedef enum {
    VDB_KERNEL_SCALAR = 0,
    VDB_KERNEL_AVX2 = 1,
    VDB_KERNEL_AVX512 = 2,
} vdb_kernel_level;

/// The level the unsuffixed kernels dispatch to on this CPU.
vdb_kernel_level vdb_kernel_level_active(void);
/// Whether this CPU can run the given level (tests call every supported variant).
int vdb_kernel_level_supported(vdb_kernel_level level);

/// Squared Euclidean distance of two `n`-float vectors.
float vdb_l2sq_f32(const float *a, const float *b, size_t n);
/// Inner product of two `n`-float vectors.
float vdb_dot_f32(const float *a, const float *b, size_t n);

/// One query against `rows` contiguous row-major vectors of `dim` floats: out[i] = l2sq(q, base[i]).
void vdb_l2sq_f32_rows(const float *q, const float *base, size_t rows, size_t dim, float *out);
/// One query against `rows` contiguous row-major vectors: out[i] = dot(q, base[i]).
void vdb_dot_f32_rows(const float *q, const float *base, size_t rows, size_t dim, float *out);

/// Inner product of `n` 16-bit weights with `n` unsigned 8-bit codes: sum of w[i] * c[i]. The
/// scalar quantizer folds its per-dimension scale into the query and rounds it to 16 bits once
/// per query, so this is its whole kernel. The caller keeps sum |w[i]| * 255 below 2^31.
int32_t vdb_dot_i16_u8(const int16_t *w, const uint8_t *c, size_t n);
int32_t vdb_dot_i16_u8_level(vdb_kernel_level level, const int16_t *w, const uint8_t *c, size_t n);

/// PQ codes in blocks of 64 rows, [block][m][64] bytes (the last block zero-padded): row r's
/// code j is at (r / 64)·64·m + j·64 + r % 64. Writes ceil(n / 64)·64·m bytes from row-major codes.
void vdb_pq_block_codes(const uint8_t *rows, size_t n, size_t m, uint8_t *out);
/// Asymmetric distance scan for product quantization over blocked codes, rows `first` ..<
/// `first + n`: out[i] = bias[i] + sum over j < m of tables[j·256 + the row's code j] (`bias`
/// may be NULL). A row's sum is the same bits whether scanned alone or with its neighbours.
void vdb_pq_adc_scan_blocked(const float *tables, const uint8_t *codes, size_t m, size_t first, size_t n, const float *bias, float *out);

/// Byte tables made from float tables by ``vdb_pq_quantize_tables``: a row's float table sum
/// lies within `bound` of `bias + step * (its byte table sum)`. With fine tables (the rounding
/// left by the byte tables, itself in bytes) it lies within `fine_bound` of
/// `bias + fine_offset + step * (byte sum) + fine_step * (fine table sum)`.
typedef struct {
    float bias;
    float step;
    float bound;
    float fine_offset;
    float fine_step;
    float fine_bound;
} vdb_pq_quantized;
/// Quantizes `m` float tables (m × 256) to bytes in `out` (m × 256) with one step, so that any
/// row's byte sum fits 16 bits; `mins` is scratch of m floats. `fine` (m × 256, or NULL; only
/// for m ≤ 257) receives each entry's rounding in 1/254ths of a step, offset by 128: a second
/// byte sum that makes the bound about 250 times tighter.
void vdb_pq_quantize_tables(const float *tables, size_t m, float *mins, uint8_t *out, uint8_t *fine, vdb_pq_quantized *result);
/// Whether ``vdb_pq_fast_scan`` runs in SIMD here (AVX-512 VBMI); it is scalar otherwise.
int vdb_pq_fast_scan_supported(void);
/// Byte-table sums of every row of blocks `first` ..< `first + blocks`: out[b·64 + i] for row
/// (first + b)·64 + i. Exact integer sums (no overflow for tables from ``vdb_pq_quantize_tables``).
void vdb_pq_fast_scan(const uint8_t *tables, const uint8_t *codes, size_t m, size_t first, size_t blocks, uint16_t *out);
void vdb_pq_fast_scan_portable(const uint8_t *tables, const uint8_t *codes, size_t m, size_t first, size_t blocks, uint16_t *out);

/// How ``vdb_pq_fast_bounds`` turns a byte sum into a score: L2 adds the row's term; cosine
/// divides by √(norm + term); dot uses neither.
typedef enum { VDB_PQ_BOUNDS_L2 = 0, VDB_PQ_BOUNDS_DOT = 1, VDB_PQ_BOUNDS_COSINE = 2 } vdb_pq_bounds_mode;
/// One list's score bounds from its `n` byte sums: approx = offset + step·sums[i]
/// (+ fine_step·fine[i] when `fine` is not NULL; + terms[i] for L2; divided by
/// √max(1e-12, norm + terms[i]) for cosine, like the slack), bounds approx ∓ slack. Rows with
/// lower bound ≤ `cut` are written, compacted, to low/high/index (index = i) and counted in
/// the result; `least_dropped` is lowered to the least lower bound
/// of the others. `terms` may be NULL for dot. The outputs need room for n + 16 values.
size_t vdb_pq_fast_bounds(
    const uint16_t *sums, const uint16_t *fine, size_t n, const float *terms, vdb_pq_bounds_mode mode, float offset, float step,
    float fine_step, float slack, float norm, float cut, float *low, float *high, uint32_t *index, float *least_dropped);
size_t vdb_pq_fast_bounds_portable(
    const uint16_t *sums, const uint16_t *fine, size_t n, const float *terms, vdb_pq_bounds_mode mode, float offset, float step,
    float fine_step, float slack, float norm, float cut, float *low, float *high, uint32_t *index, float *least_dropped);

/// Per-query PQ tables: out[j * 256 + c] = factor * <q_j, codeword c of sub-space j> for `m`
/// sub-spaces of `sub` components, from codebooks transposed to [m][sub][256] floats.
void vdb_pq_query_tables(const float *q, const float *books_t, size_t m, size_t sub, float factor, float *out);
/// The tables of `count` queries `stride` floats apart, into `out` (count × m × 256 floats);
/// one sub-space's codewords are read once for all of them.
void vdb_pq_query_tables_batch(
    const float *queries, size_t count, size_t stride, const float *books_t, size_t m, size_t sub, float factor, float *out);
void vdb_pq_query_tables_level(
    vdb_kernel_level level, const float *q, const float *books_t, size_t m, size_t sub, float factor, float *out);

/// Inner products of `q` with 16 × `nblocks` vectors stored in blocks of 16 as
/// [nblocks][dim][16] floats: out[b * 16 + c] = <q, vector c of block b>.
void vdb_dot_f32_blocked16(const float *q, const float *blocks, size_t nblocks, size_t dim, float *out);
/// ``vdb_dot_f32_blocked16`` for `count` queries (row-major) at once: out row i (16·nblocks
/// floats) holds query i's products. The blocks are read once per four queries.
void vdb_dot_f32_blocked16_batch(const float *queries, size_t count, const float *blocks, size_t nblocks, size_t dim, float *out);
void vdb_dot_f32_blocked16_level(
    vdb_kernel_level level, const float *q, const float *blocks, size_t nblocks, size_t dim, float *out);

/// The k-th smallest (1-based, 1 ≤ k ≤ n) of `n` values (no NaNs), reordering them so that
/// the first k are at most it and the rest at least it. `spare` (room for n + 16 floats, or
/// NULL) lets AVX-512 partition without branches; `_portable` is the scalar quickselect.
float vdb_select_kth(float *values, size_t n, size_t k, float *spare);
float vdb_select_kth_portable(float *values, size_t n, size_t k);

/// The coarse pass in bfloat16 (AVX-512 BF16 where present, scalar otherwise): vectors of
/// 2·`pairs` components (zero-padded), queries as `count` rows of bf16, centroids in blocks of
/// 16 as [nblocks][pairs][16][2] bf16; out[i·16·nblocks + b·16 + c] ≈ <query i, vector c of
/// block b>, within vdb_bf16_dot_error(2·pairs) · ‖q‖ · ‖c‖ of the float product.
int vdb_bf16_dot_supported(void);
void vdb_f32_to_bf16(const float *in, uint16_t *out, size_t n);
float vdb_bf16_dot_error(size_t dim);
void vdb_dot_bf16_blocked16_batch(const uint16_t *queries, size_t count, size_t pairs, const uint16_t *blocks, size_t nblocks, float *out);
void vdb_dot_bf16_blocked16_batch_portable(
    const uint16_t *queries, size_t count, size_t pairs, const uint16_t *blocks, size_t nblocks, float *out);

/// The index of the nearest (squared L2, the first on ties) of `k` centroids stored
/// transposed, `dim` rows of `k` floats; `distances` has room for `k` floats (scratch). For
/// k-means assignment and PQ encoding in small sub-spaces.
size_t vdb_nearest_l2sq_transposed(const float *q, const float *centroids_t, size_t k, size_t dim, float *distances);

/// The first index of the smallest `offsets[j] + scale · scores[j]` over `k` (`offsets` may be
/// NULL for zero): a k-means assignment from a row of BLAS products (scale −2 and the
/// centroids' squared norms for L2; scale −1 for the largest inner product). `_portable` is
/// the scalar loop, for tests.
size_t vdb_argmin_affine(const float *scores, const float *offsets, float scale, size_t k);
size_t vdb_argmin_affine_portable(const float *scores, const float *offsets, float scale, size_t k);

/// IEEE 754 binary16 (float16) vectors: conversions (round to nearest even) and distances from
/// a float query to a half row. `_portable` variants are the software conversions, for tests.
void vdb_f16_to_f32(const uint16_t *in, float *out, size_t n);
void vdb_f32_to_f16(const float *in, uint16_t *out, size_t n);
float vdb_l2sq_f32_f16(const float *q, const uint16_t *x, size_t n);
float vdb_dot_f32_f16(const float *q, const uint16_t *x, size_t n);
void vdb_f16_to_f32_portable(const uint16_t *in, float *out, size_t n);
void vdb_f32_to_f16_portable(const float *in, uint16_t *out, size_t n);
float vdb_l2sq_f32_f16_portable(const float *q, const uint16_t *x, size_t n);
float vdb_dot_f32_f16_portable(const float *q, const uint16_t *x, size_t n);

/// Explicit variants, for tests and benchmarks.
float vdb_l2sq_f32_level(vdb_kernel_level level, const float *a, const float *b, size_t n);
float vdb_dot_f32_level(vdb_kernel_level level, const float *a, const float *b, size_t n);

/// CRC32C (Castagnoli), continuing from `crc` (pass 0 to start). Uses SSE4.2 when present.
uint32_t vdb_crc32c(uint32_t crc, const void *data, size_t length);
/// The portable table-driven CRC32C, kept for tests.
uint32_t vdb_crc32c_portable(uint32_t crc, const void *data, size_t length);

#ifdef __cplusplus
}
#endif
#endif
