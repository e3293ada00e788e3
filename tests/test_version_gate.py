"""The version gate, without a GPU: a GPU-verified Triton (3.6, 3.7, 3.9) runs natively; a CPU-checked one (3.8)
passes every call through with one warning saying so unless SWIFTLAUNCH_ALLOW_UNTESTED=1; an untested
one (3.4, 3.5, 3.10, ...) passes through and says why, and one without launch rules passes through
even with the override; missing features and configure errors pass through instead of raising from a
user's call. Runs against whichever Triton is installed (CI runs it against each supported release)."""

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
        from swiftlaunch import _runtime
    print(json.dumps({{
        "available": available, "error": swiftlaunch.native_error(), "kernels": kernels, "jit": jit_kind,
        "launcher": launcher_kind, "native_path": report.get("native_path"),
        "pass_through": swiftlaunch.stats().get("pass_through"), "rules": _runtime.rules_family,
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


def installed():
    """`(version, family)` of the installed Triton."""
    import triton

    from swiftlaunch import _runtime

    return triton.__version__, _runtime.triton_family(triton.__version__)


@pytest.fixture
def regate(monkeypatch):
    """Runs the gate again in this process under patched conditions, and restores the configured core
    afterwards (configuring twice is allowed: the core keeps every runtime it was given). The override
    is off unless a test sets it."""
    import warnings

    import swiftlaunch
    from swiftlaunch import _runtime

    monkeypatch.delenv("SWIFTLAUNCH_ALLOW_UNTESTED", raising=False)

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


def test_installed_version_by_default():
    from swiftlaunch import _runtime

    version, family = installed()
    result = probe()
    if family in _runtime.TESTED_TRITON:
        assert result["available"] and result["error"] == ""
        assert result["kernels"] == ["FastKernel"] * 3 and result["jit"] == "FastKernel"
        assert result["launcher"] == "Launcher" and result["native_path"] == "in use"
        assert result["pass_through"] is None and result["warnings"] == []
    else:
        assert family in _runtime.CPU_CHECKED_TRITON, f"CI runs only supported releases, not {version}"
        reason = (f"triton {version} is checked on CPU only, not yet on a GPU (GPU-verified: 3.6.x, 3.7.x, "
                  "3.9.x; SWIFTLAUNCH_ALLOW_UNTESTED=1 runs it natively)")
        assert not result["available"] and result["error"] == reason
        assert result["kernels"] == ["PassThroughKernel"] * 3 and result["jit"] == "PassThroughKernel"
        assert result["native_path"] == f"pass-through ({reason})" and result["pass_through"] == reason
        assert len(result["warnings"]) == 1 and reason in result["warnings"][0]


def test_installed_version_with_the_override():
    _, family = installed()
    result = probe(SWIFTLAUNCH_ALLOW_UNTESTED="1")
    assert result["available"] and result["error"] == ""
    assert result["kernels"] == ["FastKernel"] * 3 and result["jit"] == "FastKernel"
    assert result["launcher"] == "Launcher" and result["native_path"] == "in use"
    assert result["rules"] == family and result["warnings"] == []


def test_untested_version_passes_through_with_one_warning():
    result = probe('triton.__version__ = "3.5.1"')
    reason = ("triton 3.5.1 is not a tested version (tested: 3.6.x, 3.7.x, 3.9.x; CPU-checked: 3.8.x; "
              "SWIFTLAUNCH_ALLOW_UNTESTED=1 overrides)")
    assert not result["available"] and result["error"] == reason
    assert result["kernels"] == ["PassThroughKernel"] * 3 and result["jit"] == "PassThroughKernel"
    assert result["launcher"] == "function"  # Helion's own launcher behind a counting wrapper
    assert result["native_path"] == f"pass-through ({reason})" and result["pass_through"] == reason
    assert len(result["warnings"]) == 1 and reason in result["warnings"][0]


@pytest.mark.parametrize("version", ["3.4.0", "3.5.0", "3.5.1", "3.10.0", "3.60.0", "4.0.0", "nightly"])
def test_other_untested_versions_pass_through(regate, monkeypatch, version):
    import triton

    monkeypatch.setattr(triton, "__version__", version)
    available, error, warnings = regate()
    assert available == [False] * 3 and error.startswith(f"triton {version} is not a tested version")
    assert len(warnings) == 1 and error in warnings[0]


@pytest.mark.parametrize("version", ["3.4.0", "3.5.1", "3.10.0", "4.0.0"])
def test_no_launch_rules_pass_through_even_with_the_override(regate, monkeypatch, version):
    import triton

    monkeypatch.setattr(triton, "__version__", version)
    monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    available, error, warnings = regate()
    assert available == [False] * 3
    assert error == f"swiftlaunch has no launch rules for triton {version} (it has rules for 3.6.x, 3.7.x, 3.8.x, 3.9.x)"
    assert len(warnings) == 1


@pytest.mark.parametrize("version", ["3.8.0", "3.8.1", "3.8.0+git1234abc"])
def test_cpu_checked_versions_need_the_override(regate, monkeypatch, version):
    import triton

    monkeypatch.setattr(triton, "__version__", version)
    monkeypatch.delenv("SWIFTLAUNCH_ALLOW_UNTESTED", raising=False)
    available, error, warnings = regate()
    assert available == [False] * 3
    assert error == (f"triton {version} is checked on CPU only, not yet on a GPU (GPU-verified: 3.6.x, 3.7.x, "
                     "3.9.x; SWIFTLAUNCH_ALLOW_UNTESTED=1 runs it natively)")
    assert len(warnings) == 1


@pytest.mark.parametrize("version", ["3.6.0", "3.6.1", "3.7.0", "3.7.1", "3.9.0", "3.9.1", "3.9.0+git1234abc"])
def test_gpu_verified_versions_pass_the_version_check_without_the_override(regate, monkeypatch, version):
    import triton

    from swiftlaunch import _runtime

    installed_family = installed()[1]
    monkeypatch.setattr(triton, "__version__", version)
    monkeypatch.delenv("SWIFTLAUNCH_ALLOW_UNTESTED", raising=False)
    available, error, warnings = regate()
    # Another release's name on this Triton may still fail a feature check (3.9's fpsan knob on 3.6):
    # that is the feature checks' job; the version check itself lets every GPU-verified release by.
    assert "not a tested version" not in error and "checked on CPU only" not in error
    if _runtime.triton_family(version) == installed_family:
        assert (available, error, warnings) == ([True] * 3, "", [])


def test_a_patch_release_of_the_installed_version_runs_with_its_rules(regate, monkeypatch):
    import triton

    from swiftlaunch import _loader, _runtime

    version, family = installed()
    monkeypatch.setattr(triton, "__version__", f"{family}.99")
    if family not in _runtime.TESTED_TRITON:
        monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    assert regate() == ([True] * 3, "", [])
    assert _loader.native.rules() == family == _runtime.rules_family


def test_override_picks_each_releases_rules(regate, monkeypatch):
    """3.7 and 3.8 need nothing the installed Triton lacks, whatever it is: the gate picks their rules."""
    import triton

    from swiftlaunch import _loader

    monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    for version, family in (("3.7.1", "3.7"), ("3.8.0", "3.8")):
        monkeypatch.setattr(triton, "__version__", version)
        assert regate() == ([True] * 3, "", [])
        assert _loader.native.rules() == family


def test_3_9_rules_need_its_fpsan_knob(regate, monkeypatch):
    import triton

    _, family = installed()
    monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    monkeypatch.setattr(triton, "__version__", "3.9.0")
    available, error, _ = regate()
    if family == "3.9":
        assert available == [True] * 3 and error == ""
    else:  # an older Triton dressed up as 3.9 has no such knob: the core must not pretend to read it
        assert available == [False] * 3 and error == "triton 3.9.0: lacks fpsan_homomorphic_casts"


def test_3_9_fpsan_knob_must_be_tritons_env_bool(regate, monkeypatch):
    from triton import knobs

    version, family = installed()
    if family != "3.9":
        pytest.skip("triton 3.9's fpsan_homomorphic_casts knob")

    class Lookalike(knobs.env_bool):
        def __get__(self, obj, objclass):
            return True

    lookalike = Lookalike("TRITON_FPSAN_HOMOMORPHIC_CASTS")
    lookalike.name = "fpsan_homomorphic_casts"
    monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    owner = type(knobs.compilation)
    original = owner.__dict__["fpsan_homomorphic_casts"]  # getattr on the class would run its __get__
    owner.fpsan_homomorphic_casts = lookalike
    try:
        available, error, _ = regate()
    finally:
        owner.fpsan_homomorphic_casts = original
    assert available == [False] * 3
    assert error == f"triton {version}: fpsan_homomorphic_casts is not the env_bool knob the core reads"


def _override_for_installed(monkeypatch):
    from swiftlaunch import _runtime

    if installed()[1] not in _runtime.TESTED_TRITON:
        monkeypatch.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")


def test_missing_feature_passes_through(regate, monkeypatch):
    import triton._C.libtriton as lib

    _override_for_installed(monkeypatch)
    monkeypatch.delattr(lib, "native_specialize_impl")
    available, error, warnings = regate()
    assert available == [False] * 3 and error == f"triton {installed()[0]} has no native_specialize_impl"
    assert len(warnings) == 1


def test_missing_knob_passes_through(regate, monkeypatch):
    from triton import knobs

    _override_for_installed(monkeypatch)
    monkeypatch.delattr(type(knobs.runtime), "add_stages_inspection_hook")
    available, error, _ = regate()
    assert available == [False] * 3 and error == f"triton {installed()[0]} lacks add_stages_inspection_hook"


def test_configure_error_passes_through_instead_of_raising(regate, monkeypatch):
    import triton

    import swiftlaunch
    from swiftlaunch import _runtime
    from swiftlaunch.bench.kernels import add_kernel

    _override_for_installed(monkeypatch)

    def broken():
        raise AttributeError("no dtype table today")

    monkeypatch.setattr(_runtime, "triton_dtype_names", broken)
    available, error, warnings = regate()
    assert available == [False] * 3 and error == "configuring the core failed: AttributeError: no dtype table today"
    fresh = triton.jit(add_kernel.fn)  # a kernel no earlier test wrapped
    assert type(swiftlaunch.fast(fresh)).__name__ == "PassThroughKernel" and len(warnings) == 1


def test_knob_behind_a_descriptor_passes_through(regate, monkeypatch):
    from triton import knobs

    _override_for_installed(monkeypatch)

    class Descriptor:
        def __get__(self, obj, owner=None):
            return False

        def __set__(self, obj, value):
            raise AttributeError("read-only")

    monkeypatch.setattr(type(knobs.runtime), "debug", Descriptor())
    available, error, _ = regate()
    assert available == [False] * 3 and error == f"triton {installed()[0]} reads debug through a descriptor"
