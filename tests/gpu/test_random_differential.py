"""Randomized differential test: thousands of launches, swiftlaunch against Triton, zero mismatches.

Each launch picks a zoo kernel, sizes, dtypes, element offsets (so pointers are 16-byte aligned or not),
scalar values, grid form and keyword order at random, runs it through Triton and through swiftlaunch
(``fast(k)`` or the ``swiftlaunch.jit`` twin) on fresh outputs, and compares the bits. The choices that
change Triton's specialization are drawn from small sets, so only a limited number of kernels get
compiled and most launches exercise the native cache lookup against many live entries.
"""

import random
import struct
import time

import torch
import triton

import swiftlaunch

from . import kernels as zoo
from .helpers import Out, bits, launcher, run

SEED = 20240607
LAUNCHES = 5000
POOL = 1 << 14  # elements per input pool; every input is a view into one of these


class Inputs:
    """Read-only random input pools, one per dtype; inputs are views at chosen element offsets."""

    def __init__(self):
        g = torch.Generator(device="cuda").manual_seed(SEED)
        self.pools = {}
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            self.pools[dtype] = torch.randn(POOL, generator=g, device="cuda").to(dtype)
        self.pools[torch.int32] = torch.randint(-1000, 1000, (POOL,), generator=g, device="cuda",
                                                dtype=torch.int32)

    def view(self, dtype, n, offset):
        return self.pools[dtype][offset:offset + n]


def offset(rng, dtype, aligned):
    """An element offset whose byte offset is (aligned) or is not a multiple of 16."""
    per_16_bytes = 16 // torch.tensor([], dtype=dtype).element_size()
    base = per_16_bytes * rng.randint(0, 3)
    return base if aligned else base + rng.randint(1, per_16_bytes - 1)


def pick_n(rng, limit=1024, allow_one=True):
    """n drawn so that Triton's three int specializations all occur: 1, multiples of 16, the rest."""
    kind = rng.random()
    if kind < 0.1 and allow_one:
        return 1
    if kind < 0.15:
        return 0
    if kind < 0.5:
        return 16 * rng.randint(1, limit // 16)
    n = rng.randint(2, limit)
    return n + 1 if n % 16 == 0 else n


def random_float(rng, bits32=True):
    """Ordinary values, specials, and now and then a random fp32 (or fp64) bit pattern."""
    kind = rng.random()
    if kind < 0.6:
        return rng.uniform(-1e4, 1e4)
    if kind < 0.8:
        return rng.choice([0.0, -0.0, 1.0, 0.1, 1e-40, 1e39, 1e300, float("inf"), float("-inf"), float("nan")])
    if bits32:
        return struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0]
    return struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]


def random_int(rng):
    """An int from one of the i32 / i64 / u64 ranges (each with and without divisibility), or 1."""
    kind = rng.randrange(6)
    if kind == 0:
        return 1
    if kind == 1:
        return rng.randint(-2**31, 2**31 - 1)
    if kind == 2:
        return 16 * rng.randint(-2**27, 2**27 - 1)
    if kind == 3:
        return rng.choice([-1, 1]) * rng.randint(2**31, 2**63 - 1)
    if kind == 4:
        return rng.randint(2**63, 2**64 - 1)
    return 16 * rng.randint(2**59, 2**60 - 1)


def meta(rng, kwargs):
    """Random extra options and keyword order (Triton's cache key depends on both)."""
    kwargs = dict(kwargs)
    if rng.random() < 0.3:
        kwargs["num_warps"] = 4
    items = list(kwargs.items())
    rng.shuffle(items)
    return dict(items)


def grid_form(rng, grid):
    """The same grid as a tuple, a list, or a callable."""
    kind = rng.randrange(3)
    if kind == 0:
        return tuple(grid)
    if kind == 1:
        return list(grid)
    return lambda _meta: tuple(grid)


# --- one generator per kernel family: (rng, inputs) -> (kernel, grid, args, kwargs) --------------------


def gen_add(rng, inp):
    kernel = rng.choice([zoo.add_kernel, zoo.add_kernel, zoo.add_nospec_kernel])
    dtype = rng.choice([torch.float32, torch.float16, torch.int32])
    n = pick_n(rng)
    misaligned = rng.choice([None, "X", "OUT"])
    x = inp.view(dtype, n, offset(rng, dtype, misaligned != "X"))
    y = inp.view(dtype, n, offset(rng, dtype, True))
    out = Out(n, dtype, offset=offset(rng, dtype, misaligned != "OUT"))
    grid = grid_form(rng, (triton.cdiv(n, 256),))
    if rng.random() < 0.1:
        return kernel, grid, [out, x, y, n, 256], {}  # the constexpr given positionally
    return kernel, grid, [out, x, y, n], meta(rng, {"BLOCK": 256})


