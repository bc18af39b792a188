#include "cpu_extensions.h"

int vdb_cpu_extensions(void) {
    static int known = -1;
    int value = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        const int bw = __builtin_cpu_supports("avx512bw");
        value = (bw && __builtin_cpu_supports("avx512vbmi") ? VDB_CPU_AVX512_VBMI : 0)
            | (bw && __builtin_cpu_supports("avx512bf16") ? VDB_CPU_AVX512_BF16 : 0);
        __atomic_store_n(&known, value, __ATOMIC_RELAXED);
    }
    return value;
}
