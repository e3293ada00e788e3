"""Randomized calls into every entry point of `swiftlaunch._native`, drawn from a pool of nasty values.

Run by tests/test_native_fuzz.py in a subprocess, so that a crash shows as a signal exit instead of
killing pytest. Every call must return or raise an ordinary Python exception; a `SystemError` (a
native function that returned NULL without an exception, or a result with one set) counts as a
failure too. Prints one JSON line: {"calls": n, "failures": [...], "seconds": s, "targets": {...}}.

Environment:
  SWIFTLAUNCH_FUZZ_SEED   added to the fixed seed (default 0): the same seed repeats the same calls
  SWIFTLAUNCH_FUZZ_CALLS  how many calls (default 100000)
  SWIFTLAUNCH_FUZZ_MODE   "plain" (default): the glue's own configuration, `configure` only with
                          arguments that must be refused; "configure": configure itself fuzzed too
                          (every 500 calls), which changes what every later call sees
  SWIFTLAUNCH_FUZZ_DEBUG  set: print each call to stderr before making it (the last line before a
                          crash is the call that crashed)

Never launches a real kernel: made-up cache entries are inserted only when there is no CUDA device
or the driver is the stand-in libcuda (scripts/fake_libcuda.c), whose launches do nothing.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import random
import sys
import time
import warnings

FIXED_SEED = 0x5EED_2026
SEED = int(os.environ.get("SWIFTLAUNCH_FUZZ_SEED", "0"))
CALLS = int(os.environ.get("SWIFTLAUNCH_FUZZ_CALLS", "100000"))
MODE = os.environ.get("SWIFTLAUNCH_FUZZ_MODE", "plain")
DEBUG = bool(os.environ.get("SWIFTLAUNCH_FUZZ_DEBUG"))

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.simplefilter("ignore")

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

import swiftlaunch  # noqa: E402
from swiftlaunch import _native as n  # noqa: E402
from swiftlaunch import _runtime, _triton  # noqa: E402
from cpu_kernels import flags_kernel, mixed_kernel  # noqa: E402
from swiftlaunch.bench.kernels import add_kernel  # noqa: E402

rng = random.Random(FIXED_SEED ^ SEED)


# --- values ------------------------------------------------------------------------------------

class Raises:
    """Every protocol it could be asked for raises."""

    def __eq__(self, other):
        raise ZeroDivisionError("__eq__")

    def __hash__(self):
        raise ZeroDivisionError("__hash__")

    def __bool__(self):
        raise ZeroDivisionError("__bool__")

    def __index__(self):
        raise ZeroDivisionError("__index__")

    def __len__(self):
        raise ZeroDivisionError("__len__")

    def __iter__(self):
        raise ZeroDivisionError("__iter__")

    def __call__(self, *args, **kwargs):
        raise ZeroDivisionError("__call__")

    def __get__(self, obj, cls=None):
        raise ZeroDivisionError("__get__")

    def __repr__(self):
        return "Raises()"


class IndexInt:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return f"IndexInt({self.value})"


class BigInt(int):
    pass


class Text(str):
    pass


class Spoof:
    """Claims to be a native Kernel through `__class__`."""

    __class__ = property(lambda self: n.Kernel)

    def __repr__(self):
        return "Spoof()"


class Compiled:
    """What the fuzzer caches in place of a CompiledKernel; a launch that returns one was a hit."""


def raising_callable(*args, **kwargs):
    raise ValueError("raising callable")


def none_callable(*args, **kwargs):
    return None


def grid_callable(meta):
    return (rng.choice([1, 0, -1, 2**31, 2**40]),)


def garbage_grid(meta):
    return rng.choice(["x", None, [1.5], (Raises(),), [2**70], {}])


x = torch.empty(64)
TENSORS = [
    x, x[1:], x[::2], torch.empty(0), torch.tensor(1.0), torch.empty(64, dtype=torch.int32),
    torch.empty(8, dtype=torch.bool), torch.empty(8, dtype=torch.float16), torch.empty(4, dtype=torch.complex64),
    torch.empty(3, 4).t(), torch.nn.Parameter(torch.empty(16)), torch.empty(8, dtype=torch.uint8)[3:],
]
INTS = [0, 1, -1, 2, 4, 16, 17, 64, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
        -2**63, -2**63 - 1, -2**70, 2**200, BigInt(16), IndexInt(3), IndexInt(2**70), True, False]
FLOATS = [0.0, -0.0, 1.5, 1.0, float("nan"), float("inf"), -float("inf"), 1e300, 65536.0]
STRINGS = ["", "x", "num_warps", "num_stages", "BLOCK", "debug", "fp32", "*fp32", "i32", "constexpr",
           "\udc80", "a" * 300, Text("x"), "launch_cooperative_grid", "_remote", "ptx_options"]
BYTES = [b"", b"\0" * 7, b"\0" * 8, b"\xff" * 16, bytes(range(24)), bytearray(b"\0" * 8)]
OTHERS = [None, (), [], {}, set(), object(), Raises(), raising_callable, none_callable, grid_callable,
          garbage_grid, Spoof(), int, n.Kernel, n, tl.constexpr(4), slice(1, 2), Ellipsis, 1j]

SCALARS = INTS + FLOATS + STRINGS + BYTES + OTHERS


def build(depth=0):
    """A random value: a scalar, a tensor, or a tuple/list/dict of random values."""
    roll = rng.random()
    if roll < 0.5 or depth > 2:
        return rng.choice(SCALARS)
    if roll < 0.7:
        return rng.choice(TENSORS)
    size = rng.choice([0, 1, 2, 3, 4, 5, 9, 40])
    items = [build(depth + 1) for _ in range(size)]
    kind = rng.random()
    if kind < 0.6:
        return tuple(items)
    if kind < 0.9:
        return items
    return {str(i): v for i, v in enumerate(items)}


# Made once: building nested values per call would cost more than the calls themselves.
POOL = [build() for _ in range(5000)]


def nested():
    """A random value from the pool, or one of the live native objects (kernels, launchers, ...)."""
    roll = rng.random()
    if roll < 0.07:
        return rng.choice(LIVE)
    if roll < 0.2:
        return rng.choice(TENSORS)
    return POOL[int(rng.random() * len(POOL))]


def good_value():
    """A value the fast path reads (so calls get far): a tensor, an int, a float, None."""
    return rng.choice(TENSORS[:4] * 3 + [4, 16, 17, 1, 2**31, 2**63, 1.5, None, True])


def grid_value():
    if rng.random() < 0.5:
        return rng.choice([(1,), (2, 1), (1, 1, 1), [3], (0,), grid_callable])
    return rng.choice([(1,), (2, 1), (1, 1, 1), (0,), (-1,), (2**31,), (2**40, 2**40, 2**40), (1, 2, 3, 4), (),
                       [4], ["x"], (1.5,), 7, None, grid_callable, garbage_grid, raising_callable,
                       (Raises(),), (IndexInt(2),), (2**70,)])


def keyword_names(params):
    names = list(params) + ["num_warps", "num_stages", "debug", "launch_cooperative_grid", "x", "\udc80",
                            "a" * 100, "_remote_copy", "ptx_options"]
    return rng.sample(names, k=min(len(names), rng.choice([0, 0, 1, 2, 3])))


# --- live objects --------------------------------------------------------------------------------

_runtime.ensure_configured()


def driver_devices():
    try:
        return n.driver_info()
    except Exception:  # noqa: BLE001 - no driver
        return None


DRIVER = driver_devices()
FAKE_DRIVER = bool(DRIVER and all(name == "fake" for name, *_ in DRIVER["devices"]))
# Cache entries with made-up function handles: only where nothing can ever launch them.
MAY_INSERT = DRIVER is None or not DRIVER["devices"] or FAKE_DRIVER

if FAKE_DRIVER:
    # The stand-in driver reports a current context on device 0; with a stream query (`abs` returns the
    # device: a METH_O builtin, called through its C function) hits get as far as the launch, which
    # does nothing. Everything else is the glue's own configuration.
    from triton import knobs
    from triton.runtime import _allocation

    n.configure((torch.Tensor, torch.nn.Parameter), _runtime.triton_dtype_names(), abs, knobs.runtime,
                knobs.compilation, knobs.HookChain, _allocation._allocator, _allocation.NullAllocator,
                _runtime.tensor_access(), None, (3, 6))
    triton.set_allocator(lambda size, align, stream: torch.empty(max(int(size), 0), dtype=torch.int8))

TABLES = {fn: _triton.parameter_tables(fn) for fn in (add_kernel, mixed_kernel, flags_kernel)}
INFO = {
    add_kernel: ("*fp32", "*fp32", "*fp32", "i32", "constexpr"),
    mixed_kernel: ("*fp32", "i32", "i64", "fp32", "u1", "*i32", "u64", "constexpr"),
    flags_kernel: ("*fp32", "*fp32", "*fp32", "i32", "*fp32", "i32", "fp16", "constexpr"),
}


def miss_handler(kernel, token, spec, grid, args, kwargs):
    roll = rng.random()
    if roll < 0.3:
        raise RuntimeError("miss")
    if roll < 0.5 and token is not None and MAY_INSERT:
        try:
            kernel.insert(token, Compiled(), random_info(kernel))
        except Exception:  # noqa: BLE001
            pass
    return rng.choice([None, 0, kernel])


def random_info(kernel):
    source = SOURCES.get(id(kernel))
    signature = INFO.get(source) or tuple(rng.choice(["*fp32", "i32", "constexpr"]) for _ in range(8))
    if rng.random() < 0.1:
        signature = nested()
    return (rng.choice([0, 1, 2**40, -1, 2**64]), rng.choice([4, 1, 0, -1, 2**33]), rng.choice([1, 2, 0]),
            rng.choice([0, 1024, 2**33]), rng.choice([False, True, Raises()]), rng.choice([False, True]),
            rng.choice([0, 0, 256, -1, 2**62]), rng.choice([1, 16, 0]), signature)


def make_kernel(source=None):
    source = source or rng.choice(list(TABLES))
    names, traits, defaults = TABLES[source]
    implicit = rng.choice([(), (("launch_cooperative_grid", False),), (("num_warps", 4), ("BLOCK", 8))])
    function = triton.jit(source.fn)
    kernel = n.Kernel(function, rng.choice([miss_handler] * 6 + [raising_callable, None, 5]),
                      names, traits, defaults, implicit)
    if rng.random() < 0.5:
        function.__dict__["_fuzz_kernel"] = kernel  # a cycle only the collector can free
    return kernel


def fill(kernel, source):
    """Caches made-up entries under keys real calls produce, so that later calls hit them."""
    if not MAY_INSERT:
        return
    names = TABLES[source][0]
    for _ in range(3):
        # Ints and None pass a pointer parameter's check, so the stand-in driver's hits reach the launch.
        args = [good_value() if rng.random() < 0.5 else rng.choice([16, 0, None, 2**40]) for _ in names]
        args[-1] = rng.choice([64, 8, 1])
        try:
            token = kernel.key(0, *args)
        except Exception:  # noqa: BLE001
            continue
        if token is not None:
            kernel.insert(token, Compiled(), (0, 4, 1, 0, False, False, rng.choice([0, 0, 128]), 16, INFO[source]))
            TOKENS.append(token)
            FILLED.setdefault(id(kernel), []).append(args)


def make_launcher():
    def factory(fn):
        roll = rng.random()
        if roll < 0.6 and fn in TABLES:
            return make_kernel(fn)
        if roll < 0.75:
            return None
        if roll < 0.85:
            raise ValueError("factory")
        return rng.choice([5, Spoof(), "x", n.Kernel])

    return n.Launcher(rng.choice([factory] * 8 + [raising_callable, 5]),
                      rng.choice([none_callable] * 6 + [raising_callable, None]))


def clear(obj):
    """The type's tp_clear, as the cycle collector would call it (leaves the object alive)."""
    base = next(cls for cls in type(obj).__mro__ if cls.__module__ == "swiftlaunch._native")
    get_slot = ctypes.pythonapi.PyType_GetSlot
    get_slot.restype = ctypes.c_void_p
    get_slot.argtypes = [ctypes.py_object, ctypes.c_int]
    address = get_slot(base, 51)  # Py_tp_clear
    if address:  # a build without collector support has none; the fuzzer still runs against it
        ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(address)(obj)