def gen_scaled_add(rng, inp):
    # n is fixed and x aligned, so that the scalars alone decide the specialization.
    n = 512
    x = inp.view(torch.float32, n, offset(rng, torch.float32, True))
    y = inp.view(torch.float32, n, 0)
    alpha = rng.uniform(-4, 4) if rng.random() < 0.7 else 3
    args = [x, y, Out(n, torch.float32), n, alpha]
    if rng.random() < 0.8:  # else k takes its default, 0
        args.append(rng.choice([1, 17, 16 * rng.randint(-100, 100), rng.randint(2**33, 2**40),
                                rng.randint(2**63, 2**64 - 1)]))
    return zoo.scaled_add_kernel, grid_form(rng, (2,)), args, {}


def gen_scalars(rng, inp):
    outs = [Out(1, torch.int64, fill=-7), Out(1, torch.float32, fill=-7), Out(1, torch.int8, fill=-7)]
    return zoo.scalars_kernel, (1,), [*outs, random_int(rng), random_float(rng), rng.random() < 0.5], {}


ANNOTATED = [
    (zoo.store_fp16_kernel, torch.float16, lambda rng: rng.choice([rng.uniform(-65000, 65000), 1e-7, 0.1,
                                                                   float("nan"), float("-inf")])),
    (zoo.store_bf16_kernel, torch.bfloat16, lambda rng: random_float(rng)),
    (zoo.store_fp64_kernel, torch.float64, lambda rng: random_float(rng, bits32=False)),
    (zoo.store_i32_kernel, torch.int32, lambda rng: rng.choice([1, 16 * rng.randint(-2**26, 2**26),
                                                                rng.randint(-2**31, 2**31 - 1)])),
    (zoo.store_i64_kernel, torch.int64, lambda rng: rng.choice([1, 16 * rng.randint(-2**58, 2**58),
                                                                rng.randint(-2**63, 2**63 - 1)])),
    (zoo.store_u8_kernel, torch.uint8, lambda rng: rng.randint(0, 255)),
]


def gen_annotated(rng, inp):
    kernel, dtype, value = rng.choice(ANNOTATED)
    return kernel, (1,), [Out(1, dtype, fill=9), value(rng)], {}


def gen_optional_bias(rng, inp):
    n = pick_n(rng)
    x = inp.view(torch.float32, n, offset(rng, torch.float32, rng.random() < 0.7))
    bias = None if rng.random() < 0.5 else inp.view(torch.float32, n, offset(rng, torch.float32, True))
    return (zoo.optional_bias_kernel, (triton.cdiv(n, 256),), [x, bias, Out(n, torch.float32), n],
            meta(rng, {"BLOCK": 256}))


def gen_scale_global(rng, inp):
    n = pick_n(rng)
    x = inp.view(torch.float32, n, offset(rng, torch.float32, rng.random() < 0.7))
    return zoo.scale_global_kernel, (triton.cdiv(n, 256),), [x, Out(n, torch.float32), n], {}


def gen_softmax(rng, inp):
    cols = rng.choice([16, 40, 100, 128])
    rows = rng.randint(1, 32)
    stride = cols + rng.choice([0, 0, 5])
    x = inp.view(torch.float32, rows * stride, offset(rng, torch.float32, True))
    return (zoo.softmax_kernel, (rows,), [Out((rows, cols), torch.float32), x, cols, cols, stride],
            {"BLOCK": triton.next_power_of_2(cols)})


def gen_matmul(rng, inp):
    m, n, k = rng.choice([16, 24, 32, 48]), rng.choice([16, 24, 32, 48]), rng.choice([16, 32, 48])
    a = inp.view(torch.float16, m * k, offset(rng, torch.float16, True)).view(m, k)
    b = inp.view(torch.float16, k * n, offset(rng, torch.float16, True)).view(k, n)
    args = [Out((m, n), torch.float32), a, b, m, n, k, k, 1, n, 1, n, 1]
    return (zoo.matmul_kernel, (triton.cdiv(m, 16), triton.cdiv(n, 16)), args,
            {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16})


