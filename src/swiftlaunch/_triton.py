"""Triton glue: wraps a `JITFunction` in the Swift core's `Kernel`, and runs the miss path.

Nothing here is on the per-call path of a cache hit: `fast(k)[grid](...)` goes from the Swift
`Kernel.__getitem__` straight to the Swift launcher.
"""

from __future__ import annotations

import threading

import triton
from triton.runtime.jit import JITFunction

from . import _loader, _runtime

_counter_lock = threading.Lock()
_python_fallbacks: dict[str, int] = {}


def count_fallback(reason: str) -> None:
    """Counts a call that went to Triton/Helion unchanged, for `stats()`."""
    if _loader.native is not None:
        _loader.native.count_fallback(reason)
        return
    with _counter_lock:
        _python_fallbacks[reason] = _python_fallbacks.get(reason, 0) + 1


def parameter_tables(fn: JITFunction):
    """The per-parameter facts the core keys on, read off Triton's own `KernelParam`s, and each
    parameter's Python kind (how a call binds to it depends on the Triton release: `TritonRules`)."""
    names, traits, defaults = [], [], []
    kinds = fn.signature.parameters
    for param in fn.params:
        names.append(param.name)
        annotation = param.annotation_type or None
        traits.append((
            bool(param.is_constexpr),
            bool(param.is_const),
            not param.do_not_specialize,
            not param.do_not_specialize_on_alignment,
            annotation if not param.is_constexpr else None,
            kinds[param.name].kind.name,
        ))
        defaults.append((param.has_default, param.default if param.has_default else None))
    return tuple(names), tuple(traits), tuple(defaults)


def resolved_kernel(compiled):
    """The `CompiledKernel` a call's result stands for. From Triton 3.7 on, `run` no longer calls
    `kernel.result()`, so under `AsyncCompileMode` it can return a `FutureKernel`; its launch resolved it
    (`launch_metadata` goes through `FutureKernel.__getattr__`), and resolving put the `CompiledKernel`
    in Triton's kernel cache, which is what Triton returns from then on. An unresolved one is not a
    kernel yet: None."""
    try:
        from triton.runtime._async_compile import FutureKernel
    except ImportError:
        return compiled
    if isinstance(compiled, FutureKernel):
        return compiled.__dict__.get("kernel")
    return compiled


def _launch_info(fn: JITFunction, compiled):
    """What the core needs from a `CompiledKernel`, or the reason it cannot launch it."""
    import torch
    from triton.compiler.compiler import CompiledKernel

    if not isinstance(compiled, CompiledKernel):
        return None, "result is not a CompiledKernel"
    active = triton.runtime.driver.active
    if type(active).__name__ != "CudaDriver":
        return None, "not the CUDA driver"
    # The core reads torch's current device and stream, as Triton's driver does when torch was
    # imported before it was made; 3.8+'s torch-free driver uses the device's default stream instead.
    if (getattr(active, "get_current_stream", None) is not getattr(torch._C, "_cuda_getCurrentRawStream", None)
            or getattr(active, "get_current_device", None) is not torch.cuda.current_device):
        return None, "driver does not use torch's device and stream"
    metadata = compiled.metadata
    if getattr(metadata, "tensordesc_meta", None):
        return None, "tensor descriptors"
    if getattr(metadata, "profile_scratch_size", 0):
        return None, "profile scratch"
    # 3.8+: a GSan-instrumented kernel takes extra arguments (one in 3.8, three in 3.9). The knob guard
    # keeps such calls from the core; this keeps such kernels out of its cache too.
    if getattr(metadata, "instrumentation_mode", ""):
        return None, "instrumentation"
    # 3.9 keys kernels on `knobs.compilation.fpsan_homomorphic_casts`; the core launches only while it
    # reads False, so only a kernel compiled (and keyed) with False may be cached.
    if getattr(metadata, "fpsan_homomorphic_casts", False) is not False:
        return None, "fpsan knob set"
    if compiled.function is None:
        return None, "kernel not loaded"
    signature = compiled.src.signature
    types = tuple(signature.get(name) for name in fn.arg_names)
    if not all(isinstance(t, str) for t in types):
        return None, "tuple arguments"
    packed = getattr(compiled, "packed_metadata", None)
    if not (isinstance(packed, tuple) and len(packed) == 3):
        return None, "packed_metadata not (num_warps, num_ctas, shared)"
    num_warps, num_ctas, shared = packed
    return (
        compiled.function, num_warps, num_ctas, shared,
        bool(metadata.launch_cooperative_grid), bool(getattr(metadata, "launch_pdl", False)),
        int(metadata.global_scratch_size), int(metadata.global_scratch_align), types,
    ), None