TOKENS: list = []
KERNELS: list = []
FUNCTIONS = [triton.jit(source.fn) for source in (add_kernel, mixed_kernel, flags_kernel)]
SOURCES: dict = {}  # id(kernel) -> the Triton kernel it was made for (KERNELS keeps them alive)
FILLED: dict = {}  # id(kernel) -> argument lists whose keys it caches: calls that repeat them hit
LAUNCHERS: list = []
LIVE: list = []


def refresh():
    """New kernels and launchers (launcher tables grow with every new first argument: keep them small)."""
    KERNELS.clear()
    SOURCES.clear()
    FILLED.clear()
    for source in TABLES:
        for kernel in (make_kernel(source), make_kernel(source), swiftlaunch.fast(triton.jit(source.fn))):
            SOURCES[id(kernel)] = source
            fill(kernel, source)
            KERNELS.append(kernel)
    cleared = make_kernel()
    clear(cleared)
    KERNELS.append(cleared)
    LAUNCHERS[:] = [make_launcher() for _ in range(3)]
    cleared_launcher = make_launcher()
    clear(cleared_launcher)
    LAUNCHERS.append(cleared_launcher)
    del TOKENS[:-64]
    LIVE[:] = (KERNELS + LAUNCHERS + [k[(1,)] for k in KERNELS[:3]] + TOKENS[-8:]
               + [JIT, add_kernel, FastJITFunction_getitem, n.jit_getitem(type(JIT))])


