/* A stand-in libcuda.so.1 for profiling swiftlaunch's host path on a machine with no GPU.
 * Every call succeeds and does nothing; pointers are reported as device memory of device 0.
 * Build: cc -O2 -shared -fPIC -o /tmp/fakecuda/libcuda.so.1 scripts/fake_libcuda.c
 * Use:   LD_LIBRARY_PATH=/tmp/fakecuda python scripts/profile_cpu.py
 * Never for correctness tests (it launches nothing); the crash tests (tests/test_native_hardening.py,
 * tests/test_native_fuzz.py) use it only to get calls past the driver check, as on a GPU machine. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef int CUresult;
static int context_token;

CUresult cuInit(unsigned int flags) { (void)flags; return 0; }
CUresult cuDriverGetVersion(int *version) { *version = 13000; return 0; }
CUresult cuDeviceGetCount(int *count) { *count = 1; return 0; }
CUresult cuDeviceGet(int *device, int ordinal) { *device = ordinal; return 0; }
CUresult cuDeviceGetName(char *name, int length, int device) { (void)device; strncpy(name, "fake", length); return 0; }
CUresult cuDeviceGetAttribute(int *value, int attribute, int device) { (void)attribute; (void)device; *value = 9; return 0; }
CUresult cuDeviceTotalMem_v2(size_t *bytes, int device) { (void)device; *bytes = 1; return 0; }
CUresult cuCtxGetCurrent(void **context) { *context = &context_token; return 0; }
CUresult cuCtxGetDevice(int *device) { *device = 0; return 0; }
CUresult cuPointerGetAttributes(unsigned count, int *attributes, void **data, uint64_t pointer) {
    for (unsigned i = 0; i < count; i++) {
        if (attributes[i] == 1) *(int *)data[i] = 0;               /* CONTEXT: unused */
        else if (attributes[i] == 9) *(int *)data[i] = 0;          /* DEVICE_ORDINAL */
        else *(uint64_t *)data[i] = pointer;                       /* DEVICE_POINTER */
    }
    return 0;
}
CUresult cuFuncSetAttribute(void *function, int attribute, int value) { (void)function; (void)attribute; (void)value; return 0; }
CUresult cuLaunchKernelEx(const void *config, void *function, void **params, void **extra) {
    (void)config; (void)function; (void)params; (void)extra; return 0;
}
CUresult cuGetErrorString(CUresult error, const char **text) { (void)error; *text = "fake"; return 0; }
