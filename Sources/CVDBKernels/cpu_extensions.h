#ifndef VDB_CPU_EXTENSIONS_H
#define VDB_CPU_EXTENSIONS_H
// AVX-512 extensions beyond AVX-512F, asked at run time (not by ifunc): an ifunc resolver
// testing these picked the scalar variants inside the Swift binaries (measured: the fast scan
// at half speed), while the same test at run time sees them. One cached answer for all.
enum {
    VDB_CPU_AVX512_VBMI = 1,  // with AVX-512BW: byte permutes (the PQ fast scan)
    VDB_CPU_AVX512_BF16 = 2,  // with AVX-512BW: bfloat16 dot products (the coarse pass)
};
int vdb_cpu_extensions(void);
#endif
