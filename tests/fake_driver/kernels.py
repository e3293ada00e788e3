"""Kernels for the fake-driver tests: Triton reads their source, so they live in a real file. None
is ever compiled or run."""

import triton
import triton.language as tl

import swiftlaunch


@triton.jit
def add_kernel(x, y, out, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out + offsets, tl.load(x + offsets, mask=mask) + tl.load(y + offsets, mask=mask), mask=mask)


# Every scalar conversion of Triton's launcher: plain int / float / bool, annotated ints of several
# widths, fp16 and bf16, a do_not_specialize int, a runtime parameter with a default.
@triton.jit(do_not_specialize=["d"])
def scalars_kernel(out, i, f, b, a: tl.int32, h: tl.float16, bf: tl.bfloat16, u: tl.uint8, w: tl.int64,
                   d, s=2.5, BLOCK: tl.constexpr = 16):
    tl.store(out + tl.arange(0, BLOCK), i + f + b + a + h + bf + u + w + d + s)


G = tl.constexpr(3)


@triton.jit
def global_kernel(x, out, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out + offsets, tl.load(x + offsets, mask=mask) * G, mask=mask)


class CountedNe:
    """A captured global whose `!=` is Python code that counts its calls."""

    calls = 0

    def __init__(self, value):
        self.value = value

    def __ne__(self, other):
        CountedNe.calls += 1
        return self.value != getattr(other, "value", other)

    def __deepcopy__(self, memo):
        return CountedNe(self.value)


SCALE = CountedNe(2)
NAN = float("nan")


@triton.jit
def counted_global_kernel(x, out, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out + offsets, tl.load(x + offsets, mask=offsets < n) * SCALE.value, mask=offsets < n)


@triton.jit
def nan_global_kernel(x, out, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out + offsets, tl.load(x + offsets, mask=offsets < n) * NAN, mask=offsets < n)


jit_add_kernel = swiftlaunch.jit(add_kernel.fn)


# An annotation the core has no packing for: swiftlaunch.fast hands the kernel to Triton whole.
@triton.jit
def fp8_scalar_kernel(out, v: tl.float8e5):
    tl.store(out, v)
