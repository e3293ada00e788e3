"""With a GPU: the suite, every chosen kernel through every chosen stack, each call allocating its
output; then the launch-overhead targets (``targets.py``)."""

from __future__ import annotations

import statistics
from typing import Any, Callable

from .cells import Cell, cell_dict, error_cells, prepare_stacks
from .environment import Env, probe_env, stats_for
from .messages import progress
from .records import header
from .stacks import FLOOR_STACKS, STACKS
from .suite import KERNELS, BenchKernel, make_kernel
from .targets import run_targets
from .timing import Settings, loop_overhead_ns, sync_for, time_interleaved

LAUNCH_NOTES = [
    "x floor: over empty_like + raw_launch, i.e. allocating an output plus a bare cuLaunchKernelEx; "
    "every other stack allocates its output too.",
    "compiled_run passes None for launch_metadata and for both launch hooks (Triton passes its HookChain "
    "objects, which its C launcher calls on every launch even when empty) and reads the stream once: "
    "it is Triton's C launcher alone.",
    "raw_launch is timed as cpu_only only (one native loop, one sync); empty_like as cpu_only only.",
]


def bench_kernel(bk: BenchKernel, stacks: list[str], env: Env, settings: Settings,
                 sync: Callable[[], None]) -> list[Cell]:
    """Prepare, check, warm up and time every stack on one kernel; one Cell per stack."""
    cells, ready = prepare_stacks(bk, stacks, env, settings, sync)
    time_interleaved(ready, settings, sync)
    return cells


def run_launch_bench(kernels: list[str], stacks: list[str], settings: Settings, device: str = "cuda",
                     env: Env | None = None, targets: bool = True) -> dict[str, Any]:
    """The GPU benchmark; returns the results dict written to results.json. ``targets``: the
    launch-overhead targets too, measured after the suite, under ``results["targets"]``."""
    env = env or probe_env(want_helion=any("helion" in s for s in stacks))
    sync, stats = sync_for(device), stats_for(env)
    results = header("gpu", kernels, {s: STACKS[s] for s in stacks}, settings, env, cuda=device.startswith("cuda"))
    results["loop_overhead_ns"] = loop_overhead_ns()
    results["notes"] = list(LAUNCH_NOTES)
    results["kernels"], results["cells"], results["swiftlaunch_stats"] = {}, [], {}
    for i, name in enumerate(kernels, 1):
        progress(f"[{i}/{len(kernels)}] {name}: {KERNELS[name]} -- compiling and checking {len(stacks)} stacks")
        try:
            bk = make_kernel(name, device)
        except Exception as e:  # noqa: BLE001
            cells, bk = error_cells(name, stacks, e), None
        else:
            if stats:
                stats(reset=True)
            cells = bench_kernel(bk, stacks, env, settings, sync)
            if stats:
                results["swiftlaunch_stats"][name] = stats()
        by_stack = {c.stack: c for c in cells}
        floor_parts = [statistics.median(by_stack[s].cpu_only_ns) / 1000
                       for s in FLOOR_STACKS if s in by_stack and by_stack[s].cpu_only_ns]
        floor_us = sum(floor_parts) if len(floor_parts) == len(FLOOR_STACKS) else None
        eager = by_stack.get("eager")
        eager = eager if eager is not None and eager.cpu_only_ns else None
        results["kernels"][name] = {
            "title": KERNELS[name],
            "eager": bk.eager_label if bk else None,
            "floor_us": floor_us,
        }
        results["cells"].extend(cell_dict(c, eager, floor_us) for c in cells)
    if targets:
        results["targets"] = run_targets(settings, env, device)
    return results
