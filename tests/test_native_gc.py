"""The native `Kernel` and `Launcher` take part in cycle collection: kernels made at run time, with
their caches and launchers, are freed once nothing outside their own cycles refers to them; and an
object the collector has cleared raises on every use instead of crashing."""

import ctypes
import gc
import weakref

import pytest
import torch
import triton

import swiftlaunch
from swiftlaunch.bench.kernels import add_kernel

ROUNDS = 1000
# `kernel.insert` info for add_kernel(out, x, y, n, BLOCK); never launched (no GPU needed).
ADD_INFO = (0, 4, 1, 0, False, False, 0, 1, ("*fp32", "*fp32", "*fp32", "i32", "constexpr"))


class FakeCompiled:
    """Stands in for a CompiledKernel, and like a real one's holders refers back to its kernel:
    the cache entry closes a cycle that only the native traversal can show the collector."""

    def __init__(self, owner):
        self.owner = owner


def fill_cache(native_kernel, owner):
    x = torch.empty(64)
    for n in (16, 17):
        token = native_kernel.key(0, x, x, x, n, BLOCK=64)
        assert native_kernel.insert(token, FakeCompiled(owner), ADD_INFO)
    assert native_kernel.cache_size() == 2
    # An option name the kernel keeps, and a key through the glue (a cached wrapper, not a new one).
    assert swiftlaunch.dispatch_key(owner, x, x, x, 4, BLOCK=64, num_warps=4) is not None


def assert_all_freed(refs):
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    assert alive == 0, f"{alive} of {len(refs)} objects survived gc.collect()"


def tracked_objects():
    gc.collect()
    return len(gc.get_objects())


def test_runtime_jit_kernels_are_collected(native):
    refs = []
    for _ in range(ROUNDS):
        kernel = swiftlaunch.jit(add_kernel.fn)  # a new FastJITFunction each time
        native_kernel = kernel._swiftlaunch_kernel()
        fill_cache(native_kernel, kernel)
        refs += [weakref.ref(kernel), weakref.ref(native_kernel)]
    del kernel, native_kernel
    assert_all_freed(refs)


def test_fast_wrappers_of_runtime_kernels_are_collected(native):
    refs = []
    for _ in range(ROUNDS):
        kernel = triton.jit(add_kernel.fn)
        wrapper = swiftlaunch.fast(kernel)
        fill_cache(wrapper, kernel)
        refs += [weakref.ref(kernel), weakref.ref(wrapper)]
    del kernel, wrapper
    assert_all_freed(refs)


def fill_launcher(launcher, kernel):
    x = torch.empty(64)
    # Without a GPU the call steps aside to Helion's launcher, which raises; the launcher has made
    # and kept its native kernel for `kernel` by then.
    try:
        launcher(kernel, (1,), x, x, x, 64, BLOCK=64, num_warps=4, num_stages=1)
    except Exception:  # noqa: BLE001 - no GPU: Triton has no active driver
        pass
    # What a Helion host wrapper does: it keeps the launcher, the launcher keeps the kernel.
    kernel.launcher = launcher


def test_launchers_are_collected(native):
    refs = []
    for _ in range(ROUNDS):
        kernel = triton.jit(add_kernel.fn)
        launcher = swiftlaunch.Launcher()
        fill_launcher(launcher, kernel)
        # The launcher holds the kernel, so the kernel outlives it: a freed kernel means a freed
        # launcher (native launchers take no weak references).
        refs.append(weakref.ref(kernel))
    # The launcher's table really holds the kernel: the referents the collector sees say so.
    assert kernel in gc.get_referents(launcher)
    del kernel, launcher
    assert_all_freed(refs)


def test_memory_does_not_grow_over_rounds(native):
    def round_of(count):
        for _ in range(count):
            kernel = swiftlaunch.jit(add_kernel.fn)
            fill_cache(kernel._swiftlaunch_kernel(), kernel)
            plain = triton.jit(add_kernel.fn)
            fill_launcher(swiftlaunch.Launcher(), plain)

    round_of(50)
    before = tracked_objects()
    for _ in range(3):
        round_of(50)
    # Leaked kernels would leave thousands of objects each round (sources, ASTs, parameter tables).
    assert tracked_objects() - before < 500


def test_traverse_visits_what_the_kernel_holds(native):
    kernel = triton.jit(add_kernel.fn)
    wrapper = swiftlaunch.fast(kernel)
    fill_cache(wrapper, kernel)
    referents = gc.get_referents(wrapper)
    ids = {id(obj) for obj in referents}
    assert id(kernel) in ids
    assert id(kernel.__dict__) in ids
    assert id(type(wrapper)) in ids
    assert sum(isinstance(obj, FakeCompiled) for obj in referents) == 2
    for name in ("out_ptr", "x_ptr", "y_ptr", "n", "BLOCK", "num_warps"):
        assert any(obj == name for obj in referents if isinstance(obj, str)), name


# --- clear -----------------------------------------------------------------------------------

def clear(obj):
    """The type's tp_clear, as the cycle collector would call it."""
    get_slot = ctypes.pythonapi.PyType_GetSlot
    get_slot.restype = ctypes.c_void_p
    get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
    py_tp_clear = 51  # typeslots.h
    base = next(cls for cls in type(obj).__mro__ if cls.__module__ == "swiftlaunch._native")
    address = get_slot(base, py_tp_clear)
    assert address, f"{base.__name__} has no tp_clear"
    function = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(address)  # called with the GIL held
    assert function(obj) == 0


CLEARED = "cleared by the garbage collector"


def test_cleared_kernel_raises(native):
    kernel = swiftlaunch.jit(add_kernel.fn)
    native_kernel = kernel._swiftlaunch_kernel()
    fill_cache(native_kernel, kernel)
    bound = native_kernel[(1,)]
    clear(native_kernel)
    x = torch.empty(64)
    token = b"\0" * 8
    calls = [
        lambda: native_kernel.launch((1,), x, x, x, 4, BLOCK=64),
        lambda: native_kernel.key(0, x, x, x, 4, BLOCK=64),
        lambda: native_kernel.insert(token, object(), ADD_INFO),
        lambda: native_kernel.cache_size(),
        lambda: native_kernel[(1,)](x, x, x, 4, BLOCK=64),
        lambda: bound(x, x, x, 4, BLOCK=64),
        lambda: kernel[(1,)](x, x, x, 4, BLOCK=64),
        lambda: native.raw_launch_loop(native_kernel, token, (1,), (), 0, 0, 1),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match=CLEARED):
            call()
    # What is left is the Python subclass's own `__dict__` and the type; the native state is gone.
    assert not any(isinstance(obj, (FakeCompiled, str)) for obj in gc.get_referents(native_kernel))


def test_cleared_launcher_raises(native):
    kernel = triton.jit(add_kernel.fn)
    launcher = swiftlaunch.Launcher()
    fill_launcher(launcher, kernel)
    clear(launcher)
    x = torch.empty(64)
    for args in [(kernel, (1,), x, x, x, 64), (), (kernel,)]:
        with pytest.raises(RuntimeError, match=CLEARED):
            launcher(*args, BLOCK=64, num_warps=4, num_stages=1)
    assert gc.get_referents(launcher) == [type(launcher)]


def test_gc_flags(native):
    py_tpflags_have_gc = 1 << 14
    for cls in (native.Kernel, native.Launcher):
        assert cls.__flags__ & py_tpflags_have_gc
