"""Shared helpers for the GPU differential tests.

The pattern everywhere: build the arguments once, launch through Triton itself on fresh output buffers,
launch through swiftlaunch on other fresh output buffers, and compare the outputs bit for bit (the same
source and options give the same binary, so even floating-point results must be identical). Errors are
compared the same way: Triton runs first, and swiftlaunch must raise the same type with the same message.
"""

import math

import pytest
import torch

import swiftlaunch


def cuda_capability():
    # Evaluated at import time for skip markers, so it must not touch CUDA when there is none.
    return torch.cuda.get_device_capability() if torch.cuda.is_available() else (0, 0)


needs_sm90 = pytest.mark.skipif(cuda_capability() < (9, 0), reason="needs sm90 (Hopper) or newer")

# --- the three ways of launching a kernel -------------------------------------------------------------

SWIFT_RUNNERS = ("fast", "jit")

# Keyed by id(kernel); the kernel is kept in the value so its id cannot be reused by another object.
_FAST = {}
_TWIN = {}


def fast(kernel):
    """One ``swiftlaunch.fast`` wrapper per kernel, so its native cache persists across calls."""
    entry = _FAST.get(id(kernel))
    if entry is None:
        entry = _FAST[id(kernel)] = (kernel, swiftlaunch.fast(kernel))
    return entry[1]


def twin(kernel):
    """An independent ``swiftlaunch.jit`` kernel made from the same Python function and jit options."""
    entry = _TWIN.get(id(kernel))
    if entry is None:
        made = swiftlaunch.jit(
            kernel.fn,
            do_not_specialize=kernel.do_not_specialize or None,
            do_not_specialize_on_alignment=kernel.do_not_specialize_on_alignment or None,
            debug=kernel.debug,
        )
        entry = _TWIN[id(kernel)] = (kernel, made)
    return entry[1]


def launcher(kernel, runner):
    if runner == "triton":
        return kernel
    if runner == "fast":
        return fast(kernel)
    if runner == "jit":
        return twin(kernel)
    raise ValueError(runner)


# --- arguments ----------------------------------------------------------------------------------------


class Out:
    """An output argument: every launch gets its own buffer.

    The buffer is ``offset`` elements into a fresh allocation (the caching allocator hands out 512-byte
    aligned blocks), so ``offset * element_size % 16`` decides whether Triton sees it as 16-byte aligned.
    It starts filled with ``fill`` so that elements a kernel does not write compare equal too.
    """

    def __init__(self, shape, dtype, offset=0, fill=77):
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.dtype = dtype
        self.offset = offset
        self.fill = fill

    def make(self):
        numel = math.prod(self.shape)
        base = torch.full((numel + self.offset,), self.fill, dtype=self.dtype, device="cuda")
        return base[self.offset:].view(self.shape)

    def __repr__(self):
        return f"Out({self.shape}, {self.dtype}, offset={self.offset})"


def view_at(base, n, offset):
    """``n`` elements of ``base`` starting ``offset`` elements in (an unaligned view for odd offsets)."""
    return base[offset:offset + n]


def materialize(args, kwargs):
    outs = []

    def real(value):
        if isinstance(value, Out):
            value = value.make()
            outs.append(value)
        return value

    return [real(a) for a in args], {k: real(v) for k, v in kwargs.items()}, outs


def call(kernel_like, grid, args, kwargs=None):
    """Launch once on fresh outputs, letting exceptions propagate; returns the outputs."""
    args, kwargs, outs = materialize(args, kwargs or {})
    kernel_like[grid](*args, **kwargs)
    return outs


def run(kernel_like, grid, args, kwargs=None):
    """Launch once on fresh outputs; returns (outputs, exception or None, return value)."""
    args, kwargs, outs = materialize(args, kwargs or {})
    try:
        result = kernel_like[grid](*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the exception itself is what gets compared
        return outs, exc, None
    return outs, None, result


# --- comparison ---------------------------------------------------------------------------------------

_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits(t):
    """The tensor reinterpreted as integers, so NaNs and signed zeros compare exactly."""
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        return t.view(_SAME_SIZE_INT[t.element_size()])
    return t


def assert_same(actual, expected, what=""):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, (
        f"{what}: {actual.dtype}{tuple(actual.shape)} vs {expected.dtype}{tuple(expected.shape)}")
    a, e = bits(actual), bits(expected)
    if not torch.equal(a, e):
        where = (a != e).nonzero()[:5].tolist()
        raise AssertionError(
            f"{what}: outputs differ at {where}: got {actual.flatten()[:8].tolist()}, "
            f"Triton gave {expected.flatten()[:8].tolist()}")


def assert_same_error(actual, expected, what=""):
    """Both None, or the same exception type with the same message."""
    if expected is None:
        assert actual is None, f"{what}: Triton did not raise, swiftlaunch raised {actual!r}"
        return
    assert actual is not None, f"{what}: Triton raised {expected!r}, swiftlaunch did not"
    assert type(actual) is type(expected), f"{what}: raised {actual!r}, Triton raised {expected!r}"
    assert str(actual) == str(expected), f"{what}: raised {actual!r}, Triton raised {expected!r}"


def counters():
    """(hits, misses, total fallbacks) right now."""
    s = swiftlaunch.stats()
    return s["hits"], s["misses"], sum(s["fallbacks"].values())


def check_differential(kernel, grid, args, kwargs=None, *, runners=SWIFT_RUNNERS, expect_hit=True,
                       outputs_undefined_on_error=False):
    """Launch through Triton, then twice through each swiftlaunch runner, and compare everything.

    The second launch through a runner repeats the first one's arguments, so (where ``expect_hit`` and
    Triton accepted the call) it must be served by the native fast path: exactly one more hit.
    Outputs are compared even when Triton raised (it must not have launched, or launched the same way),
    except with ``outputs_undefined_on_error``. Returns Triton's outputs.
    """
    kwargs = kwargs or {}
    expected, expected_exc, _ = run(kernel, grid, args, kwargs)
    for name in runners:
        fn = launcher(kernel, name)
        first, first_exc, _ = run(fn, grid, args, kwargs)
        before = counters()
        second, second_exc, _ = run(fn, grid, args, kwargs)
        after = counters()
        for label, outs, exc in (("first", first, first_exc), ("second", second, second_exc)):
            what = f"{name} ({label} launch) of {kernel.fn.__name__}"
            assert_same_error(exc, expected_exc, what)
            if expected_exc is not None and outputs_undefined_on_error:
                continue
            for i, (got, want) in enumerate(zip(outs, expected)):
                assert_same(got, want, f"{what}, output {i}")
        if expect_hit and expected_exc is None:
            assert after[0] - before[0] == 1, (
                f"{name}: a repeated launch of {kernel.fn.__name__} was not a fast-path hit: "
                f"{swiftlaunch.stats()}")
    return expected
