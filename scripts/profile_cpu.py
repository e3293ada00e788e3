"""The per-call host path of a cache hit, on a machine with no GPU: for instruction counts
(callgrind) and rough timings of swiftlaunch's own code, not of the driver.

Runs against a stand-in libcuda (scripts/fake_libcuda.c) whose calls do nothing; CPU tensors stand
in for CUDA tensors of device 0 (the core is configured with `callable`, which answers False == 0
for a tensor, in place of `Tensor.get_device`). Never use this for correctness: it launches nothing.

    cc -O2 -shared -fPIC -o /tmp/fakecuda/libcuda.so.1 scripts/fake_libcuda.c
    LD_LIBRARY_PATH=/tmp/fakecuda python scripts/profile_cpu.py [calls] [tensors]
    LD_LIBRARY_PATH=/tmp/fakecuda valgrind --tool=callgrind python scripts/profile_cpu.py 20000
"""

import sys
import time

import torch
import triton
from triton import knobs
from triton.runtime import _allocation

from swiftlaunch import _bench_kernels as kernels
from swiftlaunch import _loader, _runtime, _triton

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
native = _loader.native
dtype, data_ptr, _, probe = _runtime.tensor_access()
native.configure((torch.Tensor, torch.nn.Parameter), _runtime.triton_dtype_names(),
                 abs, knobs.runtime, knobs.compilation, knobs.HookChain,
                 _allocation._allocator, _allocation.NullAllocator, (dtype, data_ptr, callable, probe), None,
                 tuple(int(v) for v in _runtime.triton_family(triton.__version__).split(".")))
_runtime._configured = True

fast = _triton.fast(kernels.add_kernel)
N = 4096
x, y, out = (torch.randn(N) for _ in range(3))
grid = (triton.cdiv(N, 1024),)
token = fast.key(0, out, x, y, N, BLOCK=1024)
signature = ("*fp32", "*fp32", "*fp32", "i32", "constexpr")
assert fast.insert(token, object(), (1234, 4, 1, 0, False, False, 0, 1, signature))


def run(calls):
    bound = fast[grid]
    for _ in range(calls):
        fast[grid](out, x, y, N, BLOCK=1024)
    return bound


run(1000)
stats = native.stats(True)
assert stats["hits"] == 1000, stats
start = time.perf_counter()
run(CALLS)
elapsed = time.perf_counter() - start
print(f"{elapsed / CALLS * 1e9:.0f} ns per fast[grid](out, x, y, N, BLOCK=1024) (fake driver)")
print(native.stats(False))