def remember(kernel, fn: JITFunction, token, spec, compiled, args, kwargs) -> None:
    """Caches `compiled` under the native key `token`, but only after checking that Triton's own
    binder gives the specialization the core computed: the native cache can never hand out a
    kernel Triton would not have chosen."""
    import torch

    device = torch.cuda.current_device()
    # The core keys on the device of the current CUDA context; Triton on torch's current device. They
    # differ only while torch holds a device switch back until that device has a context. The key
    # also changes when Python code run by the call (a grid function) rebound an argument's storage.
    # Cache nothing then.
    if kernel.key(device, *args, **kwargs) != token:
        count_fallback("key changed during the call (device switch or rebound argument)")
        return
    kernel_cache, _, _, _, binder = fn.device_caches[device]
    _, triton_spec, _ = binder(*args, **kwargs)
    if list(triton_spec) != list(spec):
        count_fallback("specialization mismatch")
        return
    resolved = resolved_kernel(compiled)
    if resolved is not compiled:
        # A FutureKernel: cache its CompiledKernel only once it is resolved and Triton's own cache
        # holds it (what Triton's next call returns).
        if resolved is None or not any(value is resolved for value in kernel_cache.values()):
            count_fallback("async compilation not resolved")
            return
        compiled = resolved
    info, why = _launch_info(fn, compiled)
    if info is None:
        count_fallback(why)
        return
    if not kernel.insert(token, compiled, info):
        count_fallback("signature or launch attributes not handled")


def _triton_miss(fn: JITFunction):
    def miss(kernel, token, spec, grid, args, kwargs):
        compiled = fn.run(*args, grid=grid, warmup=False, **kwargs)
        if token is not None:
            remember(kernel, fn, token, spec, compiled, args, kwargs)
        return compiled

    return miss


def _native_kernel_type():
    native = _loader.native

    class FastKernel(native.Kernel):
        """`fast(jit_fn)`: `kernel[grid](*args, **meta)` launches through the Swift core."""

        def __new__(cls, fn: JITFunction):
            names, traits, defaults = parameter_tables(fn)
            return super().__new__(cls, fn, _triton_miss(fn), names, traits, defaults, ())

        def __init__(self, fn: JITFunction):
            self.fn = fn

        def run(self, *args, grid, warmup, **kwargs):
            return self.fn.run(*args, grid=grid, warmup=warmup, **kwargs)

        def __getattr__(self, name):
            return getattr(self.fn, name)

        def __repr__(self):
            return f"swiftlaunch.fast({self.fn!r})"

    return FastKernel


class PassThroughKernel:
    """`fast(jit_fn)` where the Swift core cannot be used: launches through Triton unchanged."""

    def __init__(self, fn, reason: str):
        self.fn = fn
        self._reason = reason

    def __getitem__(self, grid):
        # What Triton's KernelInterface.__getitem__ returns, for JIT and interpreted kernels alike.
        run, reason = self.fn.run, self._reason

        def call(*args, **kwargs):
            count_fallback(reason)
            return run(*args, grid=grid, warmup=False, **kwargs)

        return call

    def run(self, *args, grid, warmup, **kwargs):
        return self.fn.run(*args, grid=grid, warmup=warmup, **kwargs)

    def __getattr__(self, name):
        return getattr(self.fn, name)

    def __repr__(self):
        return f"swiftlaunch.fast({self.fn!r}) [through Triton: {self._reason}]"


