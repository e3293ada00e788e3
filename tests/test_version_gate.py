"""The version gate, without a GPU: an untested Triton passes every call through with one warning and
says why; the override turns the core back on; missing features and configure errors pass through
instead of raising from a user's call."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = """
    import json, sys, warnings
    sys.path.insert(0, "tests")
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import triton
        {prepare}
        import swiftlaunch
        from swiftlaunch import info
        from swiftlaunch.bench.kernels import add_kernel
        available = swiftlaunch.native_available()
        kernels = [type(swiftlaunch.fast(add_kernel)).__name__ for _ in range(3)]
        jit_kind = type(swiftlaunch.jit(add_kernel.fn)._swiftlaunch_kernel()).__name__
        launcher_kind = type(swiftlaunch.Launcher()).__name__
        report = info.collect()
    print(json.dumps({{
        "available": available, "error": swiftlaunch.native_error(), "kernels": kernels, "jit": jit_kind,
        "launcher": launcher_kind, "native_path": report.get("native_path"),
        "pass_through": swiftlaunch.stats().get("pass_through"),
        "warnings": [str(w.message) for w in caught if "swiftlaunch" in str(w.message)],
    }}))
"""


def probe(prepare="", **env):
    environment = {key: value for key, value in os.environ.items() if key != "SWIFTLAUNCH_ALLOW_UNTESTED"}
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE.format(prepare=prepare))], capture_output=True,
                         text=True, env={**environment, **env}, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.fixture(autouse=True)
def needs_core(native):
    return native


@pytest.fixture
def regate(monkeypatch):
    """Runs the gate again in this process under patched conditions, and restores the configured core
    afterwards (configuring twice is allowed: the core keeps every runtime it was given)."""
    import warnings

    import swiftlaunch
    from swiftlaunch import _runtime

    def run():
        _runtime._configured = False
        _runtime.pass_through_reason = ""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            available = [swiftlaunch.native_available() for _ in range(3)]
        return available, swiftlaunch.native_error(), [str(w.message) for w in caught]

    yield run
    monkeypatch.undo()
    _runtime._configured = False
    _runtime.pass_through_reason = ""
    assert _runtime.ensure_configured()


def test_tested_version_runs_natively():
    result = probe()
    assert result["available"] and result["error"] == ""
    assert result["kernels"] == ["FastKernel"] * 3 and result["jit"] == "FastKernel"
    assert result["launcher"] == "Launcher" and result["native_path"] == "in use"
    assert result["pass_through"] is None and result["warnings"] == []


def test_untested_version_passes_through_with_one_warning():
    result = probe('triton.__version__ = "3.5.1"')
    reason = "triton 3.5.1 is not a tested version (tested: 3.6.x; SWIFTLAUNCH_ALLOW_UNTESTED=1 overrides)"
    assert not result["available"] and result["error"] == reason
    assert result["kernels"] == ["PassThroughKernel"] * 3 and result["jit"] == "PassThroughKernel"
    assert result["launcher"] == "function"  # Helion's own launcher behind a counting wrapper
    assert result["native_path"] == f"pass-through ({reason})" and result["pass_through"] == reason
    assert len(result["warnings"]) == 1 and reason in result["warnings"][0]


@pytest.mark.parametrize("version", ["3.4.0", "3.7.1", "3.8.0", "3.9.0", "3.60.0", "4.0.0"])
def test_other_untested_versions_pass_through(regate, monkeypatch, version):
    import triton

    monkeypatch.setattr(triton, "__version__", version)
    available, error, warnings = regate()
    assert available == [False] * 3 and error.startswith(f"triton {version} is not a tested version")
    assert len(warnings) == 1 and error in warnings[0]


def test_a_patch_release_of_a_tested_version_runs_natively(regate, monkeypatch):
    import triton

    monkeypatch.setattr(triton, "__version__", "3.6.1")
    assert regate() == ([True] * 3, "", [])


def test_override_runs_an_untested_version_natively(regate, monkeypatch):
    import triton

    monkeypatch.setattr(triton, "__version__", "3.9.0")
    monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    assert regate() == ([True] * 3, "", [])


def test_missing_feature_passes_through(regate, monkeypatch):
    import triton._C.libtriton as lib

    monkeypatch.delattr(lib, "native_specialize_impl")
    available, error, warnings = regate()
    assert available == [False] * 3 and error == "triton 3.6.0 has no native_specialize_impl"
    assert len(warnings) == 1


def test_missing_knob_passes_through(regate, monkeypatch):
    from triton import knobs

    monkeypatch.delattr(type(knobs.runtime), "add_stages_inspection_hook")
    available, error, _ = regate()
    assert available == [False] * 3 and error == "triton 3.6.0 lacks add_stages_inspection_hook"


def test_configure_error_passes_through_instead_of_raising(regate, monkeypatch):
    import triton

    import swiftlaunch
    from swiftlaunch import _runtime
    from swiftlaunch.bench.kernels import add_kernel

    def broken():
        raise AttributeError("no dtype table today")

    monkeypatch.setattr(_runtime, "triton_dtype_names", broken)
    available, error, warnings = regate()
    assert available == [False] * 3 and error == "configuring the core failed: AttributeError: no dtype table today"
    fresh = triton.jit(add_kernel.fn)  # a kernel no earlier test wrapped
    assert type(swiftlaunch.fast(fresh)).__name__ == "PassThroughKernel" and len(warnings) == 1


def test_knob_behind_a_descriptor_passes_through(regate, monkeypatch):
    from triton import knobs

    class Descriptor:
        def __get__(self, obj, owner=None):
            return False

        def __set__(self, obj, value):
            raise AttributeError("read-only")

    monkeypatch.setattr(type(knobs.runtime), "debug", Descriptor())
    available, error, _ = regate()
    assert available == [False] * 3 and error == "triton 3.6.0 reads debug through a descriptor"
