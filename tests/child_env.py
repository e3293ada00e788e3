"""The environment of a child Python process that must import the same swiftlaunch as the test process
(a source tree in development, the installed wheel on a GPU machine or in CI)."""

import os
from pathlib import Path


def python_path(*extra: str) -> str:
    import swiftlaunch

    paths = [str(Path(swiftlaunch.__file__).resolve().parents[1]), *extra, os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in paths if p)
