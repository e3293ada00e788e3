"""Helion kernels launched through swiftlaunch must compute what Helion's default launcher computes.

Helion's generated host wrapper takes a keyword-only ``_launcher`` (default: Helion's
``default_launcher``, which calls ``triton_kernel.run``). swiftlaunch plugs in there two ways:
``swiftlaunch.helion.accelerate(kernel)`` and passing ``_launcher=swiftlaunch.Launcher()`` to the
wrapper that ``BoundKernel.compile_config`` returns.
"""

import pytest
import torch

helion = pytest.importorskip("helion")
from helion.runtime import default_launcher  # noqa: E402

import swiftlaunch  # noqa: E402
import swiftlaunch.helion as sl_helion  # noqa: E402
from swiftlaunch.bench import kernels  # noqa: E402

from .helpers import assert_same, counters  # noqa: E402

kernels.load_helion()  # the benchmark's helion_* functions read helion.language when Helion traces them

N = 5000  # not a multiple of any block size used, so the kernels mask their last block


def make_add_kernel(block):
    """A fresh Helion kernel over the benchmark's ``helion_add``. Each test uses its own block size:
    Helion caches generated modules by source text, and accelerate() patches the module's host
    wrapper, so kernels with identical source would share one patched wrapper across tests."""
    return helion.kernel(kernels.helion_add, config=helion.Config(block_sizes=[block]), static_shapes=True)


def inputs():
    """(aligned x, aligned y, misaligned x, misaligned y), all of shape (N,), so one bound kernel."""
    g = torch.Generator(device="cuda").manual_seed(0)
    xb = torch.randn(N + 1, generator=g, device="cuda")
    yb = torch.randn(N + 1, generator=g, device="cuda")
    x, y, xm, ym = xb[:N], yb[:N], xb[1:], yb[1:]
    assert x.data_ptr() % 16 == 0 and xm.data_ptr() % 16 == 4
    return x, y, xm, ym


def test_accelerate_matches_default_launcher():
    x, y, xm, ym = inputs()
    kernel = make_add_kernel(1024)
    # References from Helion's own launcher; the first call also compiles the bound kernel, whose
    # host wrapper accelerate() then redirects (it works on wrappers compiled so far).
    expected = kernel(x, y)
    expected_misaligned = kernel(xm, ym)
    assert_same(expected, x + y, "Helion vs torch")
    assert_same(expected_misaligned, xm + ym, "Helion vs torch (misaligned)")

    sl_helion.accelerate(kernel)
    before = counters()
    assert_same(kernel(x, y), expected, "first accelerated call")
    assert_same(kernel(x, y), expected, "second accelerated call, same input")
    assert_same(kernel(xm, ym), expected_misaligned, "misaligned input after an aligned call")
    assert_same(kernel(x, y), expected, "aligned again")
    assert_same(kernel(xm, ym), expected_misaligned, "misaligned again")
    after = counters()
    # The launches went through swiftlaunch (repeats served natively), not through Helion's launcher.
    assert after[0] - before[0] >= 3, swiftlaunch.stats()


def test_accelerate_misaligned_first():
    x, y, xm, ym = inputs()
    kernel = make_add_kernel(512)
    # Compile (and get references) through Helion's own launcher first, for both inputs in case
    # Helion binds them separately; accelerate() brings a new Launcher whose first launch is then the
    # misaligned one.
    expected_misaligned = kernel(xm, ym)
    expected = kernel(x, y)
    sl_helion.accelerate(kernel)
    before = counters()
    for a, b, want in [(xm, ym, expected_misaligned), (x, y, expected), (xm, ym, expected_misaligned),
                       (x, y, expected)]:
        assert_same(kernel(a, b), want, "accelerated Helion add")
    after = counters()
    assert after[0] - before[0] >= 2, swiftlaunch.stats()


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
