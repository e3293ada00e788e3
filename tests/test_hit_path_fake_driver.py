"""The core's cache-hit path and every guard and fallback reason, on a machine without a GPU.

The cases themselves (tests/fake_driver/hit_path_cases.py) run in a subprocess whose libcuda.so.1 is
the recording stand-in (scripts/fake_libcuda.c, built here): the core loads its driver once per
process, and the dynamic loader reads LD_LIBRARY_PATH only at start-up.

On a machine with a GPU they are skipped: tests/gpu runs the real driver there. The subprocess should
see the fake there too (LD_LIBRARY_PATH comes before the loader's cache, and the cases fail at once if
the core's driver is not the fake), but that has not been tried on a GPU machine yet;
SWIFTLAUNCH_FAKE_DRIVER_ON_GPU=1 runs them anyway, to find out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from fake_driver import harness
from child_env import python_path

TESTS = Path(__file__).resolve().parent
CASES = TESTS / "fake_driver" / "hit_path_cases.py"


def skip_unless_runnable():
    if harness.compiler() is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build scripts/fake_libcuda.c")
    import torch

    if torch.cuda.is_available() and os.environ.get("SWIFTLAUNCH_FAKE_DRIVER_ON_GPU", "") in ("", "0"):
        pytest.skip("a GPU is present: tests/gpu runs the real driver (SWIFTLAUNCH_FAKE_DRIVER_ON_GPU=1 runs "
                    "the fake-driver cases anyway)")


@pytest.fixture(scope="module")
def fake_library_dir(tmp_path_factory):
    skip_unless_runnable()
    directory = tmp_path_factory.mktemp("fake_libcuda")
    try:
        harness.build(directory)
    except subprocess.CalledProcessError as error:
        pytest.fail(f"scripts/fake_libcuda.c does not compile:\n{error.stderr}")
    return directory


def environment(library_dir, **extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = python_path(str(TESTS))  # tests/ for the harness
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(library_dir), env.get("LD_LIBRARY_PATH", "")) if p)
    # CPU tensors stand in for device memory, and torch says device -1 for them.
    env["FAKE_CUDA_DEVICE"] = "-1"
    env.update(extra)
    return env


def tail(text: str, limit: int = 12000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


@pytest.mark.parametrize("reader", ["native", "python"])
def test_cases_under_the_fake_driver(native, fake_library_dir, tmp_path, reader):
    report = tmp_path / "cases.xml"
    command = [sys.executable, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider",
               f"--junitxml={report}", str(CASES)]
    env = environment(fake_library_dir, SWIFTLAUNCH_FAKE_CUDA="1", SWIFTLAUNCH_TENSOR_READER=reader)
    result = subprocess.run(command, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600)
    output = tail(result.stdout + result.stderr)
    # A crash leaves no report: the exit status says it, and pytest's faulthandler dump which case.
    if result.returncode < 0:
        pytest.fail(f"the cases crashed ({signal.Signals(-result.returncode).name}):\n{output}")
    assert result.returncode == 0, f"the cases failed (exit status {result.returncode}):\n{output}"
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {name: int(suite.get(name)) for name in ("tests", "failures", "errors", "skipped")}
    # Nothing may pass by not running: a lost environment variable would skip the whole module.
    assert counts["tests"] > 0 and counts["skipped"] == 0, f"{counts}\n{output}"


NO_DRIVER = textwrap.dedent("""
    import json

    import torch

    import swiftlaunch
    from fake_driver import harness, kernels

    native, _ = harness.configure_core()
    try:
        native.driver_info()
        load_error = None
    except RuntimeError as error:
        load_error = str(error)
    fast = swiftlaunch.fast(kernels.add_kernel)
    x, y, out = (torch.randn(64) for _ in range(3))
    args, kwargs = (x, y, out, 64), {"BLOCK": 64}
    harness.insert_stand_in(fast, args, kwargs, object(), device=x.get_device(), function=1)
    calls = []
    fast.fn.run = lambda *args, grid, warmup, **kwargs: calls.append(args) or "triton ran"
    result = fast[(1,)](*args, **kwargs)
    print(json.dumps({"load_error": load_error, "result": result, "triton_calls": len(calls),
                      "stats": swiftlaunch.stats()}))
""")


def test_driver_without_a_launch_function(native, tmp_path):
    # A libcuda.so.1 the core cannot use (no cuLaunchKernelEx): every call goes to Triton, counted as
    # "no CUDA driver", and `driver_info` says what is missing. A process of its own: the core loads
    # its driver once.
    skip_unless_runnable()
    harness.build(tmp_path, defines=("FAKE_CUDA_WITHOUT_LAUNCH",))
    result = subprocess.run([sys.executable, "-c", NO_DRIVER], cwd=TESTS.parent, env=environment(tmp_path),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, tail(result.stdout + result.stderr)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "cuLaunchKernelEx" in report["load_error"], report
    assert report["result"] == "triton ran" and report["triton_calls"] == 1, report
    assert (report["stats"]["hits"], report["stats"]["fallbacks"]) == (0, {"no CUDA driver": 1}), report