JIT = swiftlaunch.jit(add_kernel.fn)
FastJITFunction_getitem = type(JIT).__getitem__
refresh()


# --- targets -------------------------------------------------------------------------------------

def some_args(low=0, high=8):
    return [nested() for _ in range(rng.randint(low, high))]


def some_kwargs(params=()):
    return {name: nested() if rng.random() < 0.5 else good_value() for name in keyword_names(params)}


def call_args(kernel):
    """Arguments shaped like a real call to `kernel` most of the time, garbage otherwise."""
    source = SOURCES.get(id(kernel))
    names = TABLES[source][0] if source in TABLES else ()
    if FILLED.get(id(kernel)) and rng.random() < 0.3:
        return list(rng.choice(FILLED[id(kernel)])), {}
    if names and rng.random() < 0.8:
        args = [good_value() if rng.random() < 0.85 else nested() for _ in names]
        if rng.random() < 0.3:
            args = args[: rng.randint(0, len(args))]
        if args and rng.random() < 0.7:
            args[-1] = rng.choice([64, 8, 1, 1.0, "x", None])
        kwargs = some_kwargs(names[len(args):]) if rng.random() < 0.5 else {}
        return args, kwargs
    return some_args(), some_kwargs(names)


def target_specialize():
    if rng.random() < 0.8:
        return n.specialize, [nested(), nested(), nested(), nested()], {}
    return n.specialize, some_args(), some_kwargs()


