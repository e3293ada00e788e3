"""Without the Swift core, `import swiftlaunch` works and every entry point defers to Triton."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    {setup}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import swiftlaunch
        import swiftlaunch  # a second import must not warn again
    sys.path.insert(0, {tests!r})
    from swiftlaunch.bench.kernels import add_kernel
    fast = swiftlaunch.fast(add_kernel)
    launcher = swiftlaunch.Launcher()
    print(json.dumps({{
        "available": swiftlaunch.native_available(),
        "error": swiftlaunch.native_error(),
        "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
        "fast": type(fast).__name__,
        "key": swiftlaunch.dispatch_key(add_kernel, 1, 2, 3, 4, BLOCK=8),
        "stats": swiftlaunch.stats(),
    }}))
    """
)


def run(setup="", env=None):
    tests = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(setup=setup, tests=tests)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


def test_disabled_by_environment():
    report = run(env={"SWIFTLAUNCH_DISABLE": "1"})
    assert report["available"] is False
    assert report["error"] == "disabled by SWIFTLAUNCH_DISABLE"
    assert len(report["warnings"]) == 1 and "SWIFTLAUNCH_DISABLE" in report["warnings"][0]
    assert report["fast"] == "PassThroughKernel"
    assert report["key"] is None
    assert report["stats"] == {"hits": 0, "misses": 0, "fallbacks": {}}


def test_native_module_that_fails_to_load():
    # A module entry of None makes `from . import _native` raise ImportError, as a broken .so would.
    report = run(setup="sys.modules['swiftlaunch._native'] = None")
    assert report["available"] is False
    assert report["error"].startswith("the Swift core failed to load")
    assert len(report["warnings"]) == 1
    assert report["fast"] == "PassThroughKernel"


def test_info_runs_without_gpu():
    result = subprocess.run([sys.executable, "-m", "swiftlaunch", "info"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for field in ("swiftlaunch:", "swift_core:", "python:", "torch:", "triton:", "helion:", "libcuda:"):
        assert field in result.stdout
