// What the driver calls on the launch path cost on this machine, in a C loop (no Python):
// cuPointerGetAttribute (Triton's per-pointer check), cuPointerGetAttributes with two attributes
// (swiftlaunch's), cuCtxGetCurrent, and cuLaunchKernelEx of an empty kernel.
// Build and run on the GPU machine: nvcc -O2 -o /tmp/driver_cost scripts/driver_cost.c -lcuda && /tmp/driver_cost
#include <cuda.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define TIME(label, n, body)                                                   \
    do {                                                                       \
        double start = now();                                                  \
        for (int i = 0; i < (n); i++) { body; }                                \
        printf("%-40s %8.1f ns\n", label, (now() - start) / (n) * 1e9);        \
    } while (0)

int main(void) {
    CUdevice device;
    CUcontext context;
    CUdeviceptr pointer;
    cuInit(0);
    cuDeviceGet(&device, 0);
    cuDevicePrimaryCtxRetain(&context, device);
    cuCtxSetCurrent(context);
    cuMemAlloc(&pointer, 1 << 20);
    const int n = 1000000;
    CUdeviceptr result;
    int ordinal;
    CUpointer_attribute attributes[2] = {CU_POINTER_ATTRIBUTE_DEVICE_POINTER, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
    void *data[2] = {&result, &ordinal};
    CUcontext current;
    TIME("cuPointerGetAttribute(DEVICE_POINTER)", n,
         cuPointerGetAttribute(&result, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, pointer + 64));
    TIME("cuPointerGetAttributes(2)", n, cuPointerGetAttributes(2, attributes, data, pointer + 64));
    TIME("cuPointerGetAttribute(DEVICE_ORDINAL)", n,
         cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, pointer + 64));
    TIME("cuCtxGetCurrent", n, cuCtxGetCurrent(&current));
    return 0;
}