def target_stats():
    return n.stats, some_args(0, 2) if rng.random() < 0.3 else [rng.choice([False, 0, None, Raises(), ()])], {}


def target_count_fallback():
    return n.count_fallback, some_args(0, 2) if rng.random() < 0.3 else [rng.choice(STRINGS + [5, None])], {}


def target_driver_info():
    return n.driver_info, some_args(0, 2) if rng.random() < 0.5 else [], {}


def target_raw_launch_loop():
    if rng.random() < 0.3:
        return n.raw_launch_loop, some_args(0, 9), some_kwargs()
    kernel = rng.choice(KERNELS + [Spoof(), 5])
    token = rng.choice(TOKENS + BYTES + [None, "x"]) if TOKENS else rng.choice(BYTES)
    args, _ = call_args(kernel) if not isinstance(kernel, (Spoof, int)) else (some_args(), {})
    iterations = rng.choice([0, 1, 2, -1, 2**63, 2**70, 1.5, None, IndexInt(1), Raises()])
    return n.raw_launch_loop, [kernel, token, grid_value(), tuple(args) if rng.random() < 0.9 else args,
                               rng.choice([0, 1, -1, 2**64, 2**64 - 1, None, 1.5]),
                               rng.choice([0, 1, -1, 2**31, 2**40, None]), iterations], {}


