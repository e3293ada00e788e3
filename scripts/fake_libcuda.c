/* A stand-in libcuda.so.1 that launches nothing and records what it was asked to launch.
 *
 * Two uses, neither of which needs a GPU:
 *   - tests (tests/test_hit_path_fake_driver.py): the core's cache-hit path, guards and fallback
 *     reasons, checked against the launches recorded here (read back through ctypes);
 *   - profiling (scripts/profile_cpu.py): instruction counts of swiftlaunch's own host path.
 *
 * Build: cc -O2 -shared -fPIC -o /tmp/fakecuda/libcuda.so.1 scripts/fake_libcuda.c
 * Use:   LD_LIBRARY_PATH=/tmp/fakecuda python ...
 * With LD_LIBRARY_PATH set, the core's dlopen("libcuda.so.1") and ctypes.CDLL("libcuda.so.1") get
 * this one library (one copy of the state below), and so does torch's CUDA runtime, which then
 * finds no usable driver: torch.cuda.is_available() is False.
 *
 * The device of the "current context" is FAKE_CUDA_DEVICE (default 0) until a test sets it. CPU
 * tensors stand in for device memory in the tests; torch says device -1 for them, hence
 * FAKE_CUDA_DEVICE=-1 there.
 *
 * Launches are recorded without a lock: the core launches with the GIL held. The counter is atomic
 * so that a caller without the GIL at worst overwrites a ring entry, never loses a count.
 *
 * The crash tests (tests/test_native_hardening.py, tests/test_native_fuzz.py) use it only to get
 * calls past the driver check, as on a GPU machine. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;

/* Values and layouts from cuda.h (CUDA 12/13), written out here rather than taken from the core's
 * own header (Sources/CUDADriver/include/CUDADriver.h), so that a wrong layout there shows up as
 * wrong recorded values instead of being agreed with. */
enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CU_POINTER_ATTRIBUTE_CONTEXT = 1,
    CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2,
    CU_POINTER_ATTRIBUTE_DEVICE_POINTER = 3,
    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9,
    CU_LAUNCH_ATTRIBUTE_COOPERATIVE = 2,
    CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
    CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE = 5,
    CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
};

typedef union {
    char pad[64];
    int cooperative;
    struct { unsigned int x, y, z; } clusterDim;
    int clusterSchedulingPolicyPreference;
    int programmaticStreamSerializationAllowed;
} CUlaunchAttributeValue;

typedef struct {
    int id;
    char pad[8 - sizeof(int)];
    CUlaunchAttributeValue value;
} CUlaunchAttribute;

typedef struct {
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    void *hStream;
    CUlaunchAttribute *attrs;
    unsigned int numAttrs;
} CUlaunchConfig;

_Static_assert(sizeof(CUlaunchAttribute) == 72, "cuda.h: CUlaunchAttribute is 72 bytes");
_Static_assert(offsetof(CUlaunchAttribute, value) == 8, "cuda.h: the value follows an 8-byte id");
_Static_assert(offsetof(CUlaunchConfig, hStream) == 32, "cuda.h: hStream at 32");
_Static_assert(offsetof(CUlaunchConfig, numAttrs) == 48, "cuda.h: numAttrs at 48");

/* ---- what a launch looked like ------------------------------------------------------------------ */

#define FAKE_CUDA_MAX_PARAMS 64
#define FAKE_CUDA_RING 4096

/* Mirrored by ctypes in tests/fake_driver/harness.py; fake_cuda_record_size() lets it check. */
typedef struct {
    uint64_t function;
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t shared_memory;
    uint32_t num_attributes;
    uint64_t stream;
    int32_t cooperative;         /* the attribute's value; 0 when absent */
    int32_t pdl;                 /* programmaticStreamSerializationAllowed; 0 when absent */
    uint32_t cluster[3];         /* zeros when absent */
    int32_t cluster_policy;      /* -1 when absent */
    int32_t unknown_attributes;  /* attributes with an id this fake does not know */
    int32_t has_extra;           /* the `extra` argument was not NULL */
    int32_t result;              /* what cuLaunchKernelEx returned */
    int32_t param_count;         /* words recorded below */
    uint64_t params[FAKE_CUDA_MAX_PARAMS];
} fake_cuda_launch_t;

static fake_cuda_launch_t ring[FAKE_CUDA_RING];
static uint64_t launch_count;
static int param_count;

/* ---- switches ------------------------------------------------------------------------------------- */

static int context_device;
static int context_present = 1;
static CUresult context_result;  /* cuCtxGetDevice fails with this when nonzero */
static CUresult launch_result;
static CUresult pointer_result;  /* cuPointerGetAttributes fails with this when nonzero */

typedef struct {
    uint64_t start, size, device_pointer;
    int device;
} allocation_t;

