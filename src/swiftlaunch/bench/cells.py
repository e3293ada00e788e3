"""Cells: one stack on one kernel. Each is prepared, checked against eager PyTorch and warmed up
before any timing, and ends up as a dict of results.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from .environment import Env
from .messages import first_line, progress
from .stacks import PREPARE, Prepared, Unavailable
from .suite import BenchKernel
from .timing import Settings, stats_us


@dataclass
class Cell:
    kernel: str
    stack: str
    status: str = "ok"  # ok | skipped | error | wrong
    reason: str | None = None
    check: str = "-"  # ok | - (nothing to check) | the mismatch
    cpu_only_ns: list[float] = field(default_factory=list)
    wall_sync_ns: list[float] = field(default_factory=list)

    def fail(self, status: str, e: BaseException | str) -> None:
        self.status = status
        self.reason = e if isinstance(e, str) else f"{type(e).__name__}: {first_line(e)}"

    def fail_and_say(self, status: str, e: BaseException | str) -> None:
        """``fail``, and a progress line that says so."""
        self.fail(status, e)
        progress(f"  {self.kernel:<13} {self.stack:<24} {status}: {self.reason}")


def error_cells(kernel: str, stacks: Iterable[str], e: BaseException) -> list[Cell]:
    """One failed Cell per stack, for a kernel that could not even be built."""
    cells = [Cell(kernel, s) for s in stacks]
    for c in cells:
        c.fail("error", e)
    return cells


def _poison(like: torch.Tensor) -> None:
    # The caching allocator hands a freed block back to the next same-sized request, so a stack that
    # wrote nothing could show another stack's correct result. Leave NaN in the free block instead.
    torch.empty_like(like).fill_(float("nan"))


def _steady_output(bk: BenchKernel, prepared: Prepared, keep: list) -> torch.Tensor:
    """The output of a steady-state call: the second one, since a first call may compile or take
    a cache-miss path (swiftlaunch lets Triton run its misses) that is not what gets timed."""
    prepared.check()
    _poison(bk.like)
    out = prepared.check()
    keep.append(out)  # keep it alive so no later stack can be handed this block
    return out


def _mismatch(bk: BenchKernel, out: torch.Tensor, reference: torch.Tensor) -> str | None:
    try:
        torch.testing.assert_close(out, reference, rtol=bk.rtol, atol=bk.atol)
    except AssertionError as e:
        return first_line(e, 2) or "mismatch"  # assert_close says what, then how many differ
    return None


def prepare_stacks(bk: BenchKernel, stacks: list[str], env: Env, settings: Settings, sync: Callable[[], None],
                   prepare: dict[str, Callable[[BenchKernel, Env], Prepared]] = PREPARE,
                   ) -> tuple[list[Cell], list[tuple[Cell, Prepared]]]:
    """Prepare, check against eager and warm up every stack on one kernel: one Cell per stack, and
    the (cell, prepared) pairs that are ready to time. ``prepare`` maps a stack to how it is built."""
    cells = {name: Cell(bk.name, name) for name in stacks}
    ready: dict[str, Prepared] = {}
    reference = bk.eager()
    sync()
    keep: list = [reference]
    for name in stacks:
        cell = cells[name]
        try:
            prepared = prepare[name](bk, env)
            out = _steady_output(bk, prepared, keep) if prepared.check is not None else None
            sync()
        except Unavailable as e:
            cell.fail_and_say("skipped", str(e))
            continue
        except Exception as e:  # noqa: BLE001 - one broken stack must not stop the others
            cell.fail_and_say("error", e)
            continue
        if out is not None:
            mismatch = _mismatch(bk, out, reference)
            cell.check = mismatch or "ok"
            if mismatch:
                cell.fail_and_say("wrong", f"output differs from {bk.eager_label}: {mismatch}")
                continue
        ready[name] = prepared
    del keep

    for name, prepared in list(ready.items()):
        try:
            if prepared.call is not None:
                for _ in range(settings.warmup):
                    prepared.call()
            else:
                prepared.batch(settings.warmup)
            sync()
        except Exception as e:  # noqa: BLE001
            cells[name].fail_and_say("error", e)
            del ready[name]
    return [cells[name] for name in stacks], [(cells[name], prepared) for name, prepared in ready.items()]


def cell_dict(cell: Cell, eager: Cell | None, floor_us: float | None) -> dict[str, Any]:
    """The cell as results.json records it, with its ratios to eager PyTorch and to the floor."""
    cpu, wall = stats_us(cell.cpu_only_ns), stats_us(cell.wall_sync_ns)
    eager_cpu = stats_us(eager.cpu_only_ns) if eager else None
    eager_wall = stats_us(eager.wall_sync_ns) if eager else None

    def ratio(a, b):
        return a["median"] / b["median"] if a and b and b["median"] > 0 else None

    return {
        "kernel": cell.kernel,
        "stack": cell.stack,
        "status": cell.status,
        "reason": cell.reason,
        "check": cell.check,
        "cpu_only_us": cpu,
        "wall_sync_us": wall,
        "ratio_to_eager": {"cpu_only": ratio(cpu, eager_cpu), "wall_sync": ratio(wall, eager_wall)},
        "ratio_to_floor": {"cpu_only": cpu["median"] / floor_us if cpu and floor_us else None},
    }
