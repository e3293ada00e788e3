"""`swiftlaunch.helion.install()` without a GPU.

In this process: install/uninstall restore Helion exactly and are idempotent, and the gate refuses
an untested Helion version, a changed source of any Helion function the dispatch mirrors, and a
changed attribute layout, with one warning and nothing patched.

In a subprocess started with TRITON_INTERPRET=1 (`tests/interpreted/helion_dispatch_cases.py`):
Helion's real call path (prepared calls, generated host wrappers, launchers) with Triton's
interpreter on CPU tensors, the native dispatch in front of it; among those tests, the hypothesis
test that the native dispatch picks the wrapper Helion's own guard picks, or hands the call back.
Triton must be imported with the interpreter already on, hence the subprocess.
"""

import importlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
helion = pytest.importorskip("helion")

import swiftlaunch  # noqa: E402
import swiftlaunch.helion as sl_helion  # noqa: E402
from swiftlaunch import _helion_dispatch  # noqa: E402
from child_env import python_path

kernel_module = importlib.import_module("helion.runtime.kernel")
Kernel = kernel_module.Kernel
HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def core(native):
    yield
    sl_helion.uninstall()


@pytest.fixture
def installed():
    assert sl_helion.install()
    swiftlaunch.stats(reset=True)
    yield


def fallbacks():
    return swiftlaunch.stats()["fallbacks"]


# --- install / uninstall ---------------------------------------------------------------------------


def test_install_uninstall_idempotent_and_restore_exactly():
    original = Kernel.__dict__["__call__"]
    sl_helion.uninstall()
    assert Kernel.__dict__["__call__"] is original
    assert sl_helion.install() and sl_helion.install()
    shim = Kernel.__dict__["__call__"]
    assert shim is not original and shim.__wrapped__ is original
    assert sl_helion.installed()
    assert sl_helion.uninstall()
    assert not sl_helion.uninstall()
    assert Kernel.__dict__["__call__"] is original
    assert sl_helion.dispatch_stats()["tables"] == 0
    assert sl_helion.install()
    assert Kernel.__dict__["__call__"] is not original


def test_output_pool_without_cuda_stays_off():
    """The pool needs CUDA (streams, graph capture): without it install() still hooks, with the pool
    off, one warning and the reason counted."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present: tests/gpu/test_helion_pool.py covers the pool")
    with pytest.warns(RuntimeWarning, match="output pool stays off: no CUDA device"):
        assert sl_helion.install(output_pool=True)
    assert not sl_helion.pool_on() and sl_helion.pool_refusal() == "no CUDA device"
    assert fallbacks().get("helion: output pool off", 0) >= 1


def test_accelerate_is_a_deprecated_install(installed):
    with pytest.warns(DeprecationWarning, match="install"):
        assert sl_helion.accelerate(object()) is True


# --- the version and source gate -------------------------------------------------------------------


@pytest.fixture
def fresh_gate(monkeypatch):
    """Uninstalled, with counters zeroed."""
    sl_helion.uninstall()
    monkeypatch.delenv("SWIFTLAUNCH_ALLOW_UNTESTED", raising=False)
    swiftlaunch.stats(reset=True)
    return monkeypatch


def refused_install():
    original = Kernel.__dict__["__call__"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sl_helion.install() is False
    assert Kernel.__dict__["__call__"] is original, "a refused install patched Helion"
    assert not sl_helion.installed()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    return messages[0]


def test_untested_version_is_refused(fresh_gate):
    fresh_gate.setattr(helion, "__version__", "1.5.1", raising=False)
    message = refused_install()
    assert "helion 1.5.1 is not a tested version" in message
    assert fallbacks()[_helion_dispatch.VERSION_NOT_TESTED] == 1
    assert "1.5.1" in sl_helion.refusal()
    # The override lifts the version check only; the sources still match, so it installs.
    fresh_gate.setenv("SWIFTLAUNCH_ALLOW_UNTESTED", "1")
    assert sl_helion.install()
    sl_helion.uninstall()


def test_recorded_hashes_match_this_helion():
    assert _helion_dispatch.changed_sources() == []
    assert _helion_dispatch.layout_problem() == ""


@pytest.mark.parametrize("owner, name", [
    ("_PreparedCall", "matches"),
    ("Kernel", "reset"),
    ("BoundKernel", "set_config"),
    ("module", "_make_prepared_arg_guard"),
])
def test_changed_source_is_refused(fresh_gate, owner, name):
    target = kernel_module if owner == "module" else getattr(kernel_module, owner)
    original = getattr(target, name)

    def replacement(*args, **kwargs):
        return original(*args, **kwargs)

    fresh_gate.setattr(target, name, replacement)
    message = refused_install()
    assert "differs from the tested one" in message and name in message
    assert fallbacks()[_helion_dispatch.SOURCE_CHANGED] == 1


def test_changed_code_is_refused(fresh_gate):
    """Same function object, other code (what an in-place patch of the method does)."""
    method = Kernel._compute_is_distributed

    def other(self, args, *, dist_initialized=None):
        return False

    fresh_gate.setattr(method, "__code__", other.__code__)
    message = refused_install()
    assert "Kernel._compute_is_distributed" in message


def test_layout_change_is_refused(fresh_gate):
    fresh_gate.setattr(Kernel, "_reset_generation", 0, raising=False)
    message = refused_install()
    assert "Kernel defines _reset_generation" in message



# --- Helion's real path, interpreted -----------------------------------------------------------------


@pytest.mark.parametrize("cases", ["helion_dispatch_cases.py", "helion_native_run_cases.py", "helion_pool_cases.py"])
def test_interpreted_cases(cases):
    """Runs tests/interpreted/<cases> with Triton's interpreter on from the start."""
    environment = {**os.environ, "TRITON_INTERPRET": "1"}
    environment["PYTHONPATH"] = python_path()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging",
         str(HERE / "interpreted" / cases)],
        capture_output=True, text=True, cwd=HERE.parent, env=environment, timeout=1800)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    print(summary)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, summary
