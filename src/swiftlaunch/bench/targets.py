"""The launch-overhead targets, printed last: vec_add and the tensor-argument kernels with every
output allocated once, outside the timed call, so that only the launch path is timed.

- ``swiftlaunch`` (``fast``) and ``swiftlaunch_jit`` at most 1.15x the Swift core's raw
  ``cuLaunchKernelEx`` loop and at most 0.8x ``CompiledKernel.run`` called directly (vec_add medians);
- the cost of one extra tensor argument through ``fast`` (the least-squares slope over the 4-, 16-
  and 64-tensor kernels) at most 20 ns above the raw loop's own slope, which is the driver's cost per
  parameter that every launcher pays;
- ``swiftlaunch.Launcher()`` called as Helion's generated host wrapper calls its ``_launcher`` at
  most 0.3 us above ``fast`` given the same arguments (vec_add, the same launch options).

``raw_launch_each`` (the raw launch, once per Python call, with no guard and no key) is shown beside
them and judged by nothing: it separates what calling from Python costs from what the launch path adds.

Each verdict is met, missed or not measured, from the figures of the same run.
"""

from __future__ import annotations

import functools
import statistics
from typing import Any, Callable

import torch

from .cells import Cell, cell_dict, error_cells, prepare_stacks
from .environment import Env, probe_env, stats_for
from .messages import progress
from .records import header
from .stacks import (PREPARE, Prepared, prep_launcher, prep_raw_launch, prep_raw_launch_each,
                     prep_swiftlaunch_helion_options)
from .suite import KERNELS, BenchKernel, make_kernel
from .timing import Settings, loop_overhead_ns, sync_for, time_interleaved

#: Stack name -> what one call of it is, in the targets section. Order is table order.
TARGET_STACKS: dict[str, str] = {
    "triton": "Triton kernel[grid](out, ...)",
    "compiled_run": "CompiledKernel.run(..., out, ...) called directly (hooks and launch_metadata None, "
                    "stream read once)",
    "swiftlaunch": "swiftlaunch.fast(kernel)[grid](out, ...)",
    "swiftlaunch_jit": "kernel[grid](out, ...) for a @swiftlaunch.jit kernel",
    "swiftlaunch_opts": "swiftlaunch.fast(kernel)[grid](out, ..., num_warps=, num_stages=): launcher's call "
                        "through fast's entry point",
    "launcher": "swiftlaunch.Launcher()(kernel, grid, out, ..., num_warps=, num_stages=), as Helion's host "
                "wrapper calls its _launcher (launch options from the kernel's Helion config)",
    "raw_launch": "cuLaunchKernelEx loop in the Swift core, arguments packed once",
    "raw_launch_each": "the same native launch once per Python call (_native.raw_launch_loop(..., 1)), "
                       "with no guard and no key: about the least a launch called from Python does; "
                       "shown, not judged",
}
TARGET_KERNEL = "vec_add"
#: (stack, the stack it is divided by, the most the ratio of their vec_add medians may be).
TARGET_RATIOS: tuple[tuple[str, str, float], ...] = (
    ("swiftlaunch", "compiled_run", 0.80),
    ("swiftlaunch", "raw_launch", 1.15),
    ("swiftlaunch_jit", "compiled_run", 0.80),
    ("swiftlaunch_jit", "raw_launch", 1.15),
)
#: The kernels whose slope is the cost of one extra tensor argument -> their tensor arguments.
TENSOR_KERNELS: dict[str, int] = {"many_args_4": 4, "many_args_16": 16, "many_args_64": 64}
# raw_launch too: the driver's own cost per extra parameter, which every stack pays.
TENSOR_STACKS = ("triton", "compiled_run", "swiftlaunch", "raw_launch", "raw_launch_each")
#: The stack whose ns per extra tensor may exceed raw_launch's by at most this many ns.
TENSOR_TARGET_STACK, TENSOR_OVER_RAW_NS = "swiftlaunch", 20.0
#: (stack, the stack it is compared with, the most its vec_add median may exceed the other's, in us).
LAUNCHER_TARGET: tuple[str, str, float] = ("launcher", "swiftlaunch_opts", 0.3)
NO_GPU_TARGETS = "launch-overhead targets need a CUDA GPU"

#: The targets section's stacks: the output allocated once, when the stack is prepared.
PREALLOCATED: dict[str, Callable[[BenchKernel, Env], Prepared]] = {
    **{name: functools.partial(PREPARE[name], preallocated=True)
       for name in ("triton", "compiled_run", "swiftlaunch", "swiftlaunch_jit")},
    "swiftlaunch_opts": prep_swiftlaunch_helion_options,
    "launcher": prep_launcher,
    "raw_launch": prep_raw_launch,  # allocation-free already
    "raw_launch_each": prep_raw_launch_each,
}
assert PREALLOCATED.keys() == TARGET_STACKS.keys()


def run_targets_bench(settings: Settings, device: str = "cuda", env: Env | None = None) -> dict[str, Any]:
    """``--targets-only``: the results dict with the targets alone (no suite, no cells)."""
    env = env or probe_env(want_helion=False)
    results = header("gpu", [TARGET_KERNEL, *TENSOR_KERNELS], TARGET_STACKS, settings, env,
                     cuda=device.startswith("cuda"))
    results["settings"]["targets_only"] = True
    results["loop_overhead_ns"] = loop_overhead_ns()
    results["notes"], results["kernels"], results["cells"] = [], {}, []
    results["targets"] = run_targets(settings, env, device, results["loop_overhead_ns"])
    return results


