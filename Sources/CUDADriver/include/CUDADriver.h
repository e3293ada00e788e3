// The subset of the CUDA driver API that swiftlaunch uses, declared by hand so that no CUDA
// toolkit is needed at build time. Layouts and values follow cuda.h (CUDA 12/13); the library
// itself is loaded at run time with dlopen("libcuda.so.1").
#ifndef SWIFTLAUNCH_CUDA_DRIVER_H
#define SWIFTLAUNCH_CUDA_DRIVER_H

#include <stdint.h>
#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef uint64_t CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_CONTEXT = 201,
};

enum {
    CU_POINTER_ATTRIBUTE_CONTEXT = 1,
    CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2,
    CU_POINTER_ATTRIBUTE_DEVICE_POINTER = 3,
    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9,
};

enum {
    CU_LAUNCH_ATTRIBUTE_COOPERATIVE = 2,
    CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
    CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE = 5,
    CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
    /* Not in every cuda.h yet: Triton 3.8+'s driver.c defines it itself (same value). */
    CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE = 18,
};

enum { CU_SHARED_MEMORY_MODE_ALLOW_OVERSIZED_SHARED_MEMORY = 3 };

enum { CU_CLUSTER_SCHEDULING_POLICY_SPREAD = 1 };
enum { CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14 };
enum { CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76 };

typedef struct {
    unsigned int x;
    unsigned int y;
    unsigned int z;
} CUlaunchClusterDim;

typedef union {
    char pad[64];
    int cooperative;
    CUlaunchClusterDim clusterDim;
    int clusterSchedulingPolicyPreference;
    int programmaticStreamSerializationAllowed;
    /* Triton writes `.value = CU_SHARED_MEMORY_MODE_...` (the first byte of `pad`): the same bytes. */
    int sharedMemoryMode;
} CUlaunchAttributeValue;

typedef struct {
    int id;
    char pad[8 - sizeof(int)];
    CUlaunchAttributeValue value;
} CUlaunchAttribute;

typedef struct {
    unsigned int gridDimX;
    unsigned int gridDimY;
    unsigned int gridDimZ;
    unsigned int blockDimX;
    unsigned int blockDimY;
    unsigned int blockDimZ;
    unsigned int sharedMemBytes;
    CUstream hStream;
    CUlaunchAttribute *attrs;
    unsigned int numAttrs;
} CUlaunchConfig;

typedef CUresult (*cuInit_t)(unsigned int flags);
typedef CUresult (*cuDriverGetVersion_t)(int *version);
typedef CUresult (*cuDeviceGetCount_t)(int *count);
typedef CUresult (*cuDeviceGet_t)(CUdevice *device, int ordinal);
typedef CUresult (*cuDeviceGetName_t)(char *name, int length, CUdevice device);
typedef CUresult (*cuDeviceGetAttribute_t)(int *value, int attribute, CUdevice device);
typedef CUresult (*cuDeviceTotalMem_t)(size_t *bytes, CUdevice device);
typedef CUresult (*cuCtxGetCurrent_t)(CUcontext *context);
typedef CUresult (*cuCtxGetDevice_t)(CUdevice *device);
typedef CUresult (*cuCtxSetCurrent_t)(CUcontext context);
typedef CUresult (*cuDevicePrimaryCtxRetain_t)(CUcontext *context, CUdevice device);
typedef CUresult (*cuPointerGetAttribute_t)(void *data, int attribute, CUdeviceptr pointer);
typedef CUresult (*cuPointerGetAttributes_t)(unsigned int count, int *attributes, void **data, CUdeviceptr pointer);
typedef CUresult (*cuFuncSetAttribute_t)(CUfunction function, int attribute, int value);
typedef CUresult (*cuLaunchKernelEx_t)(const CUlaunchConfig *config, CUfunction function, void **params, void **extra);
typedef CUresult (*cuGetErrorString_t)(CUresult error, const char **text);
/* `CUstreamCaptureStatus`: 0 none, 1 active, 2 invalidated. */
typedef CUresult (*cuStreamIsCapturing_t)(CUstream stream, int *captureStatus);



/// Path of the shared library that holds `symbol` (dladdr), or NULL.
const char *swiftlaunch_library_path(const void *symbol);
/// dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL), dlsym and dlerror, here so that Swift code
/// needs no Glibc import (which clashes with Python.h's feature macros in one module).
void *swiftlaunch_dlopen_cuda(void);
void *swiftlaunch_dlsym(void *handle, const char *name);
const char *swiftlaunch_dlerror(void);

#endif
