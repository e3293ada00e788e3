"""The Triton and Helion kernels of ``python -m swiftlaunch bench``, defined once: the GPU tests
(``tests/gpu``) and the profiling scripts launch these same objects.

Triton reads a kernel's source from its file, so every kernel here is a plain module-level
``@triton.jit`` function, the 64-argument one included (written out in full on purpose).

Conventions that keep the benchmark's call sites identical across stacks:
- the output pointer is always the *first* argument, so every launching stack calls
  ``kernel[grid](out, *inputs_and_scalars, **constexprs)`` with a fresh ``out``;
- shapes are static and grids are tuples (what Helion generates with static shapes).

The ``helion_*`` functions are the same computations written for Helion. They are left
undecorated: ``bench`` wraps each one with ``helion.kernel(config=..., static_shapes=True)``
once per stack, so that accelerating one Helion kernel object cannot leak into the plain
``helion`` stack.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# helion.language, set by load_helion(). Helion is optional and takes seconds to import, so it is
# imported only when a Helion stack runs; the helion_* functions look ``hl`` up when Helion traces
# them, which is after load_helion().
hl = None


def load_helion():
    """Imports Helion for the ``helion_*`` functions and returns the ``helion`` module; raises
    whatever Helion's import raises (helion 1.5.1, for one, does not import on torch 2.11)."""
    global hl
    import helion
    import helion.language

    hl = helion.language
    return helion


# --- Triton kernels ------------------------------------------------------------------------


