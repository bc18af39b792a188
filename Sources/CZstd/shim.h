#ifndef VDB_CZSTD_SHIM_H
#define VDB_CZSTD_SHIM_H
#include <zstd.h>
#endif
