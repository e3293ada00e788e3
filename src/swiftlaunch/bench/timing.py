"""The timing loops and the statistics kept from them.

Every figure is nanoseconds per call over a loop of calls between two syncs, with the garbage
collector held off; repetitions visit every stack in turn (``time_interleaved``), so drift in
clocks or noisy neighbours hits every stack alike.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from .messages import progress
from .stacks import FLOOR_STACKS, Prepared

if TYPE_CHECKING:  # cells imports this module
    from .cells import Cell


@dataclass
class Settings:
    calls: int = 20_000  # cpu_only calls per repetition, as in the first H200 baseline, so runs compare
    wall_calls: int = 2_000  # wall+sync calls per repetition: each one waits for the GPU
    reps: int = 5
    warmup: int = 500

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        s = cls(calls=2_000, wall_calls=200, reps=3, warmup=200) if args.quick else cls()
        if args.calls is not None:
            s.calls = args.calls
            s.wall_calls = max(1, args.calls // 10)
        if args.reps is not None:
            s.reps = args.reps
        return s


@contextlib.contextmanager
def no_gc():
    # A collection in the middle of a timed loop would be charged to whichever stack ran then.
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_batch(batch: Callable[[int], Any], n: int, sync: Callable[[], None]) -> float:
    """ns per call of one ``batch(n)`` between two syncs: cpu_only for a stack that loops natively,
    and the frame that the Python loops below are timed in."""
    perf = time.perf_counter_ns
    with no_gc():
        sync()
        t0 = perf()
        batch(n)
        sync()
        return (perf() - t0) / n


def time_per_call(call: Callable[[], Any], n: int, sync: Callable[[], None]) -> float:
    """cpu_only: ns per call of ``n`` back-to-back calls and one final sync."""
    return time_batch(functools.partial(_calls, call), n, sync)


def time_per_call_synced(call: Callable[[], Any], n: int, sync: Callable[[], None]) -> float:
    """wall+sync: ns per call with a sync after each call."""
    return time_batch(functools.partial(_synced_calls, call, sync), n, sync)


# The loops take what they call as arguments, so that inside them it is a fast local: the loop's own
# cost per call is then what loop_overhead_ns reports.
def _calls(call: Callable[[], Any], n: int) -> None:
    for _ in range(n):
        call()


def _synced_calls(call: Callable[[], Any], sync: Callable[[], None], n: int) -> None:
    for _ in range(n):
        call()
        sync()


def loop_overhead_ns(n: int = 200_000) -> float:
    """What the timing loop itself costs per call (included in every figure)."""
    return min(time_per_call(nothing, n, nothing) for _ in range(3))


def nothing() -> None:
    return None


def sync_for(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else nothing


def stats_us(samples_ns: list[float]) -> dict[str, Any] | None:
    if not samples_ns:
        return None
    us = [s / 1000.0 for s in samples_ns]
    return {"median": statistics.median(us), "min": min(us), "samples": us}


def time_interleaved(ready: list[tuple[Cell, Prepared]], settings: Settings, sync: Callable[[], None],
                     wall_sync: bool = True) -> None:
    """Time every ready (cell, prepared) pair, appending to the cells' samples. Interleaved: every
    repetition visits every pair, so slow drift is shared by all of them. Pairs may come from several
    kernels. ``wall_sync=False`` times cpu_only alone."""
    live = list(ready)
    for rep in range(settings.reps):
        for pair in list(live):
            cell, prepared = pair
            try:
                if prepared.call is not None:
                    cell.cpu_only_ns.append(time_per_call(prepared.call, settings.calls, sync))
                    if wall_sync and cell.stack not in FLOOR_STACKS:
                        cell.wall_sync_ns.append(time_per_call_synced(prepared.call, settings.wall_calls, sync))
                else:
                    cell.cpu_only_ns.append(time_batch(prepared.batch, settings.calls, sync))
            except Exception as e:  # noqa: BLE001
                cell.fail_and_say("error", e)
                live = [p for p in live if p is not pair]
                continue
            if rep == settings.reps - 1:
                wall = f"   wall+sync {statistics.median(cell.wall_sync_ns) / 1000:8.2f} us" if cell.wall_sync_ns else ""
                progress(f"  {cell.kernel:<13} {cell.stack:<24} cpu_only {statistics.median(cell.cpu_only_ns) / 1000:8.2f} us{wall}")
