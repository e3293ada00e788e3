"""Without a GPU: the host-side work of a call that needs none, each stack's specialization and
cache key, timed on CPU tensors."""

from __future__ import annotations

import statistics
from typing import Any, Callable

import torch

from .environment import Env, probe_env
from .messages import first_line, progress
from .records import header
from .stacks import STACKS, Unavailable, helion_kernel
from .suite import BenchKernel, make_kernel
from .timing import Settings, loop_overhead_ns, nothing, time_per_call

#: Without a GPU, each of these stacks has one host-side key computation to measure.
KEY_IMPLS: dict[str, str] = {
    "triton": "Triton binder + compute_cache_key (as in JITFunction.run)",
    "helion": "Helion Kernel.specialization_key(args)",
    "swiftlaunch": "swiftlaunch.dispatch_key(swiftlaunch.fast(kernel), *args, **meta)",
}

NO_GPU_NOTE = "launch figures need a CUDA GPU"


def _triton_key_call(bk: BenchKernel) -> Callable[[], Any]:
    """Triton's per-call key work, as JITFunction.run does it on a cache hit (jit.py, triton 3.6):
    the kwargs it adds, the exec-generated binder (one native_specialize_impl per argument) and
    compute_cache_key. ``create_binder`` needs an active driver, which a machine without a GPU lacks,
    so the binder is built the same way for an sm90 target."""
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.runtime.jit import compute_cache_key, create_function_from_signature

    k = bk.jit_fn
    binder = create_function_from_signature(k.signature, k.params, CUDABackend(GPUTarget("cuda", 90, 32)))
    key_cache: dict = {}
    out, args, cx = torch.empty_like(bk.like), bk.args, bk.constexprs

    def call():
        kwargs = dict(cx)
        kwargs["debug"] = kwargs.get("debug", k.debug) or knobs.runtime.debug
        kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
        _, specialization, options = binder(out, *args, **kwargs)
        return compute_cache_key(key_cache, specialization, options)

    return call


def _helion_key_call(bk: BenchKernel, env: Env) -> Callable[[], Any]:
    kernel, args = helion_kernel(bk, env), bk.helion_args
    specialization_key = kernel.specialization_key
    return lambda: specialization_key(args)


def _swiftlaunch_key_call(bk: BenchKernel, env: Env) -> Callable[[], Any]:
    if env.sl_error:
        raise Unavailable(env.sl_error)
    # Wrap once, as a program would: dispatch_key on a bare JITFunction wraps it on every call.
    dispatch_key, kernel = env.sl.dispatch_key, env.sl.fast(bk.jit_fn)
    out, args, cx = torch.empty_like(bk.like), bk.args, bk.constexprs
    if dispatch_key(kernel, out, *args, **cx) is None:
        raise Unavailable(f"no native key: swiftlaunch steps aside to Triton here ({kernel!r})")
    return lambda: dispatch_key(kernel, out, *args, **cx)


KEY_CALL: dict[str, Callable[[BenchKernel, Env], Callable[[], Any]]] = {
    "triton": lambda bk, env: _triton_key_call(bk),
    "helion": _helion_key_call,
    "swiftlaunch": _swiftlaunch_key_call,
}
assert KEY_CALL.keys() == KEY_IMPLS.keys()


def run_key_bench(kernels: list[str], stacks: list[str], settings: Settings,
                  env: Env | None = None) -> dict[str, Any]:
    """No GPU: ns per call of each stack's specialization / dispatch key on CPU tensors."""
    impls = [s for s in KEY_IMPLS if s in stacks]
    env = env or probe_env(want_helion="helion" in impls)
    results = header("cpu", kernels, {s: STACKS[s] for s in stacks}, settings, env, cuda=False)
    results["stacks"] = {impl: KEY_IMPLS[impl] for impl in impls}
    results["loop_overhead_ns"] = loop_overhead_ns()
    notes = [f"No CUDA GPU: {NO_GPU_NOTE}. Measured instead: the host-side specialization and "
             "dispatch key, ns per call on CPU tensors."]
    if "swiftlaunch" in impls and env.sl_error:
        notes.append(f"{env.sl_error}: measuring Triton and Helion only.")
    if not impls:
        notes.append(f"None of the chosen stacks has a host-side key to measure ({', '.join(KEY_IMPLS)}).")
    rows: list[dict[str, Any]] = []
    for name in kernels:
        bk = make_kernel(name, "cpu")
        calls: dict[str, Callable[[], Any]] = {}
        cells: dict[str, dict[str, Any]] = {}
        for impl in impls:
            cell = cells[impl] = {"kernel": name, "stack": impl, "what": KEY_IMPLS[impl], "status": "ok",
                                  "reason": None, "samples_ns": []}
            try:
                call = KEY_CALL[impl](bk, env)
                for _ in range(settings.warmup):
                    call()
                calls[impl] = call
            except Unavailable as e:
                cell.update(status="skipped", reason=str(e))
            except Exception as e:  # noqa: BLE001
                cell.update(status="error", reason=f"{type(e).__name__}: {first_line(e)}")
        for _ in range(settings.reps):  # interleaved, as on the GPU
            for impl, call in calls.items():
                cells[impl]["samples_ns"].append(time_per_call(call, settings.calls, nothing))
        base = cells.get("triton", {}).get("samples_ns")
        for impl, cell in cells.items():
            samples = cell["samples_ns"]
            cell["median_ns"] = statistics.median(samples) if samples else None
            cell["min_ns"] = min(samples) if samples else None
            cell["ratio_to_triton"] = (cell["median_ns"] / statistics.median(base)
                                       if samples and base else None)
            if samples:
                progress(f"  {name:<13} {impl:<12} {cell['median_ns']:9.0f} ns per call")
            else:
                progress(f"  {name:<13} {impl:<12} {cell['status']}: {cell['reason']}")
            rows.append(cell)
    results["cpu"] = {"note": NO_GPU_NOTE, "notes": notes, "rows": rows}
    results["notes"] = notes
    return results
