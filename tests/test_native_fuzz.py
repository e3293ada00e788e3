"""Fuzzes every `_native` entry point (tests/native_fuzz.py) in subprocesses: each call must return or
raise an ordinary Python exception, and the process must exit 0.

Three runs, side by side: without a driver (100,000 calls; the glue's own configuration); against
the stand-in libcuda, so that calls get as far as a (do-nothing) launch (100,000 calls); and with
`configure` itself fuzzed, which changes what every later call sees (20,000 calls). To reproduce a
failure: SWIFTLAUNCH_FUZZ_SEED=<seed> SWIFTLAUNCH_FUZZ_DEBUG=1 python tests/native_fuzz.py (with the
environment the failing run names) prints each call before making it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import python_path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "native_fuzz.py"
SEED = os.environ.get("SWIFTLAUNCH_FUZZ_SEED", "0")


def stand_in_libcuda(directory: Path):
    compiler = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if compiler is None:
        return None
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(directory / "libcuda.so.1"),
                    str(ROOT / "scripts" / "fake_libcuda.c")], check=True)
    return directory


@pytest.fixture(scope="module")
def runs(native, tmp_path_factory):
    """Starts the three runs at once (they are independent processes) and waits for all of them."""
    fake = stand_in_libcuda(tmp_path_factory.mktemp("fakecuda"))
    # No CUDA device in any run: a GPU machine's real driver must never see a made-up kernel.
    base = {"PYTHONPATH": python_path(), "CUDA_VISIBLE_DEVICES": "", "SWIFTLAUNCH_FUZZ_SEED": SEED}
    plans = {"no driver": {"SWIFTLAUNCH_FUZZ_CALLS": "100000"}}
    if fake is not None:
        driver = {"LD_LIBRARY_PATH": f"{fake}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        plans["stand-in driver"] = {**driver, "SWIFTLAUNCH_FUZZ_CALLS": "100000"}
        plans["configure fuzzed"] = {**driver, "SWIFTLAUNCH_FUZZ_CALLS": "20000", "SWIFTLAUNCH_FUZZ_MODE": "configure"}
    processes = {
        name: (env, subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **base, **env}, cwd=ROOT))
        for name, env in plans.items()
    }
    results = {}
    for name, (env, process) in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        results[name] = (process.returncode, stdout, stderr, {**base, **env})
    return results


def check(runs, name, minimum):
    if name not in runs:
        pytest.skip("no C compiler for the stand-in libcuda")
    returncode, stdout, stderr, env = runs[name]
    how = " ".join(f"{key}={value}" for key, value in env.items())
    assert returncode == 0, (
        f"fuzz run '{name}' exited {returncode} (negative: killed by that signal)\n"
        f"reproduce: {how} SWIFTLAUNCH_FUZZ_DEBUG=1 {sys.executable} {SCRIPT}\n"
        f"{stdout[-4000:]}\n{stderr[-4000:]}")
    report = json.loads(stdout.strip().splitlines()[-1])
    print(f"fuzz '{name}': {report['calls']} calls in {report['seconds']} s, {report['failure_count']} failures, "
          f"{report['hits']} launches, seed {report['seed']}")
    assert report["failure_count"] == 0, report["failures"]
    assert report["calls"] >= minimum
    assert all(count > 0 for count in report["targets"].values()), report["targets"]
    return report


def test_fuzz_without_driver(runs):
    check(runs, "no driver", 100_000)


def test_fuzz_with_stand_in_driver(runs):
    report = check(runs, "stand-in driver", 100_000)
    assert report["fake_driver"]
    assert report["hits"] > 0  # calls went all the way to the (stand-in) launch


def test_fuzz_with_configure_fuzzed(runs):
    check(runs, "configure fuzzed", 20_000)
