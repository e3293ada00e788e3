"""What is installed: the optional pieces a stack needs, each with the reason it is missing."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Env:
    """The optional pieces, each with the reason it is missing (None when present)."""

    sl: Any = None  # the swiftlaunch package, when importable
    sl_error: str | None = None  # why swiftlaunch's native path cannot be measured
    native: Any = None  # swiftlaunch._native, when loaded
    helion: Any = None
    helion_error: str | None = None


def probe_env(want_helion: bool = True) -> Env:
    env = Env()
    try:
        env.sl = importlib.import_module("swiftlaunch")
    except Exception as e:  # noqa: BLE001 - a broken package must not stop the Triton/Helion rows
        env.sl_error = f"swiftlaunch does not import: {type(e).__name__}: {e}"
    if env.sl is not None:
        native_available = getattr(env.sl, "native_available", None)
        if native_available is None:
            env.sl_error = "swiftlaunch.native_available() is missing"
        elif not native_available():
            why = getattr(env.sl, "native_error", lambda: None)()
            env.sl_error = f"swiftlaunch native core not available ({why or 'no reason given'})"
        else:
            env.native = getattr(env.sl, "_native", None) or importlib.import_module("swiftlaunch._native")
    if want_helion:
        try:
            from . import kernels

            env.helion = kernels.load_helion()
        except Exception as e:  # noqa: BLE001 - e.g. helion 1.5.1 raises ImportError on torch 2.11
            env.helion_error = f"helion does not import: {type(e).__name__}: {e}"
    else:
        env.helion_error = "helion not requested"
    return env


def stats_for(env: Env) -> Callable[..., dict] | None:
    """swiftlaunch.stats when the native path is measured: it tells whether swiftlaunch stepped aside."""
    return getattr(env.sl, "stats", None) if env.sl is not None and not env.sl_error else None
