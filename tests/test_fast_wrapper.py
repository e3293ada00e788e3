"""`swiftlaunch.fast(k)` is one object per kernel, so `swiftlaunch.fast(k)[grid](...)` written inline
finds the kernels compiled by earlier calls; and the package's lazy attributes resolve once."""

import gc
import threading
import weakref

import torch
import triton

import swiftlaunch
from swiftlaunch.bench.kernels import add_kernel

# What `kernel.insert` needs to cache a launch for add_kernel(out, x, y, n, BLOCK) without a GPU.
# The function handle is never launched here: these tests only read keys and cache sizes.
ADD_INFO = (0, 4, 1, 0, False, False, 0, 1, ("*fp32", "*fp32", "*fp32", "i32", "constexpr"))


def test_fast_returns_one_wrapper_per_kernel(native):
    kernel = triton.jit(add_kernel.fn)
    first = swiftlaunch.fast(kernel)
    assert swiftlaunch.fast(kernel) is first
    # The cache it fills is the one the next inline `fast(kernel)` reads.
    x = torch.empty(64)
    token = first.key(0, x, x, x, 16, BLOCK=64)
    assert first.insert(token, object(), ADD_INFO)
    assert swiftlaunch.fast(kernel).cache_size() == 1
    # The shared kernel behind every plain-JITFunction call of dispatch_key, too.
    assert swiftlaunch.dispatch_key(kernel, x, x, x, 16, BLOCK=64) == token
    assert swiftlaunch.fast(kernel) is first


def test_fast_on_a_swiftlaunch_jit_kernel_is_its_own_wrapper(native):
    kernel = swiftlaunch.jit(add_kernel.fn)
    assert swiftlaunch.fast(kernel) is swiftlaunch.fast(kernel) is kernel._swiftlaunch_kernel()


def test_fast_wrapper_made_once_under_threads(native):
    kernel = triton.jit(add_kernel.fn)
    barrier = threading.Barrier(8)
    made = []

    def worker():
        barrier.wait()
        made.append(swiftlaunch.fast(kernel))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and all(wrapper is made[0] for wrapper in made)


def test_fast_wrapper_does_not_keep_its_kernel_alive(native):
    kernel = triton.jit(add_kernel.fn)
    wrapper = swiftlaunch.fast(kernel)
    refs = weakref.ref(kernel), weakref.ref(wrapper)
    del kernel, wrapper
    gc.collect()
    assert refs[0]() is None and refs[1]() is None


def test_lazy_attributes_resolve_once():
    import importlib

    names = ("jit", "fast", "FastJITFunction", "dispatch_key", "Launcher", "helion")
    for name in names:
        value = getattr(swiftlaunch, name)
        # Stored in the module: the next access is a plain global lookup, not __getattr__.
        assert vars(swiftlaunch)[name] is value
        assert getattr(swiftlaunch, name) is value
    assert swiftlaunch.helion is importlib.import_module("swiftlaunch.helion")
