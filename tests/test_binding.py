"""Binding limits of the native call path, without a GPU: more options than a call can hold step
aside instead of writing past the call's buffer, and keyword plans bind by name whatever the order."""

import pytest
import torch

import swiftlaunch
from swiftlaunch.bench.kernels import add_kernel


@pytest.fixture
def kernel_with_implicit_options(native):
    from swiftlaunch import _triton

    names, traits, defaults = _triton.parameter_tables(add_kernel)
    implicit = tuple((f"implicit_{i}", i) for i in range(8))
    return native.Kernel(add_kernel, lambda *a: None, names, traits, defaults, implicit)


def key(kernel, **options):
    x = torch.zeros(16)
    return kernel.key(0, x, x, x, 16, BLOCK=16, **options)


def test_implicit_options_never_overflow_the_option_buffer(kernel_with_implicit_options):
    # 24 keyword options + 8 implicit ones fill the 32 slots a call has; one more must step aside.
    fits = {f"option_{i}": i for i in range(24)}
    assert isinstance(key(kernel_with_implicit_options, **fits), bytes)
    assert key(kernel_with_implicit_options, **fits, one_more=1) is None


def test_many_keyword_options_step_aside(native):
    fast = swiftlaunch.fast(add_kernel)
    assert key(fast, **{f"option_{i}": i for i in range(31)}) is not None
    assert key(fast, **{f"option_{i}": i for i in range(40)}) is None
    assert key(fast, **{f"option_{i}": i for i in range(100)}) is None


def test_keyword_plans_bind_by_name(native):
    fast = swiftlaunch.fast(add_kernel)
    x, y, out = torch.zeros(16), torch.zeros(16)[1:], torch.zeros(16)
    by_position = fast.key(0, out, x, y, 16, BLOCK=16)
    orders = [dict(out_ptr=out, x_ptr=x, y_ptr=y, n=16, BLOCK=16), dict(BLOCK=16, n=16, y_ptr=y, x_ptr=x, out_ptr=out),
              dict(x_ptr=x, out_ptr=out, BLOCK=16, y_ptr=y, n=16)]
    for _ in range(3):  # alternating call sites: each keyword tuple gets its own plan in turn
        for kwargs in orders:
            assert fast.key(0, **kwargs) == by_position
    assert fast.key(0, out, x, y_ptr=y, n=16, BLOCK=16) == by_position
    assert fast.key(0, out, y, y_ptr=x, n=16, BLOCK=16) != by_position  # alignment of x differs
