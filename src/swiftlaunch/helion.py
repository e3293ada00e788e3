"""Helion glue: a launcher for Helion's generated host wrappers (`_launcher=`), and `accelerate`.

Helion calls its launcher as `launcher(triton_kernel, grid, *args, num_warps=, num_stages=,
**extras)`. `swiftlaunch.Launcher()` takes that call in Swift; calls it cannot reproduce exactly
(distributed extras, non-JIT kernels, and every case `fast()` steps aside for) go to Helion's own
`default_launcher`, which keeps Helion's error translation.
"""

from __future__ import annotations

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


def accelerate(kernel, launcher=None) -> int:
    """Makes a Helion kernel's compiled host wrappers launch through `launcher` (a new
    `Launcher()` by default). Takes a `helion.Kernel` (every bound kernel compiled so far) or one
    `BoundKernel`; returns how many wrappers now use it. Call the kernel once first so that it is
    compiled; bound kernels compiled afterwards need another `accelerate`.
    """
    launcher = launcher or Launcher()
    bounds = list(kernel._bound_kernels.values()) if hasattr(kernel, "_bound_kernels") else [kernel]
    patched = 0
    for bound in bounds:
        run = getattr(bound, "_run", None)
        defaults = getattr(run, "__kwdefaults__", None)
        if defaults is None or "_launcher" not in defaults:
            continue
        defaults["_launcher"] = launcher
        patched += 1
    return patched