_kernel_type = None
_create_lock = threading.Lock()
# Where a kernel keeps its wrapper: in its own `__dict__`, so the wrapper lives exactly as long as the
# kernel (the cycle kernel -> wrapper -> kernel is the collector's to free) and one kernel has one
# wrapper, whose cache every `fast(kernel)` call shares. The core's `__getitem__` reads it there too.
_WRAPPER = "_swiftlaunch_fast"


def _accelerated(fn: JITFunction):
    """The Swift core's kernel for `fn`, or a pass-through to Triton saying why there is none."""
    global _kernel_type
    if not _runtime.ensure_configured():
        return PassThroughKernel(fn, "native core unavailable" if _loader.native is None else "untested stack")
    if _kernel_type is None:
        _kernel_type = _native_kernel_type()
    try:
        return _kernel_type(fn)
    except ValueError as error:  # a parameter annotation the core has no type for
        return PassThroughKernel(fn, f"parameters not handled ({error})")


def _wrapper(fn, make):
    """`fn`'s wrapper, made by `make(fn)` on first use (once, whichever thread gets there first)."""
    wrapper = fn.__dict__.get(_WRAPPER)
    if wrapper is None:
        with _create_lock:
            wrapper = fn.__dict__.get(_WRAPPER)
            if wrapper is None:
                wrapper = make(fn)
                fn.__dict__[_WRAPPER] = wrapper
    return wrapper


def fast(fn):
    """Wraps a `triton.jit` kernel so that `fast(fn)[grid](*args, **meta)` launches through the
    Swift core, with exactly Triton's results; anything the core cannot reproduce goes to Triton.
    The same kernel always gets the same wrapper, so `fast(fn)[grid](...)` may be written inline."""
    if isinstance(fn, FastJITFunction):
        return fn._swiftlaunch_kernel()
    if type(fn) is JITFunction:
        return _wrapper(fn, _accelerated)
    from triton.runtime.interpreter import InterpretedFunction

    if isinstance(fn, InterpretedFunction):
        return _wrapper(fn, lambda f: PassThroughKernel(f, "triton interpreter"))
    if isinstance(fn, JITFunction):
        return _wrapper(fn, lambda f: PassThroughKernel(f, "JITFunction subclass"))
    raise TypeError(f"swiftlaunch.fast takes a triton.jit kernel, not {type(fn).__name__}")


class FastJITFunction(JITFunction):
    """What `swiftlaunch.jit` returns: a real `JITFunction` (usable from other kernels, with
    `warmup`, hooks and everything else Triton offers) whose `kernel[grid]` launches through the
    Swift core."""

    def _swiftlaunch_kernel(self):
        return _wrapper(self, _accelerated)

    def __getitem__(self, grid):
        # Replaced below by the core's own `__getitem__` (the same steps, without a Python frame).
        kernel = self.__dict__.get(_WRAPPER) or self._swiftlaunch_kernel()
        return kernel[grid]


if _loader.native is not None:
    FastJITFunction.__getitem__ = _loader.native.jit_getitem(FastJITFunction)


def jit(fn=None, **kwargs):
    """Drop-in for `triton.jit`: same arguments, same `kernel[grid](*args, **meta)` call and
    return value; launches go through the Swift core."""

    def decorator(function):
        from triton import knobs

        if knobs.runtime.interpret:  # TRITON_INTERPRET=1: Triton's InterpretedFunction, unchanged
            return triton.jit(function, **kwargs)
        return FastJITFunction(function, **kwargs)

    if fn is not None:
        return decorator(fn)
    return decorator


def dispatch_key(kernel, *args, device: int = 0, **kwargs):
    """The native dispatch key (bytes) for these arguments, or None where the call would go to
    Triton. Works on CPU tensors. A `JITFunction` is keyed through its one `fast()` wrapper."""
    fast_kernel = kernel if not isinstance(kernel, JITFunction) else fast(kernel)
    if isinstance(fast_kernel, PassThroughKernel):
        return None
    return fast_kernel.key(device, *args, **kwargs)