def target_jit_getitem():
    if rng.random() < 0.5:
        return n.jit_getitem, [rng.choice([type(JIT), int, object, n.Kernel, 5, None, Raises])], {}
    descriptor = n.jit_getitem(rng.choice([type(JIT), object, n.Kernel, Raises]))
    return descriptor, [rng.choice([JIT, object(), 5, Raises(), KERNELS[0]]), grid_value()], {}


def target_configure_refused():
    # Arguments configure must refuse (the real configuration stays in place).
    args = [(torch.Tensor,), (), None, None, None, None, None, None, None, None, (3, 6)]
    broken = rng.random()
    if broken < 0.25:
        args = some_args(0, 12)
        if len(args) == 11:
            args.append(None)
    elif broken < 0.5:
        args[0] = rng.choice([5, "x", None, (5,), (int, 5), Raises(), [torch.Tensor]])
    elif broken < 0.75:
        args[1] = rng.choice([5, "fp32", ((None, "fp32"),), ((torch.float32,),), ((torch.float32, 5),),
                              (("x", "\udc80"),), [(torch.float32, "fp32")], (Raises(),)])
    else:
        args[8] = rng.choice([(1, 2, 3), (Raises(), Raises(), Raises(), Raises()),
                              (list.__dict__["__len__"], list.clear, list.copy, [])])
        args[0] = (int,)
    return n.configure, args, {}


DTYPE_NAMES = _runtime.triton_dtype_names()


def target_configure_fuzzed():
    from triton import knobs
    from triton.runtime import _allocation

    real = [(torch.Tensor, torch.nn.Parameter), DTYPE_NAMES[:rng.randint(0, 30)],
            rng.choice([None, abs, raising_callable, none_callable, Raises()]), knobs.runtime, knobs.compilation,
            knobs.HookChain, _allocation._allocator, _allocation.NullAllocator, _runtime.tensor_access(),
            rng.choice([None, (0, ()), (0, (), True), (Raises(), ()), (0, (1, 2)), (0, ("x",))]),
            rng.choice([(3, 6), (3, 9), (3, 5), (4, 0), (3,), "3.6", (2**70, 1)])]
    for _ in range(rng.randint(0, 3)):
        real[rng.randrange(11)] = nested()
    return n.configure, real, {}


def target_kernel_new():
    if rng.random() < 0.3:
        return n.Kernel, some_args(0, 8), some_kwargs()
    source = rng.choice(list(TABLES))
    names, traits, defaults = TABLES[source]
    parts = [rng.choice(FUNCTIONS), miss_handler, names, traits, defaults,
             rng.choice([(), (("launch_cooperative_grid", False),)])]
    for _ in range(rng.randint(1, 2)):
        index = rng.randrange(6)
        if index in (2, 3, 4) and rng.random() < 0.5 and type(parts[index]) is tuple and len(parts[index]):
            items = list(parts[index])
            items[rng.randrange(len(items))] = nested()
            parts[index] = tuple(items)
        else:
            parts[index] = nested()
    cls = rng.choice([n.Kernel] * 4 + [type(KERNELS[2])])
    if cls is not n.Kernel:
        return cls.__new__, [cls, *parts], {}
    return cls, parts, {}


