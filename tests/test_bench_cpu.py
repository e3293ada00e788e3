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
from swiftlaunch import bench  # noqa: E402

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: tests/gpu covers the bench")


def _helion_imports() -> bool:
    try:
        importlib.import_module("helion")
    except Exception:  # noqa: BLE001 - any failure means the bench skips Helion
        return False
    return True


@no_gpu
def test_quick_without_gpu(tmp_path, capsys):
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    assert "launch figures need a CUDA GPU" in printed

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "cpu"
    assert results["cpu"]["note"] == "launch figures need a CUDA GPU"
    for key in ("platform", "cpu", "python"):
        assert results["machine"][key]
    assert results["versions"]["torch"] == torch.__version__
    assert (tmp_path / "table.txt").read_text().strip()

    rows = {(r["kernel"], r["stack"]): r for r in results["cpu"]["rows"]}
    assert {kernel for kernel, _ in rows} == set(bench.QUICK_KERNELS)
    for kernel in bench.QUICK_KERNELS:
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
    assert bench.main(argv) == 0

    printed = capsys.readouterr().out
    assert "launch figures need a CUDA GPU" in printed
    assert "measuring Triton and Helion only" in printed
    rows = {r["stack"]: r for r in json.loads((tmp_path / "results.json").read_text())["cpu"]["rows"]}
    assert rows["triton"]["status"] == "ok"
    assert rows["swiftlaunch"]["status"] == "skipped" and "not built (test)" in rows["swiftlaunch"]["reason"]


def test_kernel_and_stack_selection():
    assert bench._pick("many_args,vec_add", bench.KERNELS, bench.KERNEL_ALIASES, "kernel", ()) == [
        "vec_add", "many_args_4", "many_args_16", "many_args_64"]
    assert bench._pick(None, bench.STACKS, {}, "stack", ("eager",)) == ["eager"]
    with pytest.raises(SystemExit, match="unknown stack 'nope'"):
        bench._pick("triton,nope", bench.STACKS, {}, "stack", ())
    with pytest.raises(SystemExit):
        bench.parse_args(["--calls", "0"])


def test_every_kernel_builds_on_cpu():
    # Inputs, eager reference and tolerances of the whole suite, without compiling anything.
    for name in bench.KERNELS:
        kernel = bench.make_kernel(name, "cpu")
        reference = kernel.eager()
        assert reference.shape == kernel.like.shape and reference.dtype == kernel.like.dtype


def test_launch_loop_on_cpu_records_every_cell():
    # The GPU path's prepare / check / warm-up / interleaved timing, on CPU tensors with no sync:
    # eager and empty_like run; Triton cannot launch without a driver and is recorded as an error;
    # the pool stack is reported as not existing.
    kernel = bench.make_kernel("vec_add", "cpu")
    settings = bench.Settings(calls=20, wall_calls=5, reps=3, warmup=2)
    stacks = ["eager", "triton", "swiftlaunch_helion_pool", "empty_like"]
    cells = {c.stack: c for c in bench.bench_kernel(kernel, stacks, bench.Env(), settings, lambda: None)}
    assert cells["eager"].status == "ok" and cells["eager"].check == "ok"
    assert len(cells["eager"].cpu_only_ns) == 3 and len(cells["eager"].wall_sync_ns) == 3
    assert cells["empty_like"].status == "ok" and cells["empty_like"].wall_sync_ns == []
    assert cells["triton"].status == "error"
    assert (cells["swiftlaunch_helion_pool"].status, cells["swiftlaunch_helion_pool"].reason) == (
        "skipped", "n/a (no pool)")


def test_launch_table_and_chart_from_recorded_cells(tmp_path):
    # The GPU report (table, ratios, chart) from synthetic samples, so it is checked without a GPU.
    samples = {"eager": 10_000, "triton": 20_000, "empty_like": 3_000, "raw_launch": 4_000}
    cells = [bench.Cell("vec_add", s, cpu_only_ns=[v, v * 1.1], wall_sync_ns=[] if s in bench.FLOOR_STACKS else [2 * v])
             for s, v in samples.items()]
    cells.append(bench.Cell("vec_add", "helion", status="skipped", reason="helion does not import: test"))
    eager = cells[0]
    floor_us = 3.0 * 1.05 + 4.0 * 1.05
    results = {
        "mode": "gpu",
        "machine": {"card": "Test GPU", "driver": "0.0"},
        "versions": {"torch": "t", "triton": "t", "helion": None, "swiftlaunch": "s"},
        "settings": {"kernels": ["vec_add"], "stacks": [*samples, "helion"], "cpu_only_calls": 2,
                     "wall_sync_calls": 1, "reps": 2, "warmup": 1},
        "notes": list(bench.LAUNCH_NOTES),
        "loop_overhead_ns": 30.0,
        "kernels": {"vec_add": {"title": bench.KERNELS["vec_add"], "eager": "torch.add(x, y)", "floor_us": floor_us}},
        "cells": [bench._cell_dict(c, eager, floor_us) for c in cells],
    }
    triton_cell = next(c for c in results["cells"] if c["stack"] == "triton")
    assert triton_cell["cpu_only_us"]["median"] == pytest.approx(21.0)
    assert triton_cell["ratio_to_eager"]["cpu_only"] == pytest.approx(2.0)
    assert triton_cell["ratio_to_floor"]["cpu_only"] == pytest.approx(21.0 / floor_us)

    table = bench.format_launch_table(results)
    assert "Test GPU" in table and "helion does not import: test" in table
    triton_line = next(line for line in table.splitlines() if line.strip().startswith("triton"))
    assert "21.00" in triton_line and "2.00" in triton_line

    path, skipped = bench._chart(results, tmp_path)
    if importlib.util.find_spec("matplotlib") is not None:
        assert skipped is None and path.stat().st_size > 0
