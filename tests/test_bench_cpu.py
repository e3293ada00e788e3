"""`python -m swiftlaunch bench` on a machine without a GPU: it measures the host-side dispatch key,
says that launch figures need a CUDA GPU, and never fails for want of one.

With a GPU these tests are skipped: the launch benchmark itself is exercised under tests/gpu.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

if importlib.util.find_spec("swiftlaunch") is None:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import swiftlaunch  # noqa: E402
from swiftlaunch.bench import main  # noqa: E402
from swiftlaunch.bench.cells import Cell, cell_dict, prepare_stacks  # noqa: E402
from swiftlaunch.bench.cli import parse_args, pick  # noqa: E402
from swiftlaunch.bench.environment import Env  # noqa: E402
from swiftlaunch.bench.launch import LAUNCH_NOTES, bench_kernel  # noqa: E402
from swiftlaunch.bench.report import chart, format_launch_table, format_targets_table  # noqa: E402
from swiftlaunch.bench.stacks import (FLOOR_STACKS, STACKS, helion_launch_options, launcher_calling,  # noqa: E402
                                      launching)
from swiftlaunch.bench.suite import KERNEL_ALIASES, KERNELS, QUICK_KERNELS, make_kernel  # noqa: E402
from swiftlaunch.bench.targets import TENSOR_KERNELS, per_tensor_slope_ns, summarize_targets, verdict  # noqa: E402
from swiftlaunch.bench.timing import Settings, time_interleaved  # noqa: E402

no_gpu = pytest.mark.skipif(torch.cuda.is_available(),
                            reason="a CUDA GPU is present: tests/gpu/test_bench_gpu.py runs the GPU path")


def _helion_imports() -> bool:
    try:
        importlib.import_module("helion")
    except Exception:  # noqa: BLE001 - any failure means the bench skips Helion
        return False
    return True


@no_gpu
def test_quick_without_gpu(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    assert "launch figures need a CUDA GPU" in printed

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "cpu"
    assert results["cpu"]["note"] == "launch figures need a CUDA GPU"
    for key in ("platform", "cpu", "python"):
        assert results["machine"][key]
    assert results["versions"]["torch"] == torch.__version__
    assert (tmp_path / "table.txt").read_text().strip()
    # The launch-overhead targets need a GPU: one line, last, and a record of why in results.json.
    assert results["targets"] == {"skipped": "launch-overhead targets need a CUDA GPU"}
    assert (tmp_path / "table.txt").read_text().strip().splitlines()[-1] == (
        "launch-overhead targets need a CUDA GPU: skipped")

    rows = {(r["kernel"], r["stack"]): r for r in results["cpu"]["rows"]}
    assert {kernel for kernel, _ in rows} == set(QUICK_KERNELS)
    for kernel in QUICK_KERNELS:
        triton_row = rows[(kernel, "triton")]
        assert triton_row["status"] == "ok", triton_row["reason"]
        assert triton_row["median_ns"] > 0 and len(triton_row["samples_ns"]) == results["settings"]["reps"]
        helion_row = rows[(kernel, "helion")]
        assert helion_row["status"] == ("ok" if _helion_imports() else "skipped"), helion_row["reason"]
        # The native key is measured when the core is there; otherwise the row says why not.
        native_row = rows[(kernel, "swiftlaunch")]
        assert native_row["status"] in ("ok", "skipped"), native_row["reason"]
        if not swiftlaunch.native_available():
            assert native_row["status"] == "skipped"

    if importlib.util.find_spec("matplotlib") is not None:
        assert results["chart"] == "key_cost.png" and (tmp_path / "key_cost.png").stat().st_size > 0


@no_gpu
def test_without_native_core_measures_triton_only(tmp_path, capsys, monkeypatch):
    # As if the Swift core had not loaded: the swiftlaunch row is skipped with the reason, no failure.
    monkeypatch.setattr(swiftlaunch, "native_available", lambda: False, raising=False)
    monkeypatch.setattr(swiftlaunch, "native_error", lambda: "not built (test)", raising=False)
    argv = ["--kernels", "vec_add", "--stacks", "triton,swiftlaunch", "--calls", "200", "--reps", "2",
            "--out", str(tmp_path)]
    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "launch figures need a CUDA GPU" in printed
    assert "measuring Triton and Helion only" in printed
    rows = {r["stack"]: r for r in json.loads((tmp_path / "results.json").read_text())["cpu"]["rows"]}
    assert rows["triton"]["status"] == "ok"
    assert rows["swiftlaunch"]["status"] == "skipped" and "not built (test)" in rows["swiftlaunch"]["reason"]


def test_kernel_and_stack_selection():
    assert pick("many_args,vec_add", KERNELS, KERNEL_ALIASES, "kernel", ()) == [
        "vec_add", "many_args_4", "many_args_16", "many_args_64"]
    assert pick(None, STACKS, {}, "stack", ("eager",)) == ["eager"]
    with pytest.raises(SystemExit, match="unknown stack 'nope'"):
        pick("triton,nope", STACKS, {}, "stack", ())
    with pytest.raises(SystemExit):
        parse_args(["--calls", "0"])


def test_every_kernel_builds_on_cpu():
    # Inputs, eager reference and tolerances of the whole suite, without compiling anything.
    for name in KERNELS:
        kernel = make_kernel(name, "cpu")
        reference = kernel.eager()
        assert reference.shape == kernel.like.shape and reference.dtype == kernel.like.dtype


def test_launch_loop_on_cpu_records_every_cell():
    # The GPU path's prepare / check / warm-up / interleaved timing, on CPU tensors with no sync:
    # eager and empty_like run; Triton cannot launch without a driver and is recorded as an error;
    # the pool stack is reported as timed only in a run of its own.
    kernel = make_kernel("vec_add", "cpu")
    settings = Settings(calls=20, wall_calls=5, reps=3, warmup=2)
    stacks = ["eager", "triton", "swiftlaunch_helion_pool", "empty_like"]
    cells = {c.stack: c for c in bench_kernel(kernel, stacks, Env(), settings, lambda: None)}
    assert cells["eager"].status == "ok" and cells["eager"].check == "ok"
    assert len(cells["eager"].cpu_only_ns) == 3 and len(cells["eager"].wall_sync_ns) == 3
    assert cells["empty_like"].status == "ok" and cells["empty_like"].wall_sync_ns == []
    assert cells["triton"].status == "error"
    assert (cells["swiftlaunch_helion_pool"].status, cells["swiftlaunch_helion_pool"].reason) == (
        "skipped", "n/a (the pool is process-wide: run with SWIFTLAUNCH_OUTPUT_POOL=1)")


def test_launch_table_and_chart_from_recorded_cells(tmp_path):
    # The GPU report (table, ratios, chart) from synthetic samples, so it is checked without a GPU.
    samples = {"eager": 10_000, "triton": 20_000, "empty_like": 3_000, "raw_launch": 4_000}
    cells = [Cell("vec_add", s, cpu_only_ns=[v, v * 1.1], wall_sync_ns=[] if s in FLOOR_STACKS else [2 * v])
             for s, v in samples.items()]
    cells.append(Cell("vec_add", "helion", status="skipped", reason="helion does not import: test"))
    eager = cells[0]
    floor_us = 3.0 * 1.05 + 4.0 * 1.05
    results = {
        "mode": "gpu",
        "machine": {"card": "Test GPU", "driver": "0.0"},
        "versions": {"torch": "t", "triton": "t", "helion": None, "swiftlaunch": "s"},
        "settings": {"kernels": ["vec_add"], "stacks": [*samples, "helion"], "cpu_only_calls": 2,
                     "wall_sync_calls": 1, "reps": 2, "warmup": 1},
        "notes": list(LAUNCH_NOTES),
        "loop_overhead_ns": 30.0,
        "kernels": {"vec_add": {"title": KERNELS["vec_add"], "eager": "torch.add(x, y)", "floor_us": floor_us}},
        "cells": [cell_dict(c, eager, floor_us) for c in cells],
    }
    triton_cell = next(c for c in results["cells"] if c["stack"] == "triton")
    assert triton_cell["cpu_only_us"]["median"] == pytest.approx(21.0)
    assert triton_cell["ratio_to_eager"]["cpu_only"] == pytest.approx(2.0)
    assert triton_cell["ratio_to_floor"]["cpu_only"] == pytest.approx(21.0 / floor_us)

    table = format_launch_table(results)
    assert "Test GPU" in table and "helion does not import: test" in table
    triton_line = next(line for line in table.splitlines() if line.strip().startswith("triton"))
    assert "21.00" in triton_line and "2.00" in triton_line

    path, skipped = chart(results, tmp_path)
    if importlib.util.find_spec("matplotlib") is not None:
        assert skipped is None and path.stat().st_size > 0


# --- the launch-overhead targets: what can be checked without a GPU --------------------------------


def test_per_tensor_slope_is_the_least_squares_fit():
    # On a line: the slope itself, in ns (the points are us per call).
    assert per_tensor_slope_ns({4: 6.2, 16: 6.8, 64: 9.2}) == pytest.approx(50.0)
    # Off a line: the least-squares slope, sum((x - mx)(y - my)) / sum((x - mx)^2), whatever the order.
    points = {64: 20.0, 4: 10.0, 16: 11.0}
    mx, my = 28.0, 41.0 / 3
    expected = sum((x - mx) * (y - my) for x, y in points.items()) / sum((x - mx) ** 2 for x in points)
    assert per_tensor_slope_ns(points) == pytest.approx(expected * 1000.0)
    assert per_tensor_slope_ns({4: 5.0, 16: 5.0, 64: 5.0}) == pytest.approx(0.0)
    assert per_tensor_slope_ns({4: 5.0}) is None and per_tensor_slope_ns({}) is None


def test_verdict_from_the_numbers():
    assert verdict(0.82, 0.90) == "met"
    assert verdict(0.90, 0.90) == "met"  # "<= 0.9x"
    assert verdict(0.9001, 0.90) == "missed"
    assert verdict(61.0, 60.0) == "missed"
    assert verdict(None, 60.0) == "not measured"


def _target_cells(vec_us: dict[str, float], tensor_line: dict[str, tuple[float, float]]) -> list:
    """Recorded cells: vec_add at ``vec_us`` (median), the tensor kernels on the line a + b * count."""
    cells = [Cell("vec_add", s, check="ok", cpu_only_ns=[us * 900, us * 1000, us * 1100])
             for s, us in vec_us.items()]
    for kernel, count in TENSOR_KERNELS.items():
        cells += [Cell(kernel, s, check="ok", cpu_only_ns=[(a + b * count) * 1000] * 3)
                  for s, (a, b) in tensor_line.items()]
    return cells


VEC_US = {"triton": 14.0, "compiled_run": 7.5, "swiftlaunch": 5.7, "swiftlaunch_jit": 7.0, "swiftlaunch_opts": 5.8,
          "launcher": 6.0, "raw_launch": 4.0, "raw_launch_each": 4.6}


def test_targets_summary_and_table_from_recorded_cells():
    line = {"triton": (13.0, 0.6), "compiled_run": (7.0, 0.2), "swiftlaunch": (6.0, 0.07), "raw_launch": (3.0, 0.03),
            "raw_launch_each": (3.5, 0.05)}
    cells = _target_cells(VEC_US, line)
    settings = Settings(calls=100, reps=3, warmup=1)
    targets = summarize_targets(cells, "Test GPU", settings, 30.0)

    assert targets["vec_add_us"] == pytest.approx(VEC_US)
    assert targets["ns_per_extra_tensor"] == pytest.approx({s: b * 1000 for s, (a, b) in line.items()})
    assert targets["tensor_args_us"]["swiftlaunch"][64] == pytest.approx(6.0 + 0.07 * 64)
    verdicts = {v["target"]: v for v in targets["verdicts"]}
    assert verdicts["swiftlaunch / compiled_run"]["value"] == pytest.approx(0.76)
    assert verdicts["swiftlaunch / compiled_run"]["verdict"] == "met"
    assert verdicts["swiftlaunch / raw_launch"]["value"] == pytest.approx(1.425)
    assert verdicts["swiftlaunch / raw_launch"]["verdict"] == "missed"
    assert verdicts["swiftlaunch_jit / compiled_run"]["verdict"] == "missed"  # 7.0 / 7.5 = 0.933
    # 70 - 30 ns: what swiftlaunch spends per tensor beyond the driver's own per-parameter cost.
    assert verdicts["swiftlaunch ns per extra tensor over raw_launch"]["value"] == pytest.approx(40.0)
    assert verdicts["swiftlaunch ns per extra tensor over raw_launch"]["verdict"] == "missed"
    # The Launcher entry against fast's, same arguments: 6.0 - 5.8 us.
    assert verdicts["launcher - swiftlaunch_opts"]["value"] == pytest.approx(0.2)
    assert verdicts["launcher - swiftlaunch_opts"]["verdict"] == "met"
    assert len(verdicts) == 6
    assert json.loads(json.dumps(targets, default=str))  # what results.json gets

    table = format_targets_table(targets)
    lines = table.splitlines()
    assert "launch-overhead targets" in lines[0] and "Test GPU" in lines[0]

    def line_of(start):
        return next(text.split() for text in lines if text.strip().startswith(start))

    assert line_of("swiftlaunch / compiled_run")[-4:] == ["0.760", "<=", "0.80", "met"]
    assert line_of("swiftlaunch / raw_launch")[-4:] == ["1.425", "<=", "1.15", "missed"]
    assert line_of("swiftlaunch ns per extra tensor over raw_launch")[-5:] == ["40.0", "<=", "20", "ns", "missed"]
    assert line_of("launcher - swiftlaunch_opts")[-5:] == ["0.20", "<=", "0.3", "us", "met"]
    assert line_of("swiftlaunch ")[:2] == ["swiftlaunch", "5.70"] and line_of("swiftlaunch ")[-2:] == ["70", "ok"]
    assert line_of("launcher ")[:2] == ["launcher", "6.00"] and line_of("launcher ")[-1] == "ok"
    assert line_of("raw_launch ")[:2] == ["raw_launch", "4.00"]
    # The floor of a launch called from Python is shown with its slope and judged by no verdict.
    assert line_of("raw_launch_each")[:2] == ["raw_launch_each", "4.60"] and line_of("raw_launch_each")[-2:] == ["50", "ok"]
    assert not any("raw_launch_each" in v for v in verdicts)

    # Other numbers, other verdicts: 4.5 / 7.5 = 0.6, 4.5 / 4.0 = 1.125 and 45 - 30 ns now meet their
    # targets; a Launcher 0.6 us over fast misses its own.
    faster = summarize_targets(_target_cells({**VEC_US, "swiftlaunch": 4.5, "launcher": 6.4},
                                             {**line, "swiftlaunch": (6.0, 0.045)}), "Test GPU", settings, 30.0)
    assert {v["target"]: v["verdict"] for v in faster["verdicts"]} == {
        "swiftlaunch / compiled_run": "met", "swiftlaunch / raw_launch": "met",
        "swiftlaunch_jit / compiled_run": "missed", "swiftlaunch_jit / raw_launch": "missed",
        "swiftlaunch ns per extra tensor over raw_launch": "met", "launcher - swiftlaunch_opts": "missed"}


def test_targets_with_a_missing_cell_say_not_measured():
    cells = _target_cells(VEC_US, {"triton": (13.0, 0.6), "compiled_run": (7.0, 0.2), "swiftlaunch": (6.0, 0.05)})
    raw = next(c for c in cells if c.stack == "raw_launch")
    raw.cpu_only_ns, raw.check = [], "-"
    raw.fail("skipped", "swiftlaunch._native has no raw_launch_loop")
    many16 = next(c for c in cells if (c.kernel, c.stack) == ("many_args_16", "swiftlaunch"))
    many16.cpu_only_ns = []
    many16.fail("wrong", "output differs")
    launcher = next(c for c in cells if c.stack == "launcher")
    launcher.cpu_only_ns = []
    launcher.fail("error", "RuntimeError: test")
    targets = summarize_targets(cells, "Test GPU", Settings(), 30.0)
    verdicts = {v["target"]: v["verdict"] for v in targets["verdicts"]}
    assert verdicts["swiftlaunch / raw_launch"] == "not measured"
    assert verdicts["swiftlaunch / compiled_run"] == "met"
    # A slope over two of the three counts is not the one asked for.
    assert targets["ns_per_extra_tensor"]["swiftlaunch"] is None
    assert verdicts["swiftlaunch ns per extra tensor over raw_launch"] == "not measured"
    assert verdicts["launcher - swiftlaunch_opts"] == "not measured"
    table = format_targets_table(targets)
    assert "raw_launch: skipped: swiftlaunch._native has no raw_launch_loop" in table
    assert "many_args_16/swiftlaunch: wrong: output differs" in table
    assert "vec_add/launcher: error: RuntimeError: test" in table


def test_tensor_kernels_have_the_tensor_arguments_they_are_counted_for():
    for name, count in TENSOR_KERNELS.items():
        kernel = make_kernel(name, "cpu")
        assert 1 + sum(isinstance(a, torch.Tensor) for a in kernel.args) == count  # the output + inputs


class _FakeKernel:
    """``kernel[grid](out, *args)`` in pure PyTorch (no driver): writes ``write(args)`` into ``out``,
    or nothing at all."""

    def __init__(self, write=None):
        self.write = write

    def __getitem__(self, grid):
        def launch(out, *args, **constexprs):
            if self.write is not None:
                out.copy_(self.write(*args))

        return launch


def test_preallocated_cells_are_checked_and_timed_interleaved_on_cpu():
    # The targets' preallocated path, prepare / check / interleaved cpu_only timing, on CPU tensors:
    # a kernel that writes the right values passes; one that writes nothing is caught (its output is
    # NaN-filled before the checked call), and only cpu_only samples are taken.
    add = make_kernel("vec_add", "cpu")
    many = make_kernel("many_args_4", "cpu")
    prepare = {
        "right": lambda bk, env: launching(_FakeKernel(lambda *a: bk.eager()), bk, preallocated=True),
        "nothing": lambda bk, env: launching(_FakeKernel(), bk, preallocated=True),
    }
    settings = Settings(calls=20, wall_calls=5, reps=3, warmup=2)
    add_cells, add_ready = prepare_stacks(add, ["right", "nothing"], Env(), settings, lambda: None, prepare)
    many_cells, many_ready = prepare_stacks(many, ["right"], Env(), settings, lambda: None, prepare)
    right, nothing = add_cells
    assert (right.status, right.check) == ("ok", "ok")
    assert nothing.status == "wrong" and "output differs" in nothing.reason
    assert [c.stack for c, _ in add_ready] == ["right"]
    time_interleaved(add_ready + many_ready, settings, lambda: None, wall_sync=False)
    for cell in (right, many_cells[0]):
        assert len(cell.cpu_only_ns) == 3 and cell.wall_sync_ns == []
    assert nothing.cpu_only_ns == []


def test_targets_only_flag():
    assert parse_args(["--targets-only"]).targets_only is True
    assert parse_args([]).targets_only is False
    assert parse_args(["--targets-only", "--quick", "--calls", "100"]).calls == 100


@no_gpu
def test_targets_only_without_gpu_is_skipped(tmp_path, capsys):
    assert main(["--targets-only", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "launch-overhead targets need a CUDA GPU: skipped"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "cpu"
    assert results["targets"] == {"skipped": "launch-overhead targets need a CUDA GPU"}
    assert results["chart"] is None
    assert (tmp_path / "table.txt").read_text().strip() == "launch-overhead targets need a CUDA GPU: skipped"


class _RecordingKernel:
    """Stands in for a kernel: ``k[grid](...)`` records the call and writes 1 into ``out``."""

    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        def launch(out, *args, **kwargs):
            self.calls.append((grid, args, kwargs))
            out.fill_(1.0)

        return launch


@pytest.mark.parametrize("preallocated", [False, True])
def test_launch_calls_are_written_out_with_every_argument(preallocated):
    # The timed call spells out each argument (no star-unpacking), as user code does; it must still
    # pass exactly the kernel's arguments and constexprs, and write the output it returns.
    bk = make_kernel("vec_add", "cpu")
    kernel = _RecordingKernel()
    prepared = launching(kernel, bk, preallocated=preallocated)
    out = prepared.check()
    assert torch.equal(out, torch.ones_like(bk.like))
    first = prepared.call()
    second = prepared.call()
    assert (first is second) == preallocated  # one buffer when preallocated, a fresh one otherwise
    assert len(kernel.calls) == 3
    for grid, args, kwargs in kernel.calls:
        assert grid == bk.grid
        assert len(args) == len(bk.args) and all(a is b for a, b in zip(args, bk.args))
        assert kwargs == bk.constexprs


def test_launcher_and_its_fast_row_get_the_same_arguments():
    # The Launcher target compares two entry points, so everything else must be the same: the Triton
    # kernel, grid, the preallocated output, each argument and constexpr, and the launch options
    # Helion's wrapper passes (vec_add's Helion config).
    bk = make_kernel("vec_add", "cpu")
    options = helion_launch_options(bk)
    assert options == {"num_warps": bk.helion_config["num_warps"], "num_stages": bk.helion_config["num_stages"]}
    launcher_calls = []

    def launcher(triton_kernel, grid, out, *args, **kwargs):
        launcher_calls.append((triton_kernel, grid, args, kwargs))
        out.fill_(1.0)

    fast = _RecordingKernel()
    via_launcher = launcher_calling(launcher, bk, options)
    via_fast = launching(fast, bk, preallocated=True, options=options)
    for prepared in (via_launcher, via_fast):
        assert torch.equal(prepared.check(), torch.ones_like(bk.like))
        assert prepared.call() is prepared.call()  # one output, allocated once
    assert len(launcher_calls) == len(fast.calls) == 3
    for (triton_kernel, grid, args, kwargs), (fast_grid, fast_args, fast_kwargs) in zip(launcher_calls, fast.calls):
        assert triton_kernel is bk.jit_fn and grid == fast_grid == bk.grid
        assert len(args) == len(fast_args) == len(bk.args)
        assert all(a is b is c for a, b, c in zip(args, fast_args, bk.args))
        assert kwargs == fast_kwargs == {**bk.constexprs, **options}
