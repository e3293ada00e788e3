"""GPU tests: skipped as a whole when no CUDA device is visible.

The test modules only import torch, triton and swiftlaunch at import time (no CUDA calls), so they are
still collected -- and reported as skipped -- on a machine without a GPU.
"""

from pathlib import Path

import pytest
import torch

import swiftlaunch

_HERE = Path(__file__).resolve().parent


def pytest_report_header(config):
    if not torch.cuda.is_available():
        return "swiftlaunch GPU tests: no CUDA device, tests/gpu is skipped"
    if swiftlaunch.native_available():
        native = "native core loaded"
    else:
        native = f"native core NOT loaded: {swiftlaunch.native_error()}"
    major, minor = torch.cuda.get_device_capability()
    return f"swiftlaunch GPU tests on {torch.cuda.get_device_name()} (sm{major}{minor}); {native}"


def pytest_collection_modifyitems(config, items):
    # This hook sees every collected item of the session, so only mark the ones under tests/gpu.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fresh_stats():
    """Zero swiftlaunch's counters so each test sees only its own hits, misses and fallbacks."""
    swiftlaunch.stats(reset=True)
