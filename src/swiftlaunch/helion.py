"""Helion glue: `install()` (every Helion kernel call through one native dispatch), and a launcher for
Helion's generated host wrappers (`_launcher=`).

Helion calls its launcher as `launcher(triton_kernel, grid, *args, num_warps=, num_stages=,
**extras)`. `swiftlaunch.Launcher()` takes that call in Swift; calls it cannot reproduce exactly
(distributed extras, non-JIT kernels, and every case `fast()` steps aside for) go to Helion's own
`default_launcher`, which keeps Helion's error translation.
"""

from __future__ import annotations

import warnings

from triton.runtime.jit import JITFunction

from . import _loader, _runtime, _triton


def _helion_default_launcher():
    try:
        from helion.runtime import default_launcher
    except ImportError:  # Helion not installed: Triton's call, as Helion's launcher makes it
        def default_launcher(triton_kernel, grid, *args, num_warps, num_stages,
                             launch_cooperative_grid=False, **kwargs):
            return triton_kernel.run(*args, grid=grid, warmup=False, num_warps=num_warps,
                                     num_stages=num_stages, launch_cooperative_grid=launch_cooperative_grid,
                                     **kwargs)
    return default_launcher


def _helion_miss(fn: JITFunction, fallback):
    def miss(kernel, token, spec, grid, args, kwargs):
        compiled = fallback(fn, grid, *args, **kwargs)
        if token is not None:
            run_kwargs = dict(kwargs)
            run_kwargs.setdefault("launch_cooperative_grid", False)
            _triton.remember(kernel, fn, token, spec, compiled, args, run_kwargs)
        return compiled

    return miss


def Launcher():
    """A launcher for Helion's host wrappers: pass it as `_launcher=`, or use `accelerate`."""
    fallback = _helion_default_launcher()
    if not _runtime.ensure_configured():
        reason = "native core unavailable" if _loader.native is None else "untested stack"

        def launcher(triton_kernel, grid, *args, **kwargs):
            _triton.count_fallback(reason)
            return fallback(triton_kernel, grid, *args, **kwargs)

        return launcher
    native = _loader.native

    def factory(triton_kernel):
        if type(triton_kernel) not in (JITFunction, _triton.FastJITFunction):
            return None
        names, traits, defaults = _triton.parameter_tables(triton_kernel)
        try:
            return native.Kernel(triton_kernel, _helion_miss(triton_kernel, fallback), names, traits, defaults,
                                 (("launch_cooperative_grid", False),))
        except ValueError:
            return None

    return native.Launcher(factory, fallback)


def install(output_pool: bool = False) -> bool:
    """Makes every Helion kernel call (Triton backend) go through swiftlaunch's native dispatch, with
    no other change to user code; kernels made before `install()` included. Idempotent; True when the
    hook is in place.

    Refused, with one warning and nothing patched, for a Helion version other than the tested ones,
    for a changed source of any Helion function the dispatch mirrors, or when the native core or its
    tensor reader is not in use; the reason is counted in `swiftlaunch.stats()["fallbacks"]` (e.g.
    "helion version not tested") and kept in `refusal()`.

    Hits whose host wrapper is only allocations of the `empty` family, tensor-metadata expressions,
    asserts, one launch and a return run entirely natively, from a plan recorded in one real call of
    each entry (`SWIFTLAUNCH_HELION_NATIVE_RUN=0` keeps them in Python, with swiftlaunch's launcher).

    `output_pool=True` (or `SWIFTLAUNCH_OUTPUT_POOL=1`): natively run calls reuse an entry's previous
    outputs when nothing else can reach their memory (see docs/DESIGN.md, "Output pool", for what it
    guarantees and what it cannot see). It needs CUDA and counts validated at configure time; when
    either is missing the pool stays off with one warning, the reason in `pool_refusal()`. Calling
    `install()` again with another `output_pool` switches it and drops every learned entry.
    """
    from . import _helion_dispatch

    return _helion_dispatch.install(output_pool)


def uninstall() -> bool:
    """Undoes `install()`: Helion's own `Kernel.__call__` is back and every native table is dropped.
    Idempotent; False when nothing was installed."""
    from . import _helion_dispatch

    return _helion_dispatch.uninstall()


def installed() -> bool:
    from . import _helion_dispatch

    return _helion_dispatch.installed()


def refusal() -> str:
    """Why the last `install()` refused ("" when it did not)."""
    from . import _helion_dispatch

    return _helion_dispatch.refusal


def pool_on() -> bool:
    """Whether the output pool is on."""
    from . import _helion_dispatch

    return _helion_dispatch.pool_on()


def pool_refusal() -> str:
    """Why the output pool stayed off when it was asked for ("" otherwise)."""
    from . import _helion_dispatch

    return _helion_dispatch.pool_refusal


def dispatch_stats() -> dict:
    """`{"dispatched", "learned", "tables", "entries", "native_runs", "recorded", "pool_reused",
    "pool_allocated", "pool_refusals"}`: calls the native dispatch ran, entries it learned, the kernels
    and entries it holds now, calls run natively (second stage) and plans recorded, outputs the pool
    reused and took in, and why it did not reuse one (`{reason: count}`), how an installed kernel is
    called (`"call_slot"`: natively, or through the Python shim and why); while the pool is on, also
    how it asks whether a CUDA graph is capturing (`"pool_capture_query"`). Why a wrapper or an entry
    stays in the first stage is counted in `swiftlaunch.stats()["fallbacks"]` ("helion native run:
    ...")."""
    if _loader.native is None:
        return {"dispatched": 0, "learned": 0, "tables": 0, "entries": 0, "native_runs": 0, "recorded": 0,
                "pool_reused": 0, "pool_allocated": 0, "pool_refusals": {}, "call_slot": "not installed"}
    from . import _helion_dispatch, _helion_pool

    result = _loader.native.helion_stats()
    result["call_slot"] = _helion_dispatch.call_slot
    if _helion_dispatch.pool_on():
        result["pool_capture_query"] = _helion_pool.capture_query
    return result


def accelerate(kernel=None, launcher=None) -> bool:
    """Deprecated: use `install()`, which covers every Helion kernel, compiled or not, and keeps
    `torch.compile` working. Calls `install()` and returns what it returns; both arguments are ignored
    (this used to write a launcher into a kernel's compiled wrappers' `__kwdefaults__`, which Dynamo
    cannot trace)."""
    warnings.warn("swiftlaunch.helion.accelerate() is deprecated: use swiftlaunch.helion.install()",
                  DeprecationWarning, stacklevel=2)
    return install()
