"""Kernels for the CPU tests alone (Triton needs them in a real source file). Never launched here. The
vector add they also key is the benchmark's, ``swiftlaunch.bench.kernels.add_kernel``."""

import triton
import triton.language as tl


@triton.jit
def mixed_kernel(a, b, c, d, e, f, g, h):
    pass


@triton.jit(do_not_specialize=["d"], do_not_specialize_on_alignment=["e"])
def flags_kernel(a, b, c, d, e, f: tl.int32, g: tl.float16, h: tl.constexpr):
    pass


@triton.jit
def keyword_only_kernel(x, y, *, n, BLOCK: tl.constexpr = 16):
    pass


@triton.jit
def var_positional_kernel(x, *rest):
    pass
