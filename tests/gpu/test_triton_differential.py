"""Differential tests: the same launches through Triton and through swiftlaunch must agree exactly.

Each case launches a zoo kernel with ``k[grid](...)`` (Triton itself) and through swiftlaunch, both as
``swiftlaunch.fast(k)`` and as ``swiftlaunch.jit(k.fn)``, on fresh output buffers, then compares the
outputs bit for bit and any exception by type and message. Where swiftlaunch can serve a call natively,
a repeated launch must be counted as a fast-path hit in ``swiftlaunch.stats()``.
"""

import threading

import pytest
import torch
import triton
import triton.language as tl
from triton.compiler import CompiledKernel
from triton.runtime.jit import JITFunction

import swiftlaunch

from . import kernels as zoo
from .helpers import (SWIFT_RUNNERS, Out, assert_same, assert_same_error, call, check_differential, counters,
                      launcher, needs_sm90, run, twin, view_at)

ALL_RUNNERS = ("triton",) + SWIFT_RUNNERS


def randn(n, dtype=torch.float32, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(n, generator=g, device="cuda", dtype=torch.float32).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -100), min(info.max, 100) + 1, (n,), generator=g, device="cuda",
                         dtype=dtype)


def add_args(n, dtype=torch.float32, block=256, x_off=0, y_off=0, out_off=0):
    """Arguments for zoo.add_kernel, the output first; *_off are element offsets into fresh allocations."""
    x = view_at(randn(n + x_off, dtype, seed=1), n, x_off)
    y = view_at(randn(n + y_off, dtype, seed=2), n, y_off)
    grid = (triton.cdiv(max(n, 1), block),)
    return grid, [Out(n, dtype, offset=out_off), x, y, n], {"BLOCK": block}


# --- elementwise, dtypes, specialization --------------------------------------------------------------


@pytest.mark.parametrize("meta", [{}, {"num_warps": 8}, {"num_warps": 2, "num_stages": 2}],
                         ids=["default", "num_warps8", "num_warps2_stages2"])
@pytest.mark.parametrize("n", [1000, 4096])
def test_elementwise_add(n, meta):
    grid, args, kwargs = add_args(n)
    check_differential(zoo.add_kernel, grid, args, {**kwargs, **meta})


def test_elementwise_all_keyword_arguments():
    grid, (out, x, y, n), _ = add_args(1000)
    check_differential(zoo.add_kernel, grid, [], {"out_ptr": out, "x_ptr": x, "y_ptr": y, "n": n, "BLOCK": 256})


def test_elementwise_kwarg_order_does_not_matter():
    # Triton keys its cache on str(options), which depends on keyword order: both orders must work
    # (and be served natively once seen).
    grid, args, _ = add_args(1000)
    check_differential(zoo.add_kernel, grid, args, {"BLOCK": 256, "num_warps": 4})
    check_differential(zoo.add_kernel, grid, args, {"num_warps": 4, "BLOCK": 256})


def test_elementwise_without_specialization():
    # do_not_specialize / do_not_specialize_on_alignment change Triton's key; the twin gets the same
    # jit options.
    for n, x_off in [(1024, 0), (1024, 1), (1, 0), (1000, 3)]:
        grid, args, kwargs = add_args(n, x_off=x_off)
        check_differential(zoo.add_nospec_kernel, grid, args, kwargs)


def test_scale_by_captured_global_and_default_constexpr():
    x = randn(3000)
    check_differential(zoo.scale_global_kernel, (triton.cdiv(3000, 256),), [x, Out(3000, torch.float32), 3000])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                                   torch.int32, torch.int64, torch.uint8], ids=str)
def test_dtype(dtype):
    grid, args, kwargs = add_args(1000, dtype)
    check_differential(zoo.add_kernel, grid, args, kwargs)


def test_several_dtypes_through_one_kernel_interleaved():
    # All specializations live side by side in one kernel's caches; cycling through them twice makes
    # every lookup after the first round a hit on the right entry.
    dtypes = [torch.float16, torch.bfloat16, torch.float32, torch.int32]
    cases = {dtype: add_args(777, dtype) for dtype in dtypes}
    for _ in range(2):
        for dtype in dtypes:
            check_differential(zoo.add_kernel, *cases[dtype])


@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 17, 32, 48, 1000, 1024, -16])
def test_int_specialization_of_n(n):
    # n == 1 becomes a constexpr (the parameter disappears), multiples of 16 (including 0 and -16) get
    # the divisibility key: each is a different compiled kernel.
    grid, args, kwargs = add_args(max(n, 0) + 16)
    args[3] = n
    check_differential(zoo.add_kernel, (max(triton.cdiv(n, 256), 1),), args, kwargs)


def test_int_specialization_sequence():
    # Alternate between keys through one kernel so a stale or shared cache entry would be visible.
    grid, args, kwargs = add_args(1024)
    for n in [16, 17, 1, 32, 33, 1, 16, 1024, 1023]:
        args[3] = n
        check_differential(zoo.add_kernel, grid, args, kwargs)


