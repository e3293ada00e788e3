"""swiftlaunch: launch Triton and Helion kernels from Python at close to the CUDA driver's cost.

The per-call path (specialization, dispatch key, cache lookup, argument packing and
`cuLaunchKernelEx`) runs in a native core written in Swift. Whatever it cannot reproduce exactly
goes to Triton or Helion unchanged; `stats()` says how often and why.
"""

from __future__ import annotations

from . import _loader

__version__ = "0.1.0"

__all__ = [
    "FastJITFunction", "Launcher", "dispatch_key", "fast", "jit", "native_available", "native_error",
    "stats",
]


def native_available() -> bool:
    """Whether kernel calls can go through the Swift core: it loaded, and the Triton stack is one it
    was tested with (checked on first use; this call checks it)."""
    from . import _runtime

    return _loader.native is not None and _runtime.ensure_configured()


def native_error() -> str:
    """Why the Swift core is not in use ("" when it is)."""
    from . import _runtime

    if _loader.native is None:
        return _loader.reason
    _runtime.ensure_configured()
    return _runtime.pass_through_reason


def stats(reset: bool = False) -> dict:
    """Fast-path hits, misses (calls Triton ran and the core then cached), every fallback to
    Triton/Helion counted by reason, which tensor reader the core uses and why (`tensor_reader`),
    how Triton's per-launch check of captured globals is made (`captured_globals`), and why every
    call passes through, if it does (`pass_through`). `reset=True` zeroes the counters after
    reading them."""
    from . import _triton

    if _loader.native is not None:
        from . import _runtime

        result = _loader.native.stats(reset)
        result["tensor_reader"] = _runtime.reader_status
        result["captured_globals"] = _runtime.constexpr_status
        if _runtime.pass_through_reason:
            result["pass_through"] = _runtime.pass_through_reason
        return result
    with _triton._counter_lock:
        result = {"hits": 0, "misses": 0, "fallbacks": dict(_triton._python_fallbacks)}
        if reset:
            _triton._python_fallbacks.clear()
    return result


def __getattr__(name):
    # Triton and torch load only when a kernel API is first used, so `info` works without them. Each
    # name is resolved once and stored as a module global, so later reads do not come back here.
    if name in ("jit", "fast", "FastJITFunction", "dispatch_key"):
        from . import _triton

        value = getattr(_triton, name)
    elif name == "Launcher":
        from .helion import Launcher as value
    elif name == "helion":
        import importlib

        value = importlib.import_module(".helion", __name__)
    else:
        raise AttributeError(f"module 'swiftlaunch' has no attribute {name!r}")
    globals()[name] = value
    return value
