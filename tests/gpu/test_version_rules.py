"""GPU tests for the per-release rules (`TritonRules`): run them under each Triton release (3.6 by default;
3.7-3.9 with SWIFTLAUNCH_ALLOW_UNTESTED=1, which is what moves a release from CPU-checked to GPU-verified).
Each compares swiftlaunch with Triton itself on the same calls, as the differential tests do.

- argument conversion of every annotated integer type at its release's edges (3.7+ truncates i8-i32
  and raises OverflowError for negative unsigned values; 3.6 range-checks and masks);
- keyword-only parameters (3.9 raises TypeError for one given positionally; earlier releases bind it);
- 3.9's fpsan_homomorphic_casts knob: set, Triton keys a new kernel and swiftlaunch steps aside;
- 3.7+'s FutureKernel under AsyncCompileMode;
- 3.8+'s module unloading: a natively cached kernel stays loaded while Triton forgets it;
- 3.8+'s oversized shared memory, where the device has more than 228 KiB per block.

Skipped as a whole without a GPU (tests/gpu/conftest.py) and, with a reason, where the core is not in use.
"""

import concurrent.futures
import gc

import pytest
import torch
import triton
import triton.language as tl

import swiftlaunch

from .helpers import Out, check_differential, counters, fast, run


@pytest.fixture(autouse=True)
def core_in_use():
    if not swiftlaunch.native_available():
        pytest.skip(f"the core is not in use: {swiftlaunch.native_error()}")


def family():
    from swiftlaunch import _runtime

    return _runtime.triton_family(triton.__version__)


@triton.jit
def store_i1_kernel(OUT, x: tl.int1):
    tl.store(OUT, x)


@triton.jit
def store_i16_kernel(OUT, x: tl.int16):
    tl.store(OUT, x)


@triton.jit
def store_u16_kernel(OUT, x: tl.uint16):
    tl.store(OUT, x)


@triton.jit
def store_u32_kernel(OUT, x: tl.uint32):
    tl.store(OUT, x)


@triton.jit
def store_u64_kernel(OUT, x: tl.uint64):
    tl.store(OUT, x)


@triton.jit
def store_i8_kernel(OUT, x: tl.int8):
    tl.store(OUT, x)


@triton.jit
def store_u8_kernel(OUT, x: tl.uint8):
    tl.store(OUT, x)


@triton.jit
def store_i32_kernel(OUT, x: tl.int32):
    tl.store(OUT, x)


EDGES = [0, 1, 2, 16, -1, -16, 127, 128, 255, 256, 300, -128, -129, 32767, 32768, 65535, 65536, -32769,
         2**31 - 1, 2**31, 2**32 - 1, 2**32 + 7, -2**31 - 1, 2**63 - 1, 2**63, 2**64 - 1, -2**63, True, False]
KERNELS = {
    "i1": (store_i1_kernel, torch.int8), "i8": (store_i8_kernel, torch.int8), "i16": (store_i16_kernel, torch.int16),
    "i32": (store_i32_kernel, torch.int32), "u8": (store_u8_kernel, torch.uint8),
    "u16": (store_u16_kernel, torch.int16), "u32": (store_u32_kernel, torch.int32),
    "u64": (store_u64_kernel, torch.int64),
}


@pytest.mark.parametrize("kind,value", [(kind, value) for kind in KERNELS for value in EDGES], ids=str)
def test_integer_conversion_matches_triton(kind, value):
    # Same outputs, or the same error (3.7+: OverflowError for a negative unsigned value or one outside a
    # C long; 3.6: for a signed value outside its type), and a fast-path hit wherever Triton launched.
    kernel, dtype = KERNELS[kind]
    check_differential(kernel, (1,), [Out(1, dtype, fill=9), value])


@triton.jit
def keyword_only_kernel(X, OUT, *, n, BLOCK: tl.constexpr = 128):
    offsets = tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(OUT + offsets, tl.load(X + offsets, mask=mask) * 2, mask=mask)


@pytest.mark.parametrize("form", ["keyword", "positional", "block_positional"])
def test_keyword_only_parameters(form):
    x = torch.randn(100, device="cuda")
    if form == "keyword":
        args, kwargs = [x, Out(100, torch.float32)], {"n": 100}
    elif form == "positional":
        args, kwargs = [x, Out(100, torch.float32), 100], {}
    else:
        args, kwargs = [x, Out(100, torch.float32), 100, 128], {}
    # 3.9: TypeError from Triton's binder for the positional forms, with the same message; 3.6-3.8 bind them.
    check_differential(keyword_only_kernel, (1,), args, kwargs)
    if family() == "3.9" and form != "keyword":
        _, error, _ = run(keyword_only_kernel, (1,), args, kwargs)
        assert isinstance(error, TypeError)


