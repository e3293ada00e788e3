#define _GNU_SOURCE
#include <dlfcn.h>
#include "CUDADriver.h"

const char *swiftlaunch_library_path(const void *symbol) {
    Dl_info info;
    if (dladdr(symbol, &info) == 0) return NULL;
    return info.dli_fname;
}

void *swiftlaunch_dlopen_cuda(void) { return dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL); }
void *swiftlaunch_dlsym(void *handle, const char *name) { return dlsym(handle, name); }
const char *swiftlaunch_dlerror(void) { return dlerror(); }