@triton.jit
def add_kernel(out_ptr, x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    """out = x + y over a flat vector."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x + y, mask=mask)


@triton.jit
def add2d_kernel(
    out_ptr,
    x_ptr,
    y_ptr,
    M,
    N,
    stride_om,
    stride_xm,
    stride_ym,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """out = x + y over a row-major matrix (unit column stride), on a 2-D grid."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    x = tl.load(x_ptr + rows[:, None] * stride_xm + cols[None, :], mask=mask)
    y = tl.load(y_ptr + rows[:, None] * stride_ym + cols[None, :], mask=mask)
    tl.store(out_ptr + rows[:, None] * stride_om + cols[None, :], x + y, mask=mask)


@triton.jit
def scalar_args_kernel(out_ptr, x_ptr, n, alpha, beta, flag, BLOCK: tl.constexpr):
    """out = x + alpha * beta if flag else x: one float, one int and one bool at run time."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    if flag:
        x = x + alpha * beta
    tl.store(out_ptr + offs, x, mask=mask)


@triton.jit
def softmax_kernel(out_ptr, x_ptr, n_cols, stride_om, stride_xm, BLOCK: tl.constexpr):
    """Row softmax, one program per row; BLOCK >= n_cols."""
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_xm + cols, mask=mask, other=-float("inf"))
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    tl.store(out_ptr + row * stride_om + cols, num / tl.sum(num, axis=0), mask=mask)


@triton.jit
def matmul_kernel(
    c_ptr,
    a_ptr,
    b_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    stride_cn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """c = a @ b with tl.dot, fp32 accumulation, one BLOCK_M x BLOCK_N tile per program."""
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_left = K - k0
        a = tl.load(a_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(offs_k[:, None] < k_left) & (offs_n[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    c_mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=c_mask)


# Many tensor arguments: out = x0 + x1 + ..., with 4, 16 and 64 tensor arguments in all
# (the output included). The point is the per-argument host cost, not the arithmetic.


@triton.jit
def sum4_kernel(
    out_ptr, x0, x1, x2,
    n,
    BLOCK: tl.constexpr,
):
    """out = x0 + x1 + ... + x2: 4 tensor arguments in all."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.load(x0 + offs, mask=mask)
    acc += tl.load(x1 + offs, mask=mask)
    acc += tl.load(x2 + offs, mask=mask)
    tl.store(out_ptr + offs, acc, mask=mask)


@triton.jit
def sum16_kernel(
    out_ptr, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14,
    n,
    BLOCK: tl.constexpr,
):
    """out = x0 + x1 + ... + x14: 16 tensor arguments in all."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.load(x0 + offs, mask=mask)
    acc += tl.load(x1 + offs, mask=mask)
    acc += tl.load(x2 + offs, mask=mask)
    acc += tl.load(x3 + offs, mask=mask)
    acc += tl.load(x4 + offs, mask=mask)
    acc += tl.load(x5 + offs, mask=mask)
    acc += tl.load(x6 + offs, mask=mask)
    acc += tl.load(x7 + offs, mask=mask)
    acc += tl.load(x8 + offs, mask=mask)
    acc += tl.load(x9 + offs, mask=mask)
    acc += tl.load(x10 + offs, mask=mask)
    acc += tl.load(x11 + offs, mask=mask)
    acc += tl.load(x12 + offs, mask=mask)
    acc += tl.load(x13 + offs, mask=mask)
    acc += tl.load(x14 + offs, mask=mask)
    tl.store(out_ptr + offs, acc, mask=mask)


@triton.jit
def sum64_kernel(
    out_ptr, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18,
    x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31, x32, x33, x34, x35, x36, x37,
    x38, x39, x40, x41, x42, x43, x44, x45, x46, x47, x48, x49, x50, x51, x52, x53, x54, x55, x56,
    x57, x58, x59, x60, x61, x62,
    n,
    BLOCK: tl.constexpr,
):
    """out = x0 + x1 + ... + x62: 64 tensor arguments in all."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.load(x0 + offs, mask=mask)
    acc += tl.load(x1 + offs, mask=mask)
    acc += tl.load(x2 + offs, mask=mask)
    acc += tl.load(x3 + offs, mask=mask)
    acc += tl.load(x4 + offs, mask=mask)
    acc += tl.load(x5 + offs, mask=mask)
    acc += tl.load(x6 + offs, mask=mask)
    acc += tl.load(x7 + offs, mask=mask)
    acc += tl.load(x8 + offs, mask=mask)
    acc += tl.load(x9 + offs, mask=mask)
    acc += tl.load(x10 + offs, mask=mask)
    acc += tl.load(x11 + offs, mask=mask)
    acc += tl.load(x12 + offs, mask=mask)
    acc += tl.load(x13 + offs, mask=mask)
    acc += tl.load(x14 + offs, mask=mask)
    acc += tl.load(x15 + offs, mask=mask)
    acc += tl.load(x16 + offs, mask=mask)
    acc += tl.load(x17 + offs, mask=mask)
    acc += tl.load(x18 + offs, mask=mask)
    acc += tl.load(x19 + offs, mask=mask)
    acc += tl.load(x20 + offs, mask=mask)
    acc += tl.load(x21 + offs, mask=mask)
    acc += tl.load(x22 + offs, mask=mask)
    acc += tl.load(x23 + offs, mask=mask)
    acc += tl.load(x24 + offs, mask=mask)
    acc += tl.load(x25 + offs, mask=mask)
    acc += tl.load(x26 + offs, mask=mask)
    acc += tl.load(x27 + offs, mask=mask)
    acc += tl.load(x28 + offs, mask=mask)
    acc += tl.load(x29 + offs, mask=mask)
    acc += tl.load(x30 + offs, mask=mask)
    acc += tl.load(x31 + offs, mask=mask)
    acc += tl.load(x32 + offs, mask=mask)
    acc += tl.load(x33 + offs, mask=mask)
    acc += tl.load(x34 + offs, mask=mask)
    acc += tl.load(x35 + offs, mask=mask)
    acc += tl.load(x36 + offs, mask=mask)
    acc += tl.load(x37 + offs, mask=mask)
    acc += tl.load(x38 + offs, mask=mask)
    acc += tl.load(x39 + offs, mask=mask)
    acc += tl.load(x40 + offs, mask=mask)
    acc += tl.load(x41 + offs, mask=mask)
    acc += tl.load(x42 + offs, mask=mask)
    acc += tl.load(x43 + offs, mask=mask)
    acc += tl.load(x44 + offs, mask=mask)
    acc += tl.load(x45 + offs, mask=mask)
    acc += tl.load(x46 + offs, mask=mask)
    acc += tl.load(x47 + offs, mask=mask)
    acc += tl.load(x48 + offs, mask=mask)
    acc += tl.load(x49 + offs, mask=mask)
    acc += tl.load(x50 + offs, mask=mask)
    acc += tl.load(x51 + offs, mask=mask)
    acc += tl.load(x52 + offs, mask=mask)
    acc += tl.load(x53 + offs, mask=mask)
    acc += tl.load(x54 + offs, mask=mask)
    acc += tl.load(x55 + offs, mask=mask)
    acc += tl.load(x56 + offs, mask=mask)
    acc += tl.load(x57 + offs, mask=mask)
    acc += tl.load(x58 + offs, mask=mask)
    acc += tl.load(x59 + offs, mask=mask)
    acc += tl.load(x60 + offs, mask=mask)
    acc += tl.load(x61 + offs, mask=mask)
    acc += tl.load(x62 + offs, mask=mask)
    tl.store(out_ptr + offs, acc, mask=mask)


#: Tensor arguments in all, the output included -> the kernel that sums the others into it.
SUM_KERNELS = {4: sum4_kernel, 16: sum16_kernel, 64: sum64_kernel}



# --- Helion versions (undecorated; see the module docstring) --------------------------------


def helion_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


def helion_broadcast_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Helion's own example add (examples/add.py): broadcast first, then a promoted output."""
    x, y = torch.broadcast_tensors(x, y)
    out = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, y.dtype), device=x.device)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


def helion_scalar_args(x: torch.Tensor, alpha: float, beta: int, flag: bool) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        if flag:
            out[tile] = x[tile] + alpha * beta
        else:
            out[tile] = x[tile]
    return out


def helion_sum(xs: list[torch.Tensor]) -> torch.Tensor:
    # static_range unrolls over the list, so the generated Triton kernel takes every
    # tensor as its own argument, like the Triton sum kernels above.
    out = torch.empty_like(xs[0])
    for tile in hl.tile(out.size()):
        acc = xs[0][tile]
        for i in hl.static_range(1, len(xs)):
            acc = acc + xs[i][tile]
        out[tile] = acc
    return out


def helion_softmax(x: torch.Tensor) -> torch.Tensor:
    n, _ = x.size()
    out = torch.empty_like(x)
    for tile_n in hl.tile(n):
        out[tile_n, :] = torch.nn.functional.softmax(x[tile_n, :], dim=1)
    return out


def helion_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    m, k = a.size()
    _, n = b.size()
    out = torch.empty([m, n], dtype=a.dtype, device=a.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = torch.addmm(acc, a[tile_m, tile_k], b[tile_k, tile_n])
        out[tile_m, tile_n] = acc.to(out.dtype)
    return out