@pytest.mark.parametrize("k", [1, 16, 17, -1, -16, 0, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**40, 2**63 - 1,
                               2**63, 2**64 - 1, 2**64 - 16])
def test_int_scalar_ranges(k):
    # i32 / i64 / u64 by range, each with and without divisibility, and constexpr 1.
    x, y = randn(500, seed=3), randn(500, seed=4)
    check_differential(zoo.scaled_add_kernel, (2,), [x, y, Out(500, torch.float32), 500, 0.5, k])


@pytest.mark.parametrize("alpha", [1, 2, 16, -3, 1.0, 0.1, -2.5, 1e300, float("nan"), float("inf")])
def test_alpha_int_or_float(alpha):
    # Ints and floats for the same parameter are different signatures (i32 vs fp32); 1e300 rounds to
    # inf in fp32 exactly like Triton's (float) conversion.
    x, y = randn(500, seed=5), randn(500, seed=6)
    check_differential(zoo.scaled_add_kernel, (2,), [x, y, Out(500, torch.float32), 500, alpha, 3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.float16])
def test_scaled_add_dtypes(dtype):
    x, y = randn(600, dtype, seed=7), randn(600, dtype, seed=8)
    check_differential(zoo.scaled_add_kernel, (3,), [x, y, Out(600, dtype), 600, 2.5, 7], {"BLOCK": 256})
    check_differential(zoo.scaled_add_kernel, (3,), [x, y, Out(600, dtype), 600, 3, 2**40], {"BLOCK": 256})


# --- scalar arguments of every type --------------------------------------------------------------------


def scalars(i, f, b):
    outs = [Out(1, torch.int64, fill=-7), Out(1, torch.float32, fill=-7), Out(1, torch.int8, fill=-7)]
    return [*outs, i, f, b]


@pytest.mark.parametrize("i", [0, 1, -1, 7, 16, -16, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**63 - 1,
                               -2**63, 2**63, 2**64 - 1])
def test_int_scalar(i):
    check_differential(zoo.scalars_kernel, (1,), scalars(i, 0.5, True))


@pytest.mark.parametrize("f", [0.0, -0.0, 1.0, 0.1, -2.5, 1e-45, 1e-50, 3.4028235e38, 3.5e38, 1e300,
                               float("inf"), float("-inf"), float("nan")])
def test_float_scalar(f):
    # Unannotated floats are fp32: the double is converted with (float) d.
    check_differential(zoo.scalars_kernel, (1,), scalars(5, f, False))


@pytest.mark.parametrize("b", [True, False])
def test_bool_scalar(b):
    check_differential(zoo.scalars_kernel, (1,), scalars(3, 1.5, b))


def test_int_and_bool_and_float_one_are_distinct():
    # 1 specializes to a constexpr, True is u1, 1.0 is fp32: three different kernels for the same
    # parameter, all live at once.
    for value in [1, True, 1.0, 1, True, 1.0]:
        check_differential(zoo.scalars_kernel, (1,), scalars(value, 1.0, True))


ANNOTATED = {
    # kernel, output dtype, values (Triton itself decides which ones it rejects)
    "fp16": (zoo.store_fp16_kernel, torch.float16,
             [0.0, -0.0, 1.0, 1, 3, 0.1, 3.14159, 65504.0, 65519.0, 65520.0, 1e6, 6e-8, 1e-8, float("inf"),
              float("-inf"), float("nan")]),
    # bf16 is the upper half of the fp32 bits (truncation, not rounding): 1 + 3 * 2**-9 truncates to
    # 1.0 where rounding would give 1.0078125.
    "bf16": (zoo.store_bf16_kernel, torch.bfloat16,
             [0.0, -0.0, 1.0, 1, 0.1, -0.1, 1 + 3 * 2**-9, 3.14159, 65504.0, 3.4e38, 1e39, 1e-40, 1e300,
              float("inf"), float("nan")]),
    "fp64": (zoo.store_fp64_kernel, torch.float64, [0.0, -0.0, 1.0, 1, 0.1, 1e300, 5e-324, float("nan")]),
    "i8": (zoo.store_i8_kernel, torch.int8, [0, 1, 16, 127, 128, -1, -128, 255, 256]),
    "i32": (zoo.store_i32_kernel, torch.int32, [0, 1, -1, 16, -16, 2**31 - 1, -2**31, 2**31, -2**31 - 1]),
    "i64": (zoo.store_i64_kernel, torch.int64, [0, 1, -1, 32, 2**63 - 1, -2**63, 2**63, 2**64]),
    "u8": (zoo.store_u8_kernel, torch.uint8, [0, 1, 16, 255, 256, 300, -1, 2**40]),
}


@pytest.mark.parametrize("kind,value", [(kind, v) for kind, (_, _, vs) in ANNOTATED.items() for v in vs],
                         ids=str)
