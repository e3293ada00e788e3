"""A zoo of plain ``@triton.jit`` kernels for the GPU differential tests.

Every kernel here is an ordinary Triton kernel: the tests launch it through Triton (``k[grid](...)``) and
through swiftlaunch (``swiftlaunch.fast(k)[grid](...)`` and ``swiftlaunch.jit(k.fn)``) and compare.

The kernels the benchmark launches too (vector add, softmax, matmul, the 4-, 16- and 64-tensor sums) are
defined once, in ``swiftlaunch.bench.kernels``, and imported here; like every kernel there they take the
output first. The rest are the tests' own.

Importing this module needs no GPU: ``@triton.jit`` only records the source.

Kernels are chosen so that each one exercises a different part of Triton's argument handling
(specialization of ints and pointers, annotated scalars, ``None``, constexprs, defaults, captured globals,
grids, launch attributes, global scratch).
"""

import triton
import triton.language as tl

from swiftlaunch.bench.kernels import SUM_KERNELS, add_kernel, matmul_kernel, softmax_kernel  # noqa: F401

# Module globals read by kernels. Triton records their values when it compiles and re-checks them on
# every launch, so the tests can rebind ``G`` to provoke "Global variable G has changed".
SCALE = tl.constexpr(2)
G = tl.constexpr(1)


# --- elementwise -------------------------------------------------------------------------------------


# The same body with specialization switched off for ``n`` and for x's alignment: Triton then keys
# those arguments differently (no "D"/constexpr-1 for n, no alignment for x).
add_nospec_kernel = triton.jit(add_kernel.fn, do_not_specialize=["n"], do_not_specialize_on_alignment=["x_ptr"])


@triton.jit
def scaled_add_kernel(X, Y, OUT, n, alpha, k=0, BLOCK: tl.constexpr = 256):
    # alpha is passed as a float or an int, k as an int (it has a default, so it may be omitted).
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask)
    y = tl.load(Y + offs, mask=mask)
    tl.store(OUT + offs, x * alpha + y + k, mask=mask)


@triton.jit
def optional_bias_kernel(X: tl.const, B, OUT, n, BLOCK: tl.constexpr):
    # B may be None: Triton turns a None argument into a constexpr, so the branch is resolved at compile
    # time. X is a const pointer ("*k..." in the signature).
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask)
    if B is not None:
        x += tl.load(B + offs, mask=mask)
    tl.store(OUT + offs, x, mask=mask)


@triton.jit
def scale_global_kernel(X, OUT, n, BLOCK: tl.constexpr = 256):
    # Reads the captured module global SCALE (a tl.constexpr); BLOCK has a default.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(OUT + offs, tl.load(X + offs, mask=mask) * SCALE, mask=mask)


@triton.jit
def global_g_kernel(X, OUT, n, BLOCK: tl.constexpr):
    # Reads the module global G; tests rebind G to check the "has changed" error.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(OUT + offs, tl.load(X + offs, mask=mask) + G, mask=mask)


# --- scalars -----------------------------------------------------------------------------------------


@triton.jit
def scalars_kernel(OUT_I, OUT_F, OUT_B, i, f, b):
    # Unannotated scalars: an int becomes i32/i64/u64 (or constexpr 1), a float fp32, a bool u1.
    tl.store(OUT_I, i)
    tl.store(OUT_F, f)
    tl.store(OUT_B, b)


@triton.jit
def store_fp16_kernel(OUT, a: tl.float16):
    tl.store(OUT, a)


@triton.jit
def store_bf16_kernel(OUT, a: tl.bfloat16):
    # Triton's launcher converts a Python float to bf16 by truncating the fp32 bits.
    tl.store(OUT, a)


@triton.jit
def store_fp64_kernel(OUT, a: tl.float64):
    tl.store(OUT, a)


@triton.jit
def store_i8_kernel(OUT, n: tl.int8):
    tl.store(OUT, n)


@triton.jit
def store_i32_kernel(OUT, n: tl.int32):
    tl.store(OUT, n)


@triton.jit
def store_i64_kernel(OUT, n: tl.int64):
    tl.store(OUT, n)


@triton.jit
def store_u8_kernel(OUT, x: tl.uint8):
    tl.store(OUT, x)


# --- grids -------------------------------------------------------------------------------------------


@triton.jit
def grid2d_kernel(OUT):
    # One int32 per program: OUT[p1, p0] = p0 * 1000 + p1, laid out from the grid itself.
    p0 = tl.program_id(0)
    p1 = tl.program_id(1)
    tl.store(OUT + p1 * tl.num_programs(0) + p0, p0 * 1000 + p1)


@triton.jit
def grid3d_kernel(OUT):
    p0 = tl.program_id(0)
    p1 = tl.program_id(1)
    p2 = tl.program_id(2)
    idx = (p2 * tl.num_programs(1) + p1) * tl.num_programs(0) + p0
    tl.store(OUT + idx, p0 * 1000000 + p1 * 1000 + p2)


# --- Hopper (sm90+) only ------------------------------------------------------------------------------


@triton.jit
def pdl_add_kernel(X, Y, OUT, n, BLOCK: tl.constexpr):
    # Programmatic dependent launch: wait for the previous grid's writes before reading, then let the
    # next grid start early. griddepcontrol needs sm90.
    tl.extra.cuda.gdc_wait()
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask)
    y = tl.load(Y + offs, mask=mask)
    tl.extra.cuda.gdc_launch_dependents()
    tl.store(OUT + offs, x + y, mask=mask)


@triton.jit
def tma_scale_kernel(X, OUT, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    # Device-side tensor descriptors: on sm90 Triton builds the TMA descriptors in global scratch, so
    # the compiled kernel has global_scratch_size > 0 and every launch calls triton.set_allocator's
    # allocator. X and OUT must be 16-byte aligned with 16-byte-multiple row strides.
    x_desc = tl.make_tensor_descriptor(X, shape=[M, N], strides=[N, 1], block_shape=[BLOCK_M, BLOCK_N])
    o_desc = tl.make_tensor_descriptor(OUT, shape=[M, N], strides=[N, 1], block_shape=[BLOCK_M, BLOCK_N])
    m0 = tl.program_id(0) * BLOCK_M
    n0 = tl.program_id(1) * BLOCK_N
    tile = x_desc.load([m0, n0])
    o_desc.store([m0, n0], tile * 3)


# --- tuples ------------------------------------------------------------------------------------------


@triton.jit
def tuple_arg_kernel(PTRS, SCALARS, OUT, n, BLOCK: tl.constexpr):
    # Tuple arguments are specialized element by element (a tuple of pointers, a tuple of scalars).
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(PTRS[0] + offs, mask=mask)
    y = tl.load(PTRS[1] + offs, mask=mask)
    tl.store(OUT + offs, x * SCALARS[0] + y * SCALARS[1], mask=mask)