def target_kernel_method():
    kernel = rng.choice(KERNELS) if rng.random() < 0.98 else rng.choice([5, Spoof(), JIT])
    method = rng.choice(["launch", "key", "key", "insert", "cache_size"])
    unbound = getattr(n.Kernel, method)  # the native method, also where a subclass overrides nothing
    if method == "cache_size":
        return unbound, [kernel] + (some_args(0, 1) if rng.random() < 0.2 else []), {}
    if method == "insert":
        if rng.random() < 0.3:
            return unbound, [kernel] + some_args(0, 4), {}
        token = rng.choice(TOKENS + BYTES) if TOKENS else rng.choice(BYTES)
        return unbound, [kernel, token, Compiled(), random_info(kernel) if rng.random() < 0.7 else nested()], {}
    args, kwargs = call_args(kernel)
    first = rng.choice([0, 0, 1, -1, 2**31, 2**40, None, "x", IndexInt(0)]) if method == "key" else grid_value()
    return unbound, [kernel] + ([first, *args] if rng.random() < 0.95 else []), kwargs


def target_subscript_call():
    kernel = rng.choice(KERNELS + [JIT])
    args, kwargs = call_args(kernel if kernel is not JIT else KERNELS[0])
    try:
        launch = kernel[grid_value()]
    except Exception:  # noqa: BLE001 - a pass-through wrapper may refuse a grid; the call below still runs
        return n.stats, [False], {}
    return launch, args, kwargs


def target_getitem_descriptor():
    return FastJITFunction_getitem, [rng.choice([JIT, JIT, Raises(), 5]), grid_value()], {}


def target_bound_new():
    bound_type = type(KERNELS[0][(1,)])
    if rng.random() < 0.5:
        return bound_type, some_args(0, 3), {}
    return bound_type.__new__, [rng.choice([bound_type, n.Kernel, int])] + some_args(0, 2), {}


def target_launcher_new():
    if rng.random() < 0.4:
        return n.Launcher, some_args(0, 4), some_kwargs()
    return n.Launcher, [rng.choice([none_callable, raising_callable, 5, None]),
                        rng.choice([none_callable, raising_callable, None])], {}


def target_launcher_call():
    launcher = rng.choice(LAUNCHERS)
    if rng.random() < 0.2:
        return launcher, some_args(0, 6), some_kwargs()
    sources = list(TABLES)
    index = rng.randrange(len(sources) + 4)
    fn = sources[index] if index < len(sources) else rng.choice([JIT, Raises(), 5, None])
    # Arguments shaped for the kernel `fn` is (KERNELS holds three per source, in TABLES order).
    args, kwargs = call_args(KERNELS[3 * index if index < len(sources) else 0])
    kwargs.update({name: rng.choice([4, 1, 4.0]) for name in ("num_warps", "num_stages") if rng.random() < 0.8})
    return launcher, [fn, grid_value(), *args], kwargs


# Every other module-level entry point (the readers' probes, the stream query, the Helion dispatch,
# learning, native-run and pool entry points, ...): called with garbage, each must raise or return.
OTHER_ENTRY_POINTS = sorted(
    name for name in dir(n)
    if not name.startswith("_") and callable(getattr(n, name)) and not isinstance(getattr(n, name), type)
    and name not in {"specialize", "stats", "count_fallback", "driver_info", "raw_launch_loop", "jit_getitem",
                     "configure"})


def target_other_entry_point():
    function = getattr(n, rng.choice(OTHER_ENTRY_POINTS))
    if rng.random() < 0.5:
        # Real kernels, tensors and tuples of them, where most of these entry points look first.
        args = [rng.choice(KERNELS + [good_value(), nested()]) if rng.random() < 0.3 else nested()
                for _ in range(rng.randint(0, 6))]
        if args and rng.random() < 0.5:
            args[-1] = tuple(good_value() for _ in range(rng.randint(0, 4)))
        return function, args, {}
    return function, some_args(0, 8), some_kwargs() if rng.random() < 0.2 else {}