def test_annotated_scalar(kind, value):
    # Annotated parameters use the annotation's type whatever the Python value: floats are never
    # specialized, ints keep their divisibility key. Out-of-range values must fail (or not) exactly as
    # in Triton. When fp16 packing overflows, Triton still launches, with an uninitialized 16-bit
    # value, and raises afterwards: only the error can be compared then.
    kernel, dtype, _ = ANNOTATED[kind]
    check_differential(kernel, (1,), [Out(1, dtype, fill=9), value], outputs_undefined_on_error=kind == "fp16")


def test_bf16_truncation_matches_triton():
    # Spelled out once: the value Triton writes for 1 + 3 * 2**-9 is the truncated 1.0, and swiftlaunch
    # writes the same bits.
    (out,) = check_differential(zoo.store_bf16_kernel, (1,), [Out(1, torch.bfloat16), 1 + 3 * 2**-9])
    assert out.item() == 1.0


# --- None, constexprs, defaults -----------------------------------------------------------------------


def test_none_and_tensor_for_the_same_parameter():
    x, b = randn(1000, seed=9), randn(1000, seed=10)
    for bias in [None, b, None, b]:
        check_differential(zoo.optional_bias_kernel, (4,), [x, bias, Out(1000, torch.float32), 1000],
                           {"BLOCK": 256})


@pytest.mark.parametrize("block", [16, 128, 1024])
def test_constexpr_values(block):
    grid, args, _ = add_args(2000, block=block)
    check_differential(zoo.add_kernel, grid, args, {"BLOCK": block})
    # The constexpr given positionally.
    check_differential(zoo.add_kernel, grid, args + [block])


def test_constexpr_instance_and_default_for_runtime_parameter():
    x, y = randn(500, seed=11), randn(500, seed=12)
    base = [x, y, Out(500, torch.float32), 500, 1.5]
    check_differential(zoo.scaled_add_kernel, (2,), base)  # k defaults to 0
    # A tl.constexpr instance for a runtime parameter is keyed by Triton on the instance itself: the
    # core hands such calls to Triton (counted as a fallback), so only the results are compared.
    check_differential(zoo.scaled_add_kernel, (2,), base + [tl.constexpr(5)], expect_hit=False)
    check_differential(zoo.scaled_add_kernel, (2,), base, {"k": 5, "BLOCK": 256})


# --- alignment -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["aligned_first", "misaligned_first"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_misaligned_views(order, dtype):
    # A fresh kernel so that the first launch really is the first. n is a multiple of 16 so the aligned
    # specialization uses 16-byte vector accesses: running it on a misaligned pointer would fault.
    kernel = triton.jit(zoo.add_kernel.fn)
    per_16_bytes = 16 // torch.tensor([], dtype=dtype).element_size()
    offsets = [(0, 0, 0), (1, 0, 0), (0, 0, 1), (1, 1, 1), (per_16_bytes, 0, per_16_bytes), (3, 1, 0)]
    if order == "misaligned_first":
        offsets = offsets[::-1]
    for x_off, y_off, out_off in offsets + offsets:
        grid, args, kwargs = add_args(2048, dtype, block=1024, x_off=x_off, y_off=y_off, out_off=out_off)
        check_differential(kernel, grid, args, kwargs)


def test_misaligned_slice_of_fp32_tensor():
    # The case from the brief spelled out: x[1:] of an fp32 tensor is 4 bytes past a 16-byte boundary.
    kernel = triton.jit(zoo.add_kernel.fn)
    base, y = randn(1025, seed=13), randn(1024, seed=14)
    aligned, misaligned = base[:1024], base[1:]
    assert aligned.data_ptr() % 16 == 0 and misaligned.data_ptr() % 16 == 4
    for x in [aligned, misaligned, aligned, misaligned]:
        check_differential(kernel, (1,), [Out(1024, torch.float32), x, y, 1024], {"BLOCK": 1024})


def test_empty_tensors_have_null_pointers():
    # An empty CUDA tensor's data_ptr() is 0, which Triton treats as aligned and passes without a
    # pointer check.
    empty = torch.empty(0, device="cuda")
    check_differential(zoo.add_kernel, (1,), [Out(0, torch.float32), empty, empty, 0], {"BLOCK": 128})


def test_tuple_arguments():
    # Tuples are specialized element by element (1 inside a tuple becomes a constexpr too). swiftlaunch
    # may hand them to Triton; either way the results must agree.
    x, y = randn(1001, seed=29), randn(1000, seed=30)
    for ptrs, scalars_ in [((x[:1000], y), (2, 3.5)), ((x[1:], y), (2, 3.5)), ((x[:1000], y), (1, 0.5)),
                           ((x[:1000], y), (16, -1.0))]:
        check_differential(zoo.tuple_arg_kernel, (4,), [ptrs, scalars_, Out(1000, torch.float32), 1000],
                           {"BLOCK": 256}, expect_hit=False)


