"""Helion kernels launched through swiftlaunch must compute what Helion's default launcher computes.

Helion's generated host wrapper takes a keyword-only ``_launcher`` (default: Helion's
``default_launcher``, which calls ``triton_kernel.run``). Here: ``_launcher=swiftlaunch.Launcher()``
passed to the wrapper that ``BoundKernel.compile_config`` returns. ``swiftlaunch.helion.install()``
(every kernel call through the native dispatch, which passes that launcher) is tested in
test_helion_dispatch.py.
"""

import pytest
import torch

helion = pytest.importorskip("helion")
from helion.runtime import default_launcher  # noqa: E402

import swiftlaunch  # noqa: E402
from swiftlaunch.bench import kernels  # noqa: E402

from .helpers import assert_same, counters  # noqa: E402

kernels.load_helion()  # the benchmark's helion_* functions read helion.language when Helion traces them

N = 5000  # not a multiple of any block size used, so the kernels mask their last block


def make_add_kernel(block):
    """A fresh Helion kernel over the benchmark's ``helion_add``, with its own block size (Helion
    caches generated modules by source text)."""
    return helion.kernel(kernels.helion_add, config=helion.Config(block_sizes=[block]), static_shapes=True)


def inputs():
    """(aligned x, aligned y, misaligned x, misaligned y), all of shape (N,), so one bound kernel."""
    g = torch.Generator(device="cuda").manual_seed(0)
    xb = torch.randn(N + 1, generator=g, device="cuda")
    yb = torch.randn(N + 1, generator=g, device="cuda")
    x, y, xm, ym = xb[:N], yb[:N], xb[1:], yb[1:]
    assert x.data_ptr() % 16 == 0 and xm.data_ptr() % 16 == 4
    return x, y, xm, ym


def test_launcher_passed_as_helion_launcher():
    x, y, xm, ym = inputs()
    kernel = make_add_kernel(256)
    bound = kernel.bind((x, y))
    # The generated host function: def helion_add(x, y, *, _launcher=_default_launcher).
    wrapper = bound.compile_config(helion.Config(block_sizes=[256]))
    expected = wrapper(x, y, _launcher=default_launcher)
    expected_misaligned = wrapper(xm, ym, _launcher=default_launcher)
    assert_same(expected, x + y, "Helion vs torch")
    assert_same(expected_misaligned, xm + ym, "Helion vs torch (misaligned)")

    launch = swiftlaunch.Launcher()
    before = counters()
    for i in range(3):
        assert_same(wrapper(x, y, _launcher=launch), expected, f"Launcher call {i}")
    assert_same(wrapper(xm, ym, _launcher=launch), expected_misaligned, "Launcher, misaligned input")
    assert_same(wrapper(x, y, _launcher=launch), expected, "Launcher, aligned again")
    after = counters()
    # Misses for the first aligned and the first misaligned call; the other three are native hits.
    assert after[0] - before[0] == 3, swiftlaunch.stats()
