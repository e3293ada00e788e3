"""Loads the Swift core, or records why it is not used.

`import swiftlaunch` never fails for lack of it: without the core every entry point defers to
Triton or Helion unchanged, after one warning.
"""

from __future__ import annotations

import os
import warnings

native = None
reason = ""

if os.environ.get("SWIFTLAUNCH_DISABLE", "") not in ("", "0"):
    reason = "disabled by SWIFTLAUNCH_DISABLE"
else:
    try:
        from . import _native as native  # type: ignore[attr-defined,no-redef]
    except ImportError as error:  # a missing or unloadable .so
        native = None
        reason = f"the Swift core failed to load: {error}"

if native is None:
    warnings.warn(
        f"swiftlaunch: {reason}; kernels launch through Triton/Helion unchanged.",
        RuntimeWarning,
        stacklevel=2,
    )