def run_targets(settings: Settings, env: Env, device: str = "cuda", loop_ns: float | None = None) -> dict[str, Any]:
    """vec_add through every TARGET_STACKS stack and the tensor-argument kernels through
    TENSOR_STACKS, each output allocated once; every cell checked against eager, then all of them
    timed cpu_only in one interleaved loop, so the ratios, differences and slopes compare like with
    like."""
    progress(f"[targets] {TARGET_KERNEL} and {', '.join(TENSOR_KERNELS)}, outputs preallocated -- "
             "compiling and checking")
    sync, stats = sync_for(device), stats_for(env)
    if stats:
        stats(reset=True)
    cells: list[Cell] = []
    ready: list[tuple[Cell, Prepared]] = []
    for name in (TARGET_KERNEL, *TENSOR_KERNELS):
        stacks = list(TARGET_STACKS) if name == TARGET_KERNEL else list(TENSOR_STACKS)
        try:
            bk = make_kernel(name, device)
        except Exception as e:  # noqa: BLE001
            cells.extend(error_cells(name, stacks, e))
            continue
        kernel_cells, kernel_ready = prepare_stacks(bk, stacks, env, settings, sync, PREALLOCATED)
        cells.extend(kernel_cells)
        ready.extend(kernel_ready)
    time_interleaved(ready, settings, sync, wall_sync=False)
    card = torch.cuda.get_device_name() if device.startswith("cuda") else device
    targets = summarize_targets(cells, card, settings, loop_overhead_ns() if loop_ns is None else loop_ns)
    if stats:
        targets["swiftlaunch_stats"] = stats()
    return targets


def per_tensor_slope_ns(points: dict[int, float]) -> float | None:
    """Least-squares slope of us per call against the number of tensor arguments, in ns per extra
    tensor argument; None with fewer than two points."""
    if len(points) < 2:
        return None
    counts = sorted(points)
    slope, _ = statistics.linear_regression(counts, [points[n] for n in counts])
    return slope * 1000.0


def verdict(value: float | None, limit: float) -> str:
    """A target (value <= limit) as measured: met, missed, or not measured."""
    if value is None:
        return "not measured"
    return "met" if value <= limit else "missed"


def _judged(target: str, value: float | None, limit: float, unit: str) -> dict[str, Any]:
    return {"target": target, "value": value, "limit": limit, "unit": unit, "verdict": verdict(value, limit)}


def summarize_targets(cells: list[Cell], card: str, settings: Settings, loop_ns: float) -> dict[str, Any]:
    """The figures and verdicts from the timed cells: ``results["targets"]``."""
    by_key = {(c.kernel, c.stack): c for c in cells}

    def median_us(kernel: str, stack: str) -> float | None:
        c = by_key.get((kernel, stack))
        return statistics.median(c.cpu_only_ns) / 1000 if c and c.status == "ok" and c.cpu_only_ns else None

    vec_us = {s: median_us(TARGET_KERNEL, s) for s in TARGET_STACKS}
    tensor_us = {s: {n: median_us(k, s) for k, n in TENSOR_KERNELS.items()} for s in TENSOR_STACKS}
    # A slope over some of the counts would not be the one asked for: all of them, or none.
    slopes = {s: per_tensor_slope_ns(us) if None not in us.values() else None for s, us in tensor_us.items()}
    verdicts = []
    for stack, base, limit in TARGET_RATIOS:
        num, den = vec_us[stack], vec_us[base]
        verdicts.append(_judged(f"{stack} / {base}", num / den if num is not None and den else None, limit, "x"))
    # Over the raw launch's slope: what swiftlaunch itself spends per tensor (reading it from torch,
    # keying, packing), without the driver's per-parameter cost that no launcher avoids.
    mine, raw = slopes[TENSOR_TARGET_STACK], slopes["raw_launch"]
    verdicts.append(_judged(f"{TENSOR_TARGET_STACK} ns per extra tensor over raw_launch",
                            mine - raw if mine is not None and raw is not None else None, TENSOR_OVER_RAW_NS, "ns"))
    stack, base, limit = LAUNCHER_TARGET
    over = vec_us[stack] - vec_us[base] if vec_us[stack] is not None and vec_us[base] is not None else None
    verdicts.append(_judged(f"{stack} - {base}", over, limit, "us"))
    return {
        "card": card,
        "kernel": TARGET_KERNEL,
        "title": KERNELS[TARGET_KERNEL],
        "tensor_kernels": dict(TENSOR_KERNELS),
        "stacks": dict(TARGET_STACKS),
        "settings": {"cpu_only_calls": settings.calls, "reps": settings.reps, "warmup": settings.warmup},
        "loop_overhead_ns": loop_ns,
        "vec_add_us": vec_us,
        "tensor_args_us": tensor_us,
        "ns_per_extra_tensor": slopes,
        "verdicts": verdicts,
        "cells": [cell_dict(c, None, None) for c in cells],
    }