def gen_grid(rng, inp):
    if rng.random() < 0.5:
        grid = (rng.randint(1, 8), rng.randint(1, 8))
        kernel = zoo.grid2d_kernel
    else:
        grid = (rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4))
        kernel = zoo.grid3d_kernel
    size = 1
    for g in grid:
        size *= g
    return kernel, grid_form(rng, grid), [Out(size, torch.int32, fill=-1)], {}


def gen_sum(rng, inp):
    n_tensors = rng.choice([4, 4, 16, 16, 64])  # the output and n_tensors - 1 inputs
    n = pick_n(rng, 512, allow_one=False)  # n == 1 would mean one more launcher build per kernel
    inputs = [inp.view(torch.float32, n, offset(rng, torch.float32, True)) for _ in range(n_tensors - 1)]
    return (zoo.SUM_KERNELS[n_tensors], (triton.cdiv(n, 128),), [Out(n, torch.float32), *inputs, n],
            {"BLOCK": 128})


GENERATORS = [  # (generator, weight)
    (gen_add, 6), (gen_scaled_add, 3), (gen_scalars, 2), (gen_annotated, 3), (gen_optional_bias, 2),
    (gen_scale_global, 1), (gen_softmax, 1), (gen_matmul, 1), (gen_grid, 1), (gen_sum, 1),
]


def describe(kernel, grid, args, kwargs, runner):
    def arg(a):
        if isinstance(a, torch.Tensor):
            return f"{a.dtype}[{a.numel()}]@{a.data_ptr() % 16}"
        return repr(a)
    grid = "callable" if callable(grid) else grid
    return f"{runner}: {kernel.__name__}[{grid}]({', '.join(map(arg, args))}, **{kwargs})"


def test_random_launches_match_triton():
    rng = random.Random(SEED)
    inp = Inputs()
    side = torch.cuda.Stream()
    generators, weights = zip(*GENERATORS)
    mismatches = []  # descriptions of launches that did not match
    pending = []  # (0-d bool tensor: outputs differ, description), checked at the end in one sync
    sl_launches = 0
    start = time.perf_counter()

    for _ in range(LAUNCHES):
        kernel, grid, args, kwargs = rng.choices(generators, weights)[0](rng, inp)
        runner = rng.choice(("fast", "jit"))
        on_side_stream = rng.random() < 0.05
        if on_side_stream:
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                expected, expected_exc, _ = run(kernel, grid, args, kwargs)
                got, got_exc, _ = run(launcher(kernel, runner), grid, args, kwargs)
            torch.cuda.current_stream().wait_stream(side)
        else:
            expected, expected_exc, _ = run(kernel, grid, args, kwargs)
            got, got_exc, _ = run(launcher(kernel, runner), grid, args, kwargs)
        sl_launches += 1

        desc = describe(kernel, grid, args, kwargs, runner)
        if type(got_exc) is not type(expected_exc) or str(got_exc) != str(expected_exc):
            mismatches.append(f"{desc}: raised {got_exc!r}, Triton raised {expected_exc!r}")
            continue
        differs = [torch.ne(bits(a), bits(e)).any() for a, e in zip(got, expected)]
        if on_side_stream:
            # Compare synchronously: these buffers go back to the side stream's pool when freed, so no
            # default-stream work may still be reading them by then.
            if any(bool(d) for d in differs):
                mismatches.append(desc)
        elif differs:
            pending.append((torch.stack(differs).any(), desc))

    if pending:
        flags = torch.stack([flag for flag, _ in pending]).cpu()
        mismatches += [desc for flag, (_, desc) in zip(flags.tolist(), pending) if flag]
    elapsed = time.perf_counter() - start

    stats = swiftlaunch.stats()
    print(f"\nrandom differential: {LAUNCHES} launches through Triton and swiftlaunch in {elapsed:.1f}s; "
          f"swiftlaunch hits={stats['hits']} misses={stats['misses']} fallbacks={stats['fallbacks']}; "
          f"mismatches={len(mismatches)}")
    assert not mismatches, f"{len(mismatches)} mismatches, first ones:\n" + "\n".join(mismatches[:20])
    # Every case is one swiftlaunch serves natively; only the first launch of each specialization
    # (a few hundred at most, over both runners) may miss.
    assert stats["hits"] >= 0.8 * sl_launches, stats
