"""Where a swiftlaunch call's time goes, on a GPU: one process, interleaved, medians, no allocation.

Rows: the full `fast(k)[grid](...)` call; `kernel[grid]` alone (the bound-launch object); the native
key alone (binding, argument reads, specialization, key; no guards, no driver); the guard reads done
from Python for comparison; Triton's `CompiledKernel.run`; and the raw Swift loop.
Run on the GPU machine: python3 scripts/profile_launch.py
"""

import statistics
import time

import torch
import triton

import swiftlaunch
from swiftlaunch.bench import kernels
from swiftlaunch import _loader

N, CALLS, REPS = 4096, 20000, 7


def timed(fn):
    for _ in range(500):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(CALLS):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / CALLS * 1e6


def main():
    kernel = kernels.add_kernel
    x, y, out = (torch.randn(N, device="cuda") for _ in range(3))
    grid = (triton.cdiv(N, 1024),)
    fast = swiftlaunch.fast(kernel)
    fast[grid](out, x, y, N, BLOCK=1024)
    jitted = swiftlaunch.jit(kernel.fn)
    jitted[grid](out, x, y, N, BLOCK=1024)
    compiled = kernel[grid](out, x, y, N, BLOCK=1024)
    device = torch.cuda.current_device()
    stream = torch.cuda.current_stream().cuda_stream
    token = fast.key(device, out, x, y, N, BLOCK=1024)
    native = _loader.native
    knobs = triton.knobs
    bound = fast[grid]

    def guards_from_python():
        return (kernel.pre_run_hooks, kernel.debug, knobs.runtime.debug, knobs.compilation.instrumentation_mode,
                knobs.runtime.launch_enter_hook.calls, knobs.runtime.launch_exit_hook.calls,
                knobs.runtime.add_stages_inspection_hook, kernel.used_global_vals)

    rows = {
        "fast[grid](...)": lambda: fast[grid](out, x, y, N, BLOCK=1024),
        "bound(...) (kernel[grid] made once)": lambda: bound(out, x, y, N, BLOCK=1024),
        "fast[grid] alone": lambda: fast[grid],
        "native key (no guards, no driver)": lambda: fast.key(device, out, x, y, N, BLOCK=1024),
        "guard reads from Python": guards_from_python,
        "3x (dtype, data_ptr()) from Python": lambda: (x.dtype, x.data_ptr(), y.dtype, y.data_ptr(),
                                                      out.dtype, out.data_ptr()),
        "x.dtype (from Python)": lambda: x.dtype,
        "x.data_ptr() (from Python)": x.data_ptr,
        "x.get_device() (from Python)": x.get_device,
        "_cuda_getCurrentRawStream(0)": lambda: torch._C._cuda_getCurrentRawStream(0),
        "torch._C._cuda_getDevice()": torch._C._cuda_getDevice,
        "jit[grid](...)": lambda: jitted[grid](out, x, y, N, BLOCK=1024),
        "CompiledKernel.run (hooks None)": lambda: compiled.run(grid[0], 1, 1, stream, compiled.function,
                                                                compiled.packed_metadata, None, None, None,
                                                                out, x, y, N, 1024),
        "empty lambda": lambda: None,
    }
    samples = {name: [] for name in rows}
    raw = []
    for _ in range(REPS):
        for name, fn in rows.items():
            samples[name].append(timed(fn))
        torch.cuda.synchronize()
        raw.append(native.raw_launch_loop(fast, token, grid, (out, x, y, N, 1024), stream, device, CALLS)
                   / CALLS * 1e6)
        torch.cuda.synchronize()
    print(f"{torch.cuda.get_device_name()}  (us per call, median of {REPS})")
    for name, values in samples.items():
        print(f"  {name:40s} {statistics.median(values):7.3f}")
    print(f"  {'raw_launch_loop (Swift, packed once)':40s} {statistics.median(raw):7.3f}")
    print(swiftlaunch.stats())


if __name__ == "__main__":
    main()
