#ifndef VDB_COPENBLAS_SHIM_H
#define VDB_COPENBLAS_SHIM_H
// Debian installs OpenBLAS's cblas.h in the multiarch include directory, which is on the default path.
#include <cblas.h>
#endif