TARGETS = {
    "specialize": (target_specialize, 10),
    "stats": (target_stats, 2),
    "count_fallback": (target_count_fallback, 2),
    "driver_info": (target_driver_info, 1),
    "raw_launch_loop": (target_raw_launch_loop, 10),
    "jit_getitem": (target_jit_getitem, 4),
    "configure": (target_configure_fuzzed if MODE == "configure" else target_configure_refused, 3),
    "Kernel": (target_kernel_new, 8),
    "kernel methods": (target_kernel_method, 25),
    "kernel[grid](...)": (target_subscript_call, 15),
    "FastJITFunction.__getitem__": (target_getitem_descriptor, 3),
    "BoundLaunch": (target_bound_new, 2),
    "Launcher": (target_launcher_new, 3),
    "launcher(...)": (target_launcher_call, 12),
    "other entry points": (target_other_entry_point, 12),
}
NAMES = list(TARGETS)
WEIGHTS = [weight for _, weight in TARGETS.values()]


def describe(function, args, kwargs):
    """The call as text, for reports and SWIFTLAUNCH_FUZZ_DEBUG; never raises."""

    def text(value):
        try:
            if isinstance(value, torch.Tensor):
                return f"tensor(shape={tuple(value.shape)}, stride={value.stride()}, {value.dtype})"
            return repr(value)[:200]
        except Exception:  # noqa: BLE001
            return f"<{type(value).__name__}>"

    try:
        name = getattr(function, "__qualname__", None) or text(function)
        return f"{name}({', '.join([text(a) for a in args] + [f'{k!a}={text(v)}' for k, v in kwargs.items()])})"
    except Exception as error:  # noqa: BLE001 - an exception a native call left set surfaces anywhere
        return f"<call not describable: {type(error).__name__}>"


def main():
    counts = {name: 0 for name in NAMES}
    failures = []
    calls = 0
    hits = 0  # launches that went all the way (only with the stand-in driver)
    last = "nothing"
    start = time.perf_counter()
    while calls < CALLS:
        try:
            if calls % 2000 == 0 and calls:
                # The old kernels and launchers become garbage, much of it in cycles: the collector
                # traverses and clears native objects in whatever state the fuzzing left them.
                refresh()
                if calls % 10000 == 0:
                    gc.collect()
            if MODE == "configure" and calls % 500 == 0:
                name = "configure"
            else:
                name = rng.choices(NAMES, WEIGHTS)[0]
            function, args, kwargs = TARGETS[name][0]()
        except Exception as error:  # noqa: BLE001
            # The fuzzer's own code is plain Python: an exception here was left set by a native call
            # that nevertheless returned a result.
            failures.append(f"after {last}: {type(error).__name__}: {error}")
            calls += 1
            continue
        expect_refusal = name == "configure" and MODE != "configure"
        if function is n.raw_launch_loop and len(args) == 7 and isinstance(args[6], int) and args[6] > 2:
            args[6] = 2  # a valid huge count would only spin the stand-in driver
        last = describe(function, args, kwargs) if DEBUG or failures else name
        if DEBUG:
            print(f"{calls} {name}: {last}", file=sys.stderr, flush=True)
        calls += 1
        counts[name] += 1
        try:
            result = function(*args, **kwargs)
        except SystemError as error:
            failures.append(f"{describe(function, args, kwargs)} -> SystemError: {error}")
            continue
        except Exception:  # noqa: BLE001 - any ordinary exception is a valid answer
            continue
        if expect_refusal:
            failures.append(f"{describe(function, args, kwargs)} -> accepted, must be refused")
        hits += isinstance(result, Compiled)
    seconds = time.perf_counter() - start
    gc.collect()
    print(json.dumps({"calls": calls, "failures": failures[:50], "failure_count": len(failures),
                      "seconds": round(seconds, 2), "targets": counts, "seed": SEED, "mode": MODE,
                      "fake_driver": FAKE_DRIVER, "inserted": MAY_INSERT, "hits": hits}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
