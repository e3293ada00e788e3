"""A zoo of plain ``@triton.jit`` kernels for the GPU differential tests.

Every kernel here is an ordinary Triton kernel: the tests launch it through Triton (``k[grid](...)``) and
through swiftlaunch (``swiftlaunch.fast(k)[grid](...)`` and ``swiftlaunch.jit(k.fn)``) and compare.

Importing this module needs no GPU: ``@triton.jit`` only records the source.

Kernels are chosen so that each one exercises a different part of Triton's argument handling
(specialization of ints and pointers, annotated scalars, ``None``, constexprs, defaults, captured globals,
grids, launch attributes, global scratch).
"""

import importlib.util
import tempfile
from pathlib import Path

import triton
import triton.language as tl

# Module globals read by kernels. Triton records their values when it compiles and re-checks them on
# every launch, so the tests can rebind ``G`` to provoke "Global variable G has changed".
SCALE = tl.constexpr(2)
G = tl.constexpr(1)


# --- elementwise -------------------------------------------------------------------------------------


@triton.jit
def add_kernel(X, Y, OUT, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask)
    y = tl.load(Y + offs, mask=mask)
    tl.store(OUT + offs, x + y, mask=mask)


# The same body with specialization switched off for ``n`` and for X's alignment: Triton then keys
# those arguments differently (no "D"/constexpr-1 for n, no alignment for X).
add_nospec_kernel = triton.jit(add_kernel.fn, do_not_specialize=["n"], do_not_specialize_on_alignment=["X"])


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


# --- reductions / dot --------------------------------------------------------------------------------


@triton.jit
def softmax_kernel(OUT, X, x_row_stride, out_row_stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * x_row_stride + cols, mask=mask, other=-float("inf")).to(tl.float32)
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    tl.store(OUT + row * out_row_stride + cols, num / tl.sum(num, axis=0), mask=mask)


@triton.jit
def matmul_kernel(A, B, C, M, N, K,
                  stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # fp16 inputs, fp32 accumulator and output.
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + rk
        a = tl.load(A + rm[:, None] * stride_am + kk[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = tl.load(B + kk[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc)
    tl.store(C + rm[:, None] * stride_cm + rn[None, :] * stride_cn, acc,
             mask=(rm[:, None] < M) & (rn[None, :] < N))


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


# --- many arguments ----------------------------------------------------------------------------------


@triton.jit
def sum4_kernel(A0, A1, A2, A3, OUT, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.load(A0 + offs, mask=mask)
    acc += tl.load(A1 + offs, mask=mask)
    acc += tl.load(A2 + offs, mask=mask)
    acc += tl.load(A3 + offs, mask=mask)
    tl.store(OUT + offs, acc, mask=mask)


@triton.jit
def sum16_kernel(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, OUT, n,
                 BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    acc = tl.load(A0 + offs, mask=mask)
    acc += tl.load(A1 + offs, mask=mask)
    acc += tl.load(A2 + offs, mask=mask)
    acc += tl.load(A3 + offs, mask=mask)
    acc += tl.load(A4 + offs, mask=mask)
    acc += tl.load(A5 + offs, mask=mask)
    acc += tl.load(A6 + offs, mask=mask)
    acc += tl.load(A7 + offs, mask=mask)
    acc += tl.load(A8 + offs, mask=mask)
    acc += tl.load(A9 + offs, mask=mask)
    acc += tl.load(A10 + offs, mask=mask)
    acc += tl.load(A11 + offs, mask=mask)
    acc += tl.load(A12 + offs, mask=mask)
    acc += tl.load(A13 + offs, mask=mask)
    acc += tl.load(A14 + offs, mask=mask)
    acc += tl.load(A15 + offs, mask=mask)
    tl.store(OUT + offs, acc, mask=mask)


def _generated_sum_kernel(n_inputs):
    """Build ``sum{n}_kernel(A0, ..., A{n-1}, OUT, n, BLOCK)`` from a real source file.

    Triton reads kernel source with ``inspect.getsource``, so an ``exec``'d function will not do: the
    source is written to a temporary directory (kept for the life of the process) and imported.
    """
    names = [f"A{i}" for i in range(n_inputs)]
    body = "\n".join(f"    acc += tl.load({a} + offs, mask=mask)" for a in names[1:])
    source = (
        "import triton\n"
        "import triton.language as tl\n\n\n"
        "@triton.jit\n"
        f"def sum{n_inputs}_kernel({', '.join(names)}, OUT, n, BLOCK: tl.constexpr):\n"
        "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)\n"
        "    mask = offs < n\n"
        f"    acc = tl.load({names[0]} + offs, mask=mask)\n"
        f"{body}\n"
        "    tl.store(OUT + offs, acc, mask=mask)\n"
    )
    path = Path(_GENERATED_DIR.name) / f"swiftlaunch_zoo_sum{n_inputs}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f"sum{n_inputs}_kernel")


_GENERATED_DIR = tempfile.TemporaryDirectory(prefix="swiftlaunch-zoo-")
sum64_kernel = _generated_sum_kernel(64)

SUM_KERNELS = {4: sum4_kernel, 16: sum16_kernel, 64: sum64_kernel}


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
