"""The benchmark's GPU path, as `python -m swiftlaunch bench --quick` runs it: every stack of the quick
kernels is prepared, checked against eager PyTorch and timed (a few calls only: this checks the
harness, it measures nothing), and the targets section reports a verdict for every target."""

import json

from swiftlaunch.bench import cli
from swiftlaunch.bench.suite import QUICK_KERNELS


def test_quick_bench_runs_every_stack(tmp_path):
    assert cli.main(["--quick", "--calls", "200", "--reps", "1", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "gpu"
    cells = results["cells"]
    assert {c["kernel"] for c in cells} == set(QUICK_KERNELS)
    bad = [(c["kernel"], c["stack"], c["status"], c["reason"]) for c in cells
           if c["status"] in ("error", "wrong") or c["check"] not in ("ok", "-")]
    assert not bad, bad
    assert any(c["stack"] == "swiftlaunch" and c["status"] == "ok" for c in cells)
    targets = results["targets"]
    assert "skipped" not in targets, targets
    verdicts = [line for line in (tmp_path / "table.txt").read_text().splitlines()
                if line.rstrip().endswith(("met", "missed"))]
    assert len(verdicts) == 6, verdicts