# --- softmax, matmul, many arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("rows,cols", [(1, 16), (37, 50), (128, 128), (5, 1000)])
def test_softmax(rows, cols):
    x = randn(rows * cols, seed=15).view(rows, cols) * 4
    block = triton.next_power_of_2(cols)
    (out,) = check_differential(zoo.softmax_kernel, (rows,),
                                [Out((rows, cols), torch.float32), x, cols, cols, x.stride(0)], {"BLOCK": block})
    # Not part of the differential check; guards against a kernel that trivially agrees with itself.
    torch.testing.assert_close(out, torch.softmax(x, dim=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("m,n,k", [(16, 16, 16), (64, 48, 32), (33, 17, 40), (128, 128, 64)])
@pytest.mark.parametrize("tiles", [(16, 16, 16), (32, 32, 32)], ids=lambda t: "x".join(map(str, t)))
def test_matmul(m, n, k, tiles):
    a = randn(m * k, torch.float16, seed=16).view(m, k)
    b = randn(k * n, torch.float16, seed=17).view(k, n)
    bm, bn, bk = tiles
    (c,) = check_differential(
        zoo.matmul_kernel, (triton.cdiv(m, bm), triton.cdiv(n, bn)),
        [Out((m, n), torch.float32), a, b, m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), n, 1],
        {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk})
    torch.testing.assert_close(c, a.float() @ b.float(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("n_tensors", sorted(zoo.SUM_KERNELS))
def test_many_tensor_arguments(n_tensors):
    kernel = zoo.SUM_KERNELS[n_tensors]  # the output and n_tensors - 1 inputs
    inputs = [randn(1000, seed=100 + i) for i in range(n_tensors - 1)]
    check_differential(kernel, (4,), [Out(1000, torch.float32), *inputs, 1000], {"BLOCK": 256})
    # One input, in the middle of the list, not 16-byte aligned.
    inputs[len(inputs) // 2] = randn(1001, seed=99)[1:]
    check_differential(kernel, (4,), [Out(1000, torch.float32), *inputs, 1000], {"BLOCK": 256})


# --- grids ---------------------------------------------------------------------------------------------


def grid_size(grid):
    size = 1
    for g in grid:
        size *= g
    return size


@pytest.mark.parametrize("grid", [(3, 5), (1, 1), (7, 1), (1, 6), [4, 2], (3, 5, 1)], ids=str)
def test_grid_2d(grid):
    check_differential(zoo.grid2d_kernel, grid, [Out(grid_size(grid), torch.int32, fill=-1)])


@pytest.mark.parametrize("grid", [(2, 3, 4), (1, 1, 1), (5, 1, 2), (1, 4, 1)], ids=str)
def test_grid_3d(grid):
    check_differential(zoo.grid3d_kernel, grid, [Out(grid_size(grid), torch.int32, fill=-1)])


def test_callable_grid():
    # Triton calls the grid with the bound arguments (constexprs included).
    grid, args, kwargs = add_args(3000)
    check_differential(zoo.add_kernel, lambda meta: (triton.cdiv(meta["n"], meta["BLOCK"]),), args, kwargs)
    check_differential(zoo.grid2d_kernel, lambda meta: (3, 4), [Out(12, torch.int32, fill=-1)])
    check_differential(zoo.grid3d_kernel, lambda meta: [2, 2, 3], [Out(12, torch.int32, fill=-1)])


@pytest.mark.parametrize("grid", [(0,), (0, 3), (4, 0), (2, 3, 0)], ids=str)
def test_zero_size_grid_launches_nothing(grid):
    _, args, kwargs = add_args(1000)
    (out,) = check_differential(zoo.add_kernel, grid, args, kwargs, expect_hit=False)
    assert (out == 77).all()  # untouched fill value: nothing ran


@pytest.mark.parametrize("grid", [(-1,), (-3, 2), (2, -1, 1), (-1, -1)], ids=str)
def test_negative_grid(grid):
    # Triton launches only when gx*gy*gz > 0; a positive product of negative dimensions reaches the
    # driver and fails. Either way swiftlaunch must do the same.
    _, args, kwargs = add_args(1000)
    check_differential(zoo.add_kernel, grid, args, kwargs, expect_hit=False)


# --- launch options ----------------------------------------------------------------------------------


@needs_sm90
def test_num_ctas_2():
    # Cluster launch: the grid is multiplied by num_ctas and the cluster dimension set.
    grid, args, kwargs = add_args(5000)
    check_differential(zoo.add_kernel, grid, args, {**kwargs, "num_ctas": 2})


@needs_sm90
def test_launch_pdl():
    grid, args, kwargs = add_args(5000)
    check_differential(zoo.add_kernel, grid, args, {**kwargs, "launch_pdl": True})
    out, x, y, n = args
    check_differential(zoo.pdl_add_kernel, grid, [x, y, out, n], {**kwargs, "launch_pdl": True})  # output third


@needs_sm90
@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_launch_pdl_chain(runner):
    # Back-to-back dependent launches: the second reads what the first wrote, after gdc_wait.
    n = 1 << 16
    x, y = randn(n, seed=18), randn(n, seed=19)
    grid, meta = (triton.cdiv(n, 1024),), {"BLOCK": 1024, "launch_pdl": True}
    outs = {}
    for name in ("triton", runner):
        fn = launcher(zoo.pdl_add_kernel, name)
        first, second, third = (torch.full((n,), -1.0, device="cuda") for _ in range(3))
        for _ in range(2):  # the second round is served natively
            fn[grid](x, y, first, n, **meta)
            fn[grid](first, y, second, n, **meta)
            fn[grid](second, first, third, n, **meta)
        outs[name] = third
    assert_same(outs[runner], outs["triton"], runner)


def test_launch_cooperative_grid():
    grid, args, kwargs = add_args(4 * 256)
    check_differential(zoo.add_kernel, grid, args, {**kwargs, "launch_cooperative_grid": True})


@needs_sm90
def test_global_scratch_allocator_called_per_launch():
    # Device-side tensor descriptors need global scratch on sm90: every launch must ask the allocator
    # set with triton.set_allocator (read each time: it is a ContextVar) for the same buffer as Triton.
    from triton.runtime import _allocation

    requests = []

    def allocator(size, alignment, stream):
        requests.append((size, alignment, stream))
        return torch.empty(size, dtype=torch.int8, device="cuda")

    m, n = 128, 96
    x = randn(m * n, seed=20).view(m, n)
    args = [x, Out((m, n), torch.float32), m, n]
    meta = {"BLOCK_M": 32, "BLOCK_N": 32}
    grid = (m // 32, n // 32)
    token = _allocation._allocator.set(allocator)
    try:
        _, exc, compiled = run(zoo.tma_scale_kernel, grid, args, meta)
        assert exc is None, exc
        if compiled.metadata.global_scratch_size == 0:
            pytest.skip("this GPU's tensor descriptors need no global scratch")
        requests.clear()
        (expected,) = check_differential(zoo.tma_scale_kernel, grid, args, meta)
        assert_same(expected, x * 3, "Triton vs torch")
        # Triton once, then two launches for each swiftlaunch runner, all asking for the same buffer.
        assert len(requests) == 1 + 2 * len(SWIFT_RUNNERS)
        assert len(set(requests)) == 1, requests
    finally:
        _allocation._allocator.reset(token)
    # Without an allocator Triton raises; swiftlaunch must raise the same error.
    check_differential(zoo.tma_scale_kernel, grid, args, meta)


# --- streams, graphs, threads --------------------------------------------------------------------------


@pytest.mark.parametrize("runner", ALL_RUNNERS)
def test_launch_on_side_stream(runner):
    n = 1 << 20
    x_new, y = randn(n, seed=21), randn(n, seed=22)
    x = torch.zeros(n, device="cuda")
    out = torch.full((n,), -1.0, device="cuda")
    fn = launcher(zoo.add_kernel, runner)
    grid = (triton.cdiv(n, 1024),)
    fn[grid](out, x, y, n, BLOCK=1024)  # compile and cache outside the stream block
    out.fill_(-1.0)
    torch.cuda.synchronize()

    default = torch.cuda.current_stream()
    side = torch.cuda.Stream()
    before = counters()
    with torch.cuda.stream(side):
        # Keep `side` busy, then produce x on it: a kernel that ran on any other stream would read the
        # old zeros before the copy lands.
        torch.cuda._sleep(50_000_000)
        x.copy_(x_new)
        fn[grid](out, x, y, n, BLOCK=1024)
    after = counters()
    assert torch.cuda.current_stream() == default
    side.synchronize()
    assert_same(out, x_new + y, f"{runner} on a side stream")
    if runner != "triton":
        assert after[0] - before[0] == 1, swiftlaunch.stats()


@pytest.mark.parametrize("runner", ALL_RUNNERS)
def test_cuda_graph_capture_and_replay(runner):
    n = 5000
    x, y = randn(n, seed=23), randn(n, seed=24)
    out = torch.full((n,), -1.0, device="cuda")
    fn = launcher(zoo.add_kernel, runner)
    grid = (triton.cdiv(n, 256),)
    fn[grid](out, x, y, n, BLOCK=256)  # compile and cache before capture
    torch.cuda.synchronize()

    graph = torch.cuda.CUDAGraph()
    before = counters()
    with torch.cuda.graph(graph):
        fn[grid](out, x, y, n, BLOCK=256)
    after = counters()
    if runner != "triton":
        assert after[0] - before[0] == 1, swiftlaunch.stats()

    # The graph must contain the launch: new input in place, replay, the output follows.
    for seed in (25, 26):
        x.copy_(randn(n, seed=seed))
        out.fill_(-1.0)
        graph.replay()
        torch.cuda.synchronize()
        assert_same(out, x + y, f"{runner} graph replay")


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_threads(runner):
    # 8 threads x 200 launches through one kernel, each into its own output. Inputs are small integers
    # in fp32 and alpha a half-integer, so x * alpha + y + k is exact and torch gives the same bits.
    n, n_threads, per_thread = 4096, 8, 200
    g = torch.Generator(device="cuda").manual_seed(27)
    x = torch.randint(-8, 9, (n,), generator=g, device="cuda").float()
    y = torch.randint(-8, 9, (n,), generator=g, device="cuda").float()
    fn = launcher(zoo.scaled_add_kernel, runner)
    grid = (triton.cdiv(n, 256),)
    outs = [[torch.full((n,), -1.0, device="cuda") for _ in range(per_thread)] for _ in range(n_threads)]
    fn[grid](x, y, outs[0][0], n, 0.5, 3, BLOCK=256)  # compile before the threads start
    torch.cuda.synchronize()

    def alpha(t, i):
        return float(t * per_thread + i) + 0.5

    def k(i):
        return 3 + 2 * (i % 4)  # odd, never 1: one specialization for all

    errors = []
    start = threading.Barrier(n_threads)

    def work(t):
        try:
            start.wait()
            for i in range(per_thread):
                fn[grid](x, y, outs[t][i], n, alpha(t, i), k(i), BLOCK=256)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    before = counters()
    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    torch.cuda.synchronize()
    after = counters()
    assert not errors, errors
    for t in range(n_threads):
        for i in range(per_thread):
            assert_same(outs[t][i], x * alpha(t, i) + y + k(i), f"thread {t} launch {i}")
    # A new thread has no current CUDA context: its first launch goes to Triton, which makes one
    # current (as its launcher does), and every later launch is a hit.
    no_context = swiftlaunch.stats()["fallbacks"].get("no current CUDA context", 0)
    assert no_context <= n_threads, swiftlaunch.stats()
    assert after[0] - before[0] + no_context == n_threads * per_thread, swiftlaunch.stats()


# --- hooks and guards ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chain_name", ["launch_enter_hook", "launch_exit_hook"])
@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_launch_hook_added_after_first_call(runner, chain_name):
    grid, args, kwargs = add_args(1000)
    fn = launcher(zoo.add_kernel, runner)
    (expected,), _, _ = run(zoo.add_kernel, grid, args, kwargs)
    run(fn, grid, args, kwargs)
    run(fn, grid, args, kwargs)  # now cached natively

    chain = getattr(triton.knobs.runtime, chain_name)
    calls = []

    def hook(metadata):
        calls.append(metadata.get())

    chain.add(hook)
    try:
        before = counters()
        (out,), exc, _ = run(fn, grid, args, kwargs)
        after = counters()
        assert exc is None, exc
        assert_same(out, expected, f"{runner} with a {chain_name}")
        assert len(calls) == 1, "the hook must fire once for the launch"
        assert after[2] - before[2] == 1, f"the hooked launch must count as a fallback: {swiftlaunch.stats()}"
        assert after[0] == before[0], "a hooked launch cannot be a fast-path hit"
        # Triton, for comparison, passes the same kind of metadata.
        run(zoo.add_kernel, grid, args, kwargs)
        assert len(calls) == 2
        assert calls[0]["name"] == calls[1]["name"] and calls[0]["stream"] == calls[1]["stream"]
    finally:
        chain.remove(hook)

    # With the hook gone the fast path is back.
    assert_fast_path_hit(fn, grid, args, kwargs, expected, f"{runner} after removing the hook")


def warm_add_kernel(runner):
    """add_kernel's arguments, its swiftlaunch launcher (one launch made, so natively cached) and
    Triton's output for them."""
    grid, args, kwargs = add_args(1000)
    fn = launcher(zoo.add_kernel, runner)
    (expected,), _, _ = run(zoo.add_kernel, grid, args, kwargs)
    run(fn, grid, args, kwargs)
    return grid, args, kwargs, fn, expected


def assert_fast_path_hit(fn, grid, args, kwargs, expected, what):
    """One launch of a single-output kernel: a fast-path hit with Triton's output."""
    before = counters()
    (out,), exc, _ = run(fn, grid, args, kwargs)
    assert exc is None, exc
    assert counters()[0] - before[0] == 1, f"{what}: not a fast-path hit: {swiftlaunch.stats()}"
    assert_same(out, expected, what)


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_launch_hook_set_on_the_knobs_instance(runner):
    # `knobs.runtime.launch_enter_hook = f` replaces the class's HookChain in the instance dict; the
    # core reads the instance entry first, and `scope()` puts everything back.
    grid, args, kwargs, fn, expected = warm_add_kernel(runner)
    calls = []
    with triton.knobs.runtime.scope():
        triton.knobs.runtime.launch_enter_hook = lambda metadata: calls.append(metadata.get()["name"])
        before = counters()
        (out,), exc, _ = run(fn, grid, args, kwargs)
        after = counters()
        assert exc is None, exc
        assert_same(out, expected, f"{runner} with an instance launch hook")
        assert calls == ["add_kernel"], calls
        assert after[0] == before[0] and after[2] - before[2] == 1, swiftlaunch.stats()
    assert_fast_path_hit(fn, grid, args, kwargs, expected, f"{runner} after scope()")


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_instance_knobs_that_change_nothing_keep_the_fast_path(runner):
    # Explicit instance values equal to the defaults: the core's slow knob path must still launch.
    grid, args, kwargs, fn, expected = warm_add_kernel(runner)
    with triton.knobs.runtime.scope(), triton.knobs.compilation.scope():
        triton.knobs.runtime.debug = False
        triton.knobs.runtime.add_stages_inspection_hook = None
        triton.knobs.compilation.instrumentation_mode = ""
        assert_fast_path_hit(fn, grid, args, kwargs, expected, f"{runner} with default-valued instance knobs")


def test_pinned_host_tensor_goes_to_triton():
    # Triton launches pinned host memory (the driver maps it); torch says device -1, so the core
    # steps aside and Triton's result is the result.
    grid, args, kwargs = add_args(1000)
    pinned = args[1].cpu().pin_memory()
    pinned_args = [args[0], pinned, *args[2:]]
    check_differential(zoo.add_kernel, grid, args, kwargs)  # warm
    before = swiftlaunch.stats()["fallbacks"].get("pointer is not device memory", 0)
    check_differential(zoo.add_kernel, grid, pinned_args, kwargs, expect_hit=False)
    assert swiftlaunch.stats()["fallbacks"].get("pointer is not device memory", 0) > before, swiftlaunch.stats()


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_pre_run_hook_added_after_first_call(runner):
    # Hooks cannot be removed from a JITFunction, so this test uses kernels of its own.
    if runner == "fast":
        base = triton.jit(zoo.add_kernel.fn)
        fn, hooked = swiftlaunch.fast(base), base
    else:
        fn = hooked = swiftlaunch.jit(zoo.add_kernel.fn)
    grid, args, kwargs = add_args(1000)
    (expected,), _, _ = run(zoo.add_kernel, grid, args, kwargs)
    run(fn, grid, args, kwargs)
    run(fn, grid, args, kwargs)

    calls = []
    hooked.add_pre_run_hook(lambda *a, **kw: calls.append((a, kw)))
    before = counters()
    (out,), exc, _ = run(fn, grid, args, kwargs)
    after = counters()
    assert exc is None, exc
    assert_same(out, expected, f"{runner} with a pre-run hook")
    assert len(calls) == 1
    hook_args, hook_kwargs = calls[0]
    assert hook_args[1] is args[1] and hook_args[3] == 1000 and hook_kwargs["BLOCK"] == 256
    assert after[2] - before[2] == 1, swiftlaunch.stats()
    assert after[0] == before[0]


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_changed_captured_global_raises_like_triton(runner):
    fn = launcher(zoo.global_g_kernel, runner)
    x = randn(1000, seed=28)
    args, kwargs = [x, Out(1000, torch.float32), 1000], {"BLOCK": 256}
    check_differential(zoo.global_g_kernel, (4,), args, kwargs, runners=(runner,))  # compiled and cached

    original = zoo.G
    try:
        zoo.G = tl.constexpr(2)
        with pytest.raises(RuntimeError, match="has changed") as expected:
            call(zoo.global_g_kernel, (4,), args, kwargs)
        with pytest.raises(RuntimeError, match="has changed") as raised:
            call(fn, (4,), args, kwargs)
        assert_same_error(raised.value, expected.value, runner)
    finally:
        zoo.G = original
    # Restored: launches work again and agree with Triton.
    check_differential(zoo.global_g_kernel, (4,), args, kwargs, runners=(runner,), expect_hit=False)


# --- errors: the same exception as Triton ---------------------------------------------------------------


def add_call(n_arg=1000, x=None, out=None, grid=(4,), **extra):
    """An add_kernel launch with one thing swapped for a bad value; tensors are made lazily."""
    x = randn(1000) if x is None else x
    out = Out(1000, torch.float32) if out is None else out
    return zoo.add_kernel, grid, [out, x, randn(1000), n_arg], {"BLOCK": 256, **extra}


ERROR_CASES = {
    # name: () -> (kernel, grid, args, kwargs). Lambdas, so that collection needs no GPU.
    "cpu_tensor_input": lambda: add_call(x=torch.randn(1000)),
    "cpu_tensor_output": lambda: add_call(out=torch.randn(1000)),
    "int_2_64": lambda: (zoo.scalars_kernel, (1,), scalars(2**64, 0.5, True), {}),
    "int_below_i64": lambda: (zoo.scalars_kernel, (1,), scalars(-2**63 - 1, 0.5, True), {}),
    "n_2_64": lambda: add_call(n_arg=2**64),
    "unknown_kwarg": lambda: add_call(bogus=1),
    "string_argument": lambda: add_call(n_arg="x"),
    "list_argument": lambda: add_call(n_arg=[1, 2]),
    "missing_argument": lambda: (zoo.add_kernel, (4,), add_call()[2][:3], {"BLOCK": 256}),
    "float_grid": lambda: add_call(grid=(4.0,)),
    "huge_grid": lambda: add_call(grid=(2**31,)),
}

# A valid launch of the same kernel, run first so that the bad call meets a warm native cache (where
# a wrong fast-path hit would show) rather than a cold miss that goes to Triton anyway.
WARM_CALLS = {
    "add_kernel": lambda: add_call(),
    "scalars_kernel": lambda: (zoo.scalars_kernel, (1,), scalars(2**63, 0.5, True), {}),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_matches_triton(case):
    kernel, grid, args, kwargs = ERROR_CASES[case]()
    check_differential(*WARM_CALLS[kernel.__name__]())
    _, expected_exc, _ = run(kernel, grid, args, kwargs)
    assert expected_exc is not None, f"Triton accepted {case}; the case no longer tests an error"
    for name in SWIFT_RUNNERS:
        for _ in range(2):
            _, exc, _ = run(launcher(kernel, name), grid, args, kwargs)
            assert_same_error(exc, expected_exc, f"{name} {case}")


@pytest.mark.parametrize("case,exc_type,match", [
    ("cpu_tensor_input", ValueError, "cannot be accessed from Triton"),
    ("cpu_tensor_output", ValueError, "cannot be accessed from Triton"),
    ("unknown_kwarg", KeyError, "bogus"),
    ("int_2_64", OverflowError, "too large"),
])
def test_error_types(case, exc_type, match):
    # The brief's expectations spelled out, for Triton and swiftlaunch alike.
    kernel, grid, args, kwargs = ERROR_CASES[case]()
    check_differential(*WARM_CALLS[kernel.__name__]())
    for name in ALL_RUNNERS:
        with pytest.raises(exc_type, match=match):
            call(launcher(kernel, name), grid, args, kwargs)


# --- the public objects ------------------------------------------------------------------------------------


def test_returns_tritons_compiled_kernel():
    grid, args, kwargs = add_args(1000)
    _, _, expected = run(zoo.add_kernel, grid, args, kwargs)
    for _ in range(2):
        _, _, result = run(launcher(zoo.add_kernel, "fast"), grid, args, kwargs)
        # fast(k) shares k's caches, so it hands back the very object Triton returns.
        assert result is expected
        _, _, result = run(twin(zoo.add_kernel), grid, args, kwargs)
        assert isinstance(result, CompiledKernel) and result.metadata.hash == expected.metadata.hash


def test_fast_forwards_attributes():
    wrapped = launcher(zoo.add_kernel, "fast")
    assert wrapped.fn is zoo.add_kernel
    assert wrapped.arg_names == zoo.add_kernel.arg_names
    assert wrapped.cache_key == zoo.add_kernel.cache_key


@swiftlaunch.jit
def _device_add(a, b):
    return a + b


@triton.jit
def _calls_swiftlaunch_device_function(X, Y, OUT, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(OUT + offs, _device_add(tl.load(X + offs, mask=mask), tl.load(Y + offs, mask=mask)), mask=mask)


def test_jit_is_a_jit_function_usable_from_other_kernels():
    assert isinstance(_device_add, swiftlaunch.FastJITFunction)
    assert isinstance(_device_add, JITFunction)
    grid, args, kwargs = add_args(1000)
    (expected,), _, _ = run(zoo.add_kernel, grid, args, kwargs)
    out_spec, x, y, n = args
    (out,), exc, _ = run(_calls_swiftlaunch_device_function, grid, [x, y, out_spec, n], kwargs)
    assert exc is None, exc
    assert_same(out, expected, "kernel calling a swiftlaunch.jit function")


def test_warmup_compiles_without_launching():
    kernel = swiftlaunch.jit(zoo.add_kernel.fn)
    grid, (_, x, y, n), kwargs = add_args(1000)
    out = torch.full((n,), 77.0, device="cuda")
    compiled = kernel.warmup(out, x, y, n, grid=grid, **kwargs)
    torch.cuda.synchronize()
    assert isinstance(compiled, CompiledKernel)
    assert (out == 77.0).all(), "warmup must not launch"
    kernel[grid](out, x, y, n, **kwargs)
    assert_same(out, x + y, "launch after warmup")


def test_launcher_matches_triton_run():
    # swiftlaunch.Launcher() takes Helion's _launcher calling convention; the reference is what Helion's
    # default launcher does: kernel.run(*args, grid=grid, warmup=False, num_warps=..., num_stages=...).
    grid, (out_spec, x, y, n), _ = add_args(3000)
    expected = out_spec.make()
    zoo.add_kernel.run(expected, x, y, n, grid=grid, warmup=False, num_warps=4, num_stages=3, BLOCK=256)
    launch = swiftlaunch.Launcher()
    for i in range(3):
        out = out_spec.make()
        before = counters()
        launch(zoo.add_kernel, grid, out, x, y, n, num_warps=4, num_stages=3, BLOCK=256)
        after = counters()
        assert_same(out, expected, f"Launcher call {i}")
        if i:
            assert after[0] - before[0] == 1, swiftlaunch.stats()
