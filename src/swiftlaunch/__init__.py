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
    """Whether the Swift core loaded."""
    return _loader.native is not None


def native_error() -> str:
    """Why the Swift core is not in use ("" when it is)."""
    return _loader.reason


def stats(reset: bool = False) -> dict:
    """Fast-path hits, misses (calls Triton ran and the core then cached) and every fallback to
    Triton/Helion counted by reason. `reset=True` zeroes the counters after reading them."""
    from . import _triton

    if _loader.native is not None:
        return _loader.native.stats(reset)
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
