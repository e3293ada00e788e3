"""Fixtures the interpreted Helion cases share. Nothing here imports Triton: each case file checks
TRITON_INTERPRET=1 first, and Triton reads it when it is imported."""

import pytest


@pytest.fixture
def K():
    """The CPU kernel zoo, imported once the interpreter is on."""
    import helion_cpu_kernels

    return helion_cpu_kernels


@pytest.fixture
def installed(native):
    """`install()` for one test, with fresh counters; uninstalled after it, so no native table or learned
    entry outlives the test."""
    import swiftlaunch
    import swiftlaunch.helion as sl_helion

    assert sl_helion.install()
    swiftlaunch.stats(reset=True)
    yield
    sl_helion.uninstall()
    swiftlaunch.stats(reset=True)
