#include "CVDBKernels.h"
#include "resolver.h"
#include <immintrin.h>
#include <string.h>

// Reflected Castagnoli polynomial 0x82F63B78. The portable path computes each table entry on
// the fly so the target keeps no tables or start-up state.
static uint32_t crc_table_entry(uint32_t i) {
    for (int k = 0; k < 8; k++) i = (i & 1) ? (i >> 1) ^ 0x82F63B78u : (i >> 1);
    return i;
}

uint32_t vdb_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (length--) {
        // Computing the entry per byte is slow but this path only runs on CPUs without SSE4.2
        // and in tests, where a second independent implementation is the point.
        crc = (crc >> 8) ^ crc_table_entry((crc ^ *p++) & 0xFF);
    }
    return ~crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = ~crc;
    while (length && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); length--; }
    // One 8-byte stream runs at about 8 GB/s, far above the disk and page-cache rates we verify at.
    while (length >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        length -= 8;
    }
    while (length--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
VDB_RESOLVER static crc_fn resolve_crc32c(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? crc32c_sse42 : vdb_crc32c_portable;
}
uint32_t vdb_crc32c(uint32_t crc, const void *data, size_t length) __attribute__((ifunc("resolve_crc32c")));
