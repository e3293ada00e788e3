"""`python -m swiftlaunch info`: what a bug report needs."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

from . import __version__, _loader


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def collect() -> dict:
    """Everything `info` prints, as a dict (the benchmark records it too)."""
    report = {
        "swiftlaunch": __version__,
        "swift_core": "loaded" if _loader.native is not None else f"not loaded ({_loader.reason})",
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "torch": _version("torch"),
        "triton": _version("triton"),
        "helion": _version("helion"),
    }
    native = _loader.native
    if native is None:
        report["libcuda"] = "not checked (no Swift core)"
        return report
    from . import _runtime

    try:
        native_path = _runtime.ensure_configured()
        report["native_path"] = "in use" if native_path else f"pass-through ({_runtime.pass_through_reason})"
        if native_path:
            family = _runtime.rules_family
            checked = "GPU-verified" if family in _runtime.TESTED_TRITON else "checked on CPU only"
            report["triton_rules"] = f"{family} ({checked})"
        report["tensor_reader"] = _runtime.reader_status
        report["captured_globals"] = _runtime.constexpr_status
    except ImportError as error:  # torch or Triton missing: nothing to configure yet
        report["native_path"] = f"not configured ({error})"
    try:
        driver = native.driver_info()
    except RuntimeError as error:
        report["libcuda"] = f"not usable: {error}"
        return report
    report["libcuda"] = driver["library"]
    version = driver["version"]
    report["driver_version"] = f"CUDA {version // 1000}.{version % 1000 // 10} ({version})"
    report["gpus"] = [
        f"{index}: {name}, sm_{major}{minor}, {memory / 2**30:.1f} GiB"
        for index, (name, major, minor, memory) in enumerate(driver["devices"])
    ] or ["none"]
    return report


def main() -> int:
    for key, value in collect().items():
        if isinstance(value, list):
            print(f"{key}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{key}: {value}")
    return 0
