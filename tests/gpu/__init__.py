"""GPU tests for swiftlaunch (a package so the test modules can share kernels.py and helpers.py)."""