#define FAKE_CUDA_MAX_ALLOCATIONS 64
static allocation_t allocations[FAKE_CUDA_MAX_ALLOCATIONS];
static int allocation_count;

static uint64_t func_attribute_count;
static uint64_t last_func_attribute[3];  /* function, attribute, value */

static int env_device(void) {
    const char *text = getenv("FAKE_CUDA_DEVICE");
    return text && *text ? atoi(text) : 0;
}

/* Everything back to its state at load, param count included. */
void fake_cuda_reset(void) {
    memset(ring, 0, sizeof ring);
    __atomic_store_n(&launch_count, 0, __ATOMIC_SEQ_CST);
    param_count = 0;
    context_device = env_device();
    context_present = 1;
    context_result = CUDA_SUCCESS;
    launch_result = CUDA_SUCCESS;
    pointer_result = CUDA_SUCCESS;
    allocation_count = 0;
    func_attribute_count = 0;
    memset(last_func_attribute, 0, sizeof last_func_attribute);
}

__attribute__((constructor)) static void fake_cuda_load(void) { context_device = env_device(); }

int fake_cuda_record_size(void) { return (int)sizeof(fake_cuda_launch_t); }
int fake_cuda_ring_size(void) { return FAKE_CUDA_RING; }
int fake_cuda_max_params(void) { return FAKE_CUDA_MAX_PARAMS; }

/* How many leading 8-byte parameter words each launch records (the params array carries no length:
 * the caller knows its kernel). Clamped to [0, FAKE_CUDA_MAX_PARAMS]; returns the value kept. */
int fake_cuda_set_param_count(int count) {
    param_count = count < 0 ? 0 : count > FAKE_CUDA_MAX_PARAMS ? FAKE_CUDA_MAX_PARAMS : count;
    return param_count;
}

/* Every cuLaunchKernelEx call so far, failed ones included. */
uint64_t fake_cuda_launch_count(void) { return __atomic_load_n(&launch_count, __ATOMIC_SEQ_CST); }

/* Copies launch `index` (0 = the first since the last reset) into `out`: 0, or -1 when there was no
 * such launch or the ring has overwritten it since. */
int fake_cuda_launch(uint64_t index, fake_cuda_launch_t *out) {
    uint64_t count = fake_cuda_launch_count();
    if (index >= count || count - index > FAKE_CUDA_RING) return -1;
    *out = ring[index % FAKE_CUDA_RING];
    return 0;
}

void fake_cuda_set_device(int device) { context_device = device; }
/* 0: no current context (cuCtxGetDevice answers CUDA_ERROR_INVALID_CONTEXT), else one is current. */
void fake_cuda_set_context(int present) { context_present = present; }
/* Nonzero: cuCtxGetDevice fails with this code (0 puts it back). */
void fake_cuda_set_context_result(int result) { context_result = result; }
/* Nonzero: every cuLaunchKernelEx fails with this code, after being recorded (0 puts it back). */
void fake_cuda_set_launch_result(int result) { launch_result = result; }

/* Nonzero: every cuPointerGetAttributes fails with this code (0 puts it back). */
void fake_cuda_set_pointer_result(int result) { pointer_result = result; }

/* Registers [start, start + size) as memory of `device`, which kernels see at `device_pointer`
 * onward (cuPointerGetAttributes' DEVICE_POINTER). Returns 0, or -1 when the table is full. */
int fake_cuda_add_allocation(uint64_t start, uint64_t size, int device, uint64_t device_pointer) {
    if (allocation_count == FAKE_CUDA_MAX_ALLOCATIONS) return -1;
    allocations[allocation_count++] = (allocation_t){start, size, device_pointer, device};
    return 0;
}
void fake_cuda_clear_allocations(void) { allocation_count = 0; }

/* cuFuncSetAttribute calls so far; the last one's function, attribute and value into `last`. */
uint64_t fake_cuda_func_attributes(uint64_t last[3]) {
    memcpy(last, last_func_attribute, sizeof last_func_attribute);
    return func_attribute_count;
}

/* ---- the driver API the core loads ---------------------------------------------------------------- */

static int context_token;

