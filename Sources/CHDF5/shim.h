#ifndef VDB_CHDF5_SHIM_H
#define VDB_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>

// HDF5 spells these as macros that expand to function calls or globals Swift cannot import.
static inline hid_t vdb_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t vdb_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t vdb_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t vdb_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t vdb_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t vdb_h5s_all(void) { return H5S_ALL; }
static inline hid_t vdb_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline unsigned vdb_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned vdb_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline size_t vdb_h5t_variable(void) { return H5T_VARIABLE; }
/// Silences HDF5's default error printer; errors reach Swift as negative return codes.
static inline void vdb_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
