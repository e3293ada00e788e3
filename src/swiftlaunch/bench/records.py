"""What a results.json records besides the figures: the machine, the card, the driver, the versions."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .environment import Env
from .messages import first_line
from .timing import Settings


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver_version() -> str | None:
    # torch does not expose the driver version; nvidia-smi has it, else ask libcuda for its API level.
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import ctypes

        version = ctypes.c_int()
        if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(version)) == 0:
            return f"CUDA driver API {version.value // 1000}.{version.value % 1000 // 10}"
    except OSError:
        pass
    return None


def _version(dist: str, module: Any = None) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - not installed as a distribution (e.g. run from a checkout)
        return getattr(module, "__version__", None)


def _swiftlaunch_info(env: Env) -> Any:
    """What ``python -m swiftlaunch info`` reports (driver, GPUs), when swiftlaunch imports."""
    if env.sl is None:
        return None
    try:
        return importlib.import_module("swiftlaunch.info").collect()
    except Exception as e:  # noqa: BLE001 - a record, not a requirement
        return f"swiftlaunch.info.collect() failed: {type(e).__name__}: {first_line(e)}"


def machine_record(cuda: bool, env: Env) -> dict[str, Any]:
    record: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "cuda_available": torch.cuda.is_available(),
    }
    if cuda:
        index = torch.cuda.current_device()
        record.update(
            card=torch.cuda.get_device_name(index),
            capability=".".join(map(str, torch.cuda.get_device_capability(index))),
            driver=_driver_version(),
            cuda_runtime=torch.version.cuda,
        )
    record["swiftlaunch_info"] = _swiftlaunch_info(env)
    return record


def versions_record(env: Env) -> dict[str, Any]:
    import triton

    return {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "helion": _version("helion", env.helion) if env.helion is not None else None,
        "swiftlaunch": _version("swiftlaunch", env.sl),
        "swiftlaunch_native": "loaded" if env.native is not None else env.sl_error,
    }


def header(mode: str, kernels: list[str], stacks: dict[str, str], settings: Settings, env: Env,
           cuda: bool) -> dict[str, Any]:
    """The start of every results dict: machine, versions, settings, and ``stacks`` (name -> what one
    call of it is)."""
    return {
        "schema": 1,
        "mode": mode,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_record(cuda, env),
        "versions": versions_record(env),
        "settings": {
            "kernels": kernels,
            "stacks": list(stacks),
            "cpu_only_calls": settings.calls,
            "wall_sync_calls": settings.wall_calls,
            "reps": settings.reps,
            "warmup": settings.warmup,
        },
        "stacks": dict(stacks),
    }