CUresult cuInit(unsigned int flags) { (void)flags; return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *version) { *version = 13000; return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int *count) { *count = 1; return CUDA_SUCCESS; }
CUresult cuDeviceGet(int *device, int ordinal) { *device = ordinal; return CUDA_SUCCESS; }
CUresult cuDeviceGetName(char *name, int length, int device) {
    (void)device;
    strncpy(name, "fake", (size_t)length);
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
    (void)attribute; (void)device;
    *value = 9;
    return CUDA_SUCCESS;
}
CUresult cuDeviceTotalMem_v2(size_t *bytes, int device) { (void)device; *bytes = 1; return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(void **context) {
    *context = context_present ? &context_token : NULL;
    return CUDA_SUCCESS;
}

/* No stream ever captures here (the core resolves the symbol with the rest). */
CUresult cuStreamIsCapturing(void *stream, int *status) {
    (void)stream;
    *status = 0;
    return CUDA_SUCCESS;
}
CUresult cuCtxGetDevice(int *device) {
    if (context_result != CUDA_SUCCESS) return context_result;
    if (!context_present) return CUDA_ERROR_INVALID_CONTEXT;
    *device = context_device;
    return CUDA_SUCCESS;
}

/* As the real driver: addresses it does not know are no error; their attributes get the driver's
 * "no such pointer" values (a null device pointer, ordinal -2). */
CUresult cuPointerGetAttributes(unsigned count, int *attributes, void **data, uint64_t pointer) {
    if (pointer_result != CUDA_SUCCESS) return pointer_result;
    const allocation_t *found = NULL;
    for (int i = 0; i < allocation_count; i++) {
        if (pointer >= allocations[i].start && pointer - allocations[i].start < allocations[i].size) {
            found = &allocations[i];
            break;
        }
    }
    for (unsigned i = 0; i < count; i++) {
        switch (attributes[i]) {
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
            *(uint64_t *)data[i] = found ? found->device_pointer + (pointer - found->start) : 0;
            break;
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
            *(int *)data[i] = found ? found->device : -2;
            break;
        case CU_POINTER_ATTRIBUTE_CONTEXT:
            *(void **)data[i] = found ? &context_token : NULL;
            break;
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
            *(unsigned *)data[i] = found ? 2u /* CU_MEMORYTYPE_DEVICE */ : 0u;
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(void *function, int attribute, int value) {
    last_func_attribute[0] = (uint64_t)(uintptr_t)function;
    last_func_attribute[1] = (uint64_t)(int64_t)attribute;
    last_func_attribute[2] = (uint64_t)(int64_t)value;
    func_attribute_count++;
    return CUDA_SUCCESS;
}

/* Built with -DFAKE_CUDA_WITHOUT_LAUNCH, the library lacks cuLaunchKernelEx: a driver the core cannot
 * use, for the test of that case. */
#ifndef FAKE_CUDA_WITHOUT_LAUNCH
CUresult cuLaunchKernelEx(const CUlaunchConfig *config, void *function, void **params, void **extra) {
    uint64_t index = __atomic_fetch_add(&launch_count, 1, __ATOMIC_SEQ_CST);
    fake_cuda_launch_t *record = &ring[index % FAKE_CUDA_RING];
    record->function = (uint64_t)(uintptr_t)function;
    record->grid[0] = config->gridDimX;
    record->grid[1] = config->gridDimY;
    record->grid[2] = config->gridDimZ;
    record->block[0] = config->blockDimX;
    record->block[1] = config->blockDimY;
    record->block[2] = config->blockDimZ;
    record->shared_memory = config->sharedMemBytes;
    record->num_attributes = config->numAttrs;
    record->stream = (uint64_t)(uintptr_t)config->hStream;
    record->cooperative = 0;
    record->pdl = 0;
    record->cluster[0] = record->cluster[1] = record->cluster[2] = 0;
    record->cluster_policy = -1;
    record->unknown_attributes = 0;
    for (unsigned i = 0; i < config->numAttrs; i++) {
        const CUlaunchAttribute *attribute = &config->attrs[i];
        switch (attribute->id) {
        case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
            record->cooperative = attribute->value.cooperative;
            break;
        case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
            record->pdl = attribute->value.programmaticStreamSerializationAllowed;
            break;
        case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
            record->cluster[0] = attribute->value.clusterDim.x;
            record->cluster[1] = attribute->value.clusterDim.y;
            record->cluster[2] = attribute->value.clusterDim.z;
            break;
        case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
            record->cluster_policy = attribute->value.clusterSchedulingPolicyPreference;
            break;
        default:
            record->unknown_attributes++;
        }
    }
    record->has_extra = extra != NULL;
    record->result = launch_result;
    /* Each parameter points at the kernel argument's bytes; the core gives every one an 8-byte slot. */
    record->param_count = params ? param_count : 0;
    for (int i = 0; i < record->param_count; i++) {
        memcpy(&record->params[i], params[i], sizeof(uint64_t));
    }
    return launch_result;
}
#endif

CUresult cuGetErrorString(CUresult error, const char **text) {
    switch (error) {
    case CUDA_SUCCESS: *text = "no error"; break;
    case CUDA_ERROR_INVALID_VALUE: *text = "invalid argument"; break;
    case CUDA_ERROR_INVALID_CONTEXT: *text = "invalid device context"; break;
    case 2: *text = "out of memory"; break;
    case 719: *text = "unspecified launch failure"; break;
    default: *text = "fake error"; break;
    }
    return CUDA_SUCCESS;
}