@triton.jit
def copy_kernel(X, OUT, n, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(OUT + offsets, tl.load(X + offsets, mask=mask), mask=mask)


def test_fpsan_knob_keys_a_new_kernel_and_steps_aside(monkeypatch):
    if family() != "3.9":
        pytest.skip("3.9 puts knobs.compilation.fpsan_homomorphic_casts into the cache key")
    x, out = torch.randn(64, device="cuda"), torch.empty(64, device="cuda")
    accelerated = fast(copy_kernel)
    plain = copy_kernel[(1,)](x, out, 64, BLOCK=64)
    assert accelerated[(1,)](x, out, 64, BLOCK=64) is plain
    hits = counters()[0]
    assert accelerated[(1,)](x, out, 64, BLOCK=64) is plain and counters()[0] == hits + 1
    monkeypatch.setenv("TRITON_FPSAN_HOMOMORPHIC_CASTS", "1")
    keyed = copy_kernel[(1,)](x, out, 64, BLOCK=64)
    assert keyed is not plain  # Triton compiled and keyed another kernel
    swiftlaunch.stats(reset=True)
    assert accelerated[(1,)](x, out, 64, BLOCK=64) is keyed
    assert swiftlaunch.stats()["fallbacks"].get("fpsan knob set") == 1
    monkeypatch.delenv("TRITON_FPSAN_HOMOMORPHIC_CASTS")
    assert accelerated[(1,)](x, out, 64, BLOCK=64) is plain and swiftlaunch.stats()["hits"] == 1
    torch.testing.assert_close(out, x)


def test_future_kernel_under_async_compilation():
    if family() == "3.6":
        pytest.skip("3.7+ returns the FutureKernel from run")
    from triton.runtime._async_compile import AsyncCompileMode, FutureKernel

    kernel = triton.jit(copy_kernel.fn)  # compiled afresh inside the mode
    accelerated = swiftlaunch.fast(kernel)
    x, out = torch.randn(32, device="cuda"), torch.empty(32, device="cuda")
    with concurrent.futures.ThreadPoolExecutor(2) as executor, AsyncCompileMode(executor):
        first = accelerated[(1,)](x, out, 32, BLOCK=32)
        assert isinstance(first, FutureKernel)  # what Triton's run returned
        torch.testing.assert_close(out, x)
        from_triton = kernel[(1,)](x, out, 32, BLOCK=32)  # Triton's cache now holds the CompiledKernel
        hits = counters()[0]
        assert accelerated[(1,)](x, out, 32, BLOCK=32) is from_triton
        assert counters()[0] == hits + 1


def test_cached_kernel_stays_loaded_while_triton_forgets_it():
    # 3.8+: CompiledKernel.__del__ unloads its module (and calls kernel_unload_hook). The core holds a
    # strong reference to every kernel it caches, so a cached function handle stays valid.
    from triton import knobs

    unloaded = []
    hook = getattr(knobs.runtime, "kernel_unload_hook", None)
    record = lambda module, function, name, group, hash: unloaded.append(function)  # noqa: E731
    if hook is not None:
        hook.add(record)
    try:
        kernel = triton.jit(copy_kernel.fn)
        accelerated = swiftlaunch.fast(kernel)
        x, out = torch.randn(16, device="cuda"), torch.empty(16, device="cuda")
        compiled = accelerated[(1,)](x, out, 16, BLOCK=16)
        function = compiled.function
        del compiled
        kernel.device_caches.clear()  # Triton forgets it
        gc.collect()
        out.zero_()
        hits = counters()[0]
        again = accelerated[(1,)](x, out, 16, BLOCK=16)
        torch.cuda.synchronize()
        assert counters()[0] == hits + 1 and again.function == function
        torch.testing.assert_close(out, x)
        assert function not in unloaded
    finally:
        if hook is not None:
            hook.remove(record)


@triton.jit
def big_shared_kernel(A, B, C, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    rm, rn, rk = tl.arange(0, BLOCK_M), tl.arange(0, BLOCK_N), tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in tl.range(0, 4, num_stages=4):
        a = tl.load(A + rm[:, None] * BLOCK_K + rk[None, :] + k)
        b = tl.load(B + rk[:, None] * BLOCK_N + rn[None, :] + k)
        acc += tl.dot(a, b)
    tl.store(C + rm[:, None] * BLOCK_N + rn[None, :], acc)


def test_oversized_shared_memory_launch():
    # 3.8+ adds CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE above 228 KiB: only devices that allow more than
    # 228 KiB per block can load such a kernel (not H100/H200: 227 KiB).
    device = torch.cuda.current_device()
    limit = triton.runtime.driver.active.utils.get_device_properties(device)["max_shared_mem"]
    if limit <= 228 * 1024:
        pytest.skip(f"this device allows {limit} bytes of shared memory per block (needs more than 228 KiB)")
    a = torch.randn(256 * 72, device="cuda", dtype=torch.float16)
    b = torch.randn(72 * 256, device="cuda", dtype=torch.float16)
    meta = {"BLOCK_M": 256, "BLOCK_N": 256, "BLOCK_K": 64}
    compiled = big_shared_kernel.warmup(a, b, torch.empty(256 * 256, device="cuda"), grid=(1,), **meta)
    if compiled.metadata.shared <= 228 * 1024:
        pytest.skip(f"the kernel uses {compiled.metadata.shared} bytes of shared memory, not more than 228 KiB")
    check_differential(big_shared_kernel, (1,), [a, b, Out(256 * 256, torch.float32)], meta)
