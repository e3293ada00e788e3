/* A recording stand-in for libcuda.so.1, for the launcher parity test (tests/test_launcher_parity.py):
 * Triton's own launcher code (3.6's generated launcher, 3.7+'s driver.c) and swiftlaunch's core both
 * launch "kernels" through it, and it records what each launch would hand the GPU: the grid, block,
 * shared memory, stream, the launch attributes and the bytes of every kernel parameter.
 *
 * Every call succeeds; the current context is device 0's; a pointer's device pointer is itself.
 * Build: cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o DIR/libcuda.so.1 recording_libcuda.c
 * Never used outside that test. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef int CUresult;

typedef struct {
    unsigned gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes;
    void *hStream;
    struct Attribute {
        int id;
        char pad[4];
        unsigned char value[64];
    } *attrs;
    unsigned numAttrs;
} LaunchConfig;

#define MAX_PARAMS 64
#define MAX_ATTRS 8

/* What the last launch saw; read with ctypes. */
typedef struct {
    int launches;
    unsigned grid[3];
    unsigned block[3];
    unsigned shared;
    uint64_t stream;
    uint64_t function;
    unsigned num_attrs;
    int attr_ids[MAX_ATTRS];
    unsigned char attr_values[MAX_ATTRS][16];
    int param_count;
    uint64_t params[MAX_PARAMS];
    int func_attribute_calls;
    int func_attribute;
    int func_attribute_value;
} Record;

Record fake_record;

/* Clears the record; the next launch copies `param_count` parameters, 8 bytes each (the test compares
 * only the bytes the launcher under test wrote). */
void fake_reset(int param_count) {
    memset(&fake_record, 0, sizeof fake_record);
    fake_record.param_count = param_count < MAX_PARAMS ? param_count : MAX_PARAMS;
}

CUresult cuLaunchKernelEx(const LaunchConfig *config, void *function, void **params, void **extra) {
    (void)extra;
    Record *r = &fake_record;
    r->launches += 1;
    r->grid[0] = config->gridDimX; r->grid[1] = config->gridDimY; r->grid[2] = config->gridDimZ;
    r->block[0] = config->blockDimX; r->block[1] = config->blockDimY; r->block[2] = config->blockDimZ;
    r->shared = config->sharedMemBytes;
    r->stream = (uint64_t)(uintptr_t)config->hStream;
    r->function = (uint64_t)(uintptr_t)function;
    r->num_attrs = config->numAttrs;
    for (unsigned i = 0; i < config->numAttrs && i < MAX_ATTRS; i++) {
        r->attr_ids[i] = config->attrs[i].id;
        memcpy(r->attr_values[i], config->attrs[i].value, 16);
    }
    for (int i = 0; i < r->param_count; i++) memcpy(&r->params[i], params[i], 8);
    return 0;
}

static int context_token;
CUresult cuInit(unsigned flags) { (void)flags; return 0; }
CUresult cuDriverGetVersion(int *version) { *version = 13000; return 0; }
CUresult cuDeviceGetCount(int *count) { *count = 1; return 0; }
CUresult cuDeviceGet(int *device, int ordinal) { *device = ordinal; return 0; }
CUresult cuDeviceGetName(char *name, int length, int device) { (void)device; strncpy(name, "recording", length); return 0; }
CUresult cuDeviceGetAttribute(int *value, int attribute, int device) { (void)attribute; (void)device; *value = 9; return 0; }
CUresult cuDeviceTotalMem_v2(size_t *bytes, int device) { (void)device; *bytes = 1; return 0; }
CUresult cuDevicePrimaryCtxRetain(void **context, int device) { (void)device; *context = &context_token; return 0; }
CUresult cuCtxGetCurrent(void **context) { *context = &context_token; return 0; }
CUresult cuCtxSetCurrent(void *context) { (void)context; return 0; }
CUresult cuCtxGetDevice(int *device) { *device = 0; return 0; }
CUresult cuCtxGetLimit(size_t *value, int limit) { (void)limit; *value = 0; return 0; }
CUresult cuCtxSetLimit(int limit, size_t value) { (void)limit; (void)value; return 0; }
CUresult cuPointerGetAttribute(void *data, int attribute, uint64_t pointer) {
    (void)attribute; *(uint64_t *)data = pointer; return 0;
}
CUresult cuPointerGetAttributes(unsigned count, int *attributes, void **data, uint64_t pointer) {
    for (unsigned i = 0; i < count; i++) {
        if (attributes[i] == 9) *(int *)data[i] = 0;          /* DEVICE_ORDINAL */
        else if (attributes[i] == 3) *(uint64_t *)data[i] = pointer; /* DEVICE_POINTER */
    }
    return 0;
}
CUresult cuFuncSetAttribute(void *function, int attribute, int value) {
    (void)function;
    fake_record.func_attribute_calls += 1;
    fake_record.func_attribute = attribute;
    fake_record.func_attribute_value = value;
    return 0;
}
CUresult cuFuncGetAttribute(int *value, int attribute, void *function) { (void)attribute; (void)function; *value = 0; return 0; }
CUresult cuFuncSetCacheConfig(void *function, int config) { (void)function; (void)config; return 0; }
CUresult cuModuleLoadData(void **module, const void *image) { (void)image; *module = &context_token; return 0; }
CUresult cuModuleGetFunction(void **function, void *module, const char *name) { (void)module; (void)name; *function = &context_token; return 0; }
CUresult cuModuleUnload(void *module) { (void)module; return 0; }
CUresult cuStreamIsCapturing(void *stream, int *status) { (void)stream; *status = 0; return 0; }
CUresult cuGetErrorString(CUresult error, const char **text) { (void)error; *text = "recording stand-in"; return 0; }
