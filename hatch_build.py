"""Builds the Swift extension module during `pip install .` / `pip wheel .`.

Runs `swift build -c release` with the Swift runtime linked statically, so that the wheel's `.so`
loads on machines without Swift, and tags the wheel abi3 (one binary for CPython 3.10+).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

WHEEL_TAG = "cp310-abi3-linux_x86_64"


class SwiftBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        if not sys.platform.startswith("linux"):
            raise RuntimeError("swiftlaunch builds on Linux only (the CUDA launch path is Linux-only).")
        swift = shutil.which("swift")
        if swift is None:
            raise RuntimeError(
                "swiftlaunch needs the Swift toolchain (6.0 or newer) to build its native core, "
                "and `swift` is not on PATH. Install it from https://www.swift.org/install/ "
                "or use a prebuilt swiftlaunch wheel."
            )
        root = Path(self.root)
        include = sysconfig.get_paths()["include"]
        if not (Path(include) / "Python.h").exists():
            raise RuntimeError(f"Python.h not found in {include}: install your Python's development headers.")
        command = [
            swift, "build", "-c", "release", "--product", "SwiftLaunchNative",
            "-Xcc", f"-I{include}",
            # SwiftPM's --static-swift-stdlib is ignored for dynamic libraries; this is not.
            "-Xswiftc", "-static-stdlib",
            "-Xlinker", f"--version-script={root / 'exports.map'}",
            "-Xlinker", "--strip-all",
        ]
        self.app.display_info("swiftlaunch: " + " ".join(command))
        subprocess.run(command, cwd=root, check=True)
        bin_dir = subprocess.run(
            [swift, "build", "-c", "release", "--show-bin-path"], cwd=root, check=True,
            capture_output=True, text=True,
        ).stdout.strip()
        built = Path(bin_dir) / "libSwiftLaunchNative.so"
        target = root / "src" / "swiftlaunch" / "_native.abi3.so"
        shutil.copy2(built, target)
        build_data["force_include"][str(target)] = "swiftlaunch/_native.abi3.so"
        build_data["pure_python"] = False
        build_data["tag"] = WHEEL_TAG
