"""``python -m swiftlaunch bench``: the options, and which measurement runs (the GPU suite, the
targets alone, or the host-side key without a GPU)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from .environment import probe_env
from .keys import NO_GPU_NOTE, run_key_bench
from .launch import run_launch_bench
from .messages import progress
from .records import header
from .report import format_key_table, format_launch_table, write_report
from .stacks import STACKS
from .suite import KERNEL_ALIASES, KERNELS, QUICK_KERNELS
from .targets import NO_GPU_TARGETS, run_targets_bench
from .timing import Settings


def pick(text: str | None, known: dict[str, str], aliases: dict[str, tuple[str, ...]], what: str,
         default: tuple[str, ...]) -> list[str]:
    """The names in the comma-separated ``text`` (aliases expanded), in ``known``'s order; ``default``
    without ``text``. An unknown name exits with the choices."""
    if not text:
        return list(default)
    picked: list[str] = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        names = aliases.get(name, (name,))
        for n in names:
            if n not in known:
                raise SystemExit(f"swiftlaunch bench: unknown {what} {n!r}; choose from "
                                 f"{', '.join([*known, *aliases])}")
            if n not in picked:
                picked.append(n)
    return [n for n in known if n in picked]  # table order


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m swiftlaunch bench",
        description="Per-call host cost of launching small kernels through eager PyTorch, Triton, Helion "
                    "and swiftlaunch, side by side. Without a CUDA GPU: the host-side dispatch key only.",
    )
    p.add_argument("--quick", action="store_true",
                   help=f"kernels {', '.join(QUICK_KERNELS)}; 2000 calls, 3 repetitions")
    p.add_argument("--kernels", metavar="A,B", help=f"kernels to run, from: {', '.join([*KERNELS, *KERNEL_ALIASES])}")
    p.add_argument("--stacks", metavar="A,B", help=f"stacks to run, from: {', '.join(STACKS)}")
    p.add_argument("--out", metavar="DIR", default="bench-out", help="where results.json and the chart go")
    p.add_argument("--calls", type=int, metavar="N", help="cpu_only calls per repetition (wall+sync: N/10)")
    p.add_argument("--reps", type=int, metavar="N", help="repetitions")
    p.add_argument("--cpu", action="store_true",
                   help="measure only the host-side dispatch key, as on a machine without a GPU")
    p.add_argument("--targets-only", action="store_true",
                   help="only the launch-overhead targets (vec_add and 4/16/64 tensor arguments, "
                        "outputs preallocated), which otherwise run after the suite; ignores --kernels "
                        "and --stacks")
    args = p.parse_args(argv)
    for opt in ("calls", "reps"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            p.error(f"--{opt} must be at least 1")
    return args


def _failure(cell: dict[str, Any], where: str = "") -> str:
    return f"{where}{cell['kernel']}/{cell['stack']}: {cell['reason']}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_args(args)
    kernels = pick(args.kernels, KERNELS, KERNEL_ALIASES, "kernel", QUICK_KERNELS if args.quick else tuple(KERNELS))
    stacks = pick(args.stacks, STACKS, {}, "stack", tuple(STACKS))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    if torch.cuda.is_available() and not args.cpu:
        if args.targets_only:
            results = run_targets_bench(settings)
            tables = []
        else:
            results = run_launch_bench(kernels, stacks, settings)
            tables = [format_launch_table(results)]
        failed = [_failure(c) for c in results["cells"] if c["status"] in ("error", "wrong")]
        failed += [_failure(c, "targets ") for c in results["targets"]["cells"] if c["status"] in ("error", "wrong")]
    else:
        if not torch.cuda.is_available():
            progress(f"swiftlaunch bench: no CUDA GPU -- {NO_GPU_NOTE}; measuring the host-side "
                     "dispatch key on CPU tensors instead")
        if args.targets_only:
            results = header("cpu", [], {}, settings, probe_env(want_helion=False), cuda=False)
            tables = []
        else:
            results = run_key_bench(kernels, stacks, settings)
            tables = [format_key_table(results)]
        results["targets"] = {"skipped": NO_GPU_TARGETS}
        failed = [_failure(r) for r in results.get("cpu", {}).get("rows", []) if r["status"] == "error"]

    write_report(results, tables, out_dir, "--targets-only: no chart" if args.targets_only else None)
    if failed:
        print(f"{len(failed)} cell(s) failed: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
