"""``python -m swiftlaunch bench``: what one kernel call costs the host, stack by stack.

With a CUDA GPU it runs a small kernel suite (``_bench_kernels.py``) through each launch stack and
measures the host cost of a call:

- ``cpu_only``: N calls back to back, then one ``torch.cuda.synchronize()``; time / N. This is what
  the host spends submitting work, provided the GPU keeps up.
- ``wall+sync``: a synchronize after every call (host cost plus GPU round trip), over fewer calls.

Warm-up calls come first, every stack's output is checked against eager PyTorch once before any
timing, repetitions are interleaved across stacks (so drift in clocks or noisy neighbours hits every
stack alike), and each cell reports the median and min over repetitions plus ratios to eager PyTorch
and to the floor. This is the method of the project's baseline note (``baseline-h200.md``).

After the suite, and alone with ``--targets-only``, it measures issue 3's launch-overhead targets and
prints them last: vec_add with its output allocated once, outside the timed call, through swiftlaunch
(``fast`` and ``@swiftlaunch.jit``), Triton, ``CompiledKernel.run`` called directly and the Swift
core's raw ``cuLaunchKernelEx`` loop; the ratios swiftlaunch / compiled_run (target <= 0.90) and
swiftlaunch / raw_launch (<= 1.25); and the cost of one extra tensor argument, the least-squares
slope over the 4-, 16- and 64-tensor kernels (<= 60 ns for swiftlaunch). Each target line says met
or missed from the figures measured in that run; missing a target does not change the exit status.

Without a GPU (or with ``--cpu``) the launch figures cannot be measured. It then measures the
host-side work that needs no GPU: the per-call specialization and cache key (Triton's binder +
``compute_cache_key``, Helion's ``Kernel.specialization_key`` and ``swiftlaunch.dispatch_key``) on
CPU tensors, and says so. Missing pieces (Helion, the Swift core, matplotlib) skip their cells or the
chart with the reason; they never fail the run.

Output: the table on stdout, progress on stderr, and under ``--out``: ``results.json`` (machine,
card, driver, versions, settings, every cell's samples, the targets under ``"targets"``; without a GPU
``{"skipped": ...}``), ``table.txt`` and a chart (``launch_cost.png``; ``key_cost.png`` without a GPU;
none with ``--targets-only``). The exit status is 1 only when a stack raised or gave a wrong result.

Importable: ``main(argv)`` is the command; ``run_launch_bench`` / ``run_targets_bench`` /
``run_key_bench`` return the results as a dict (the same one written to ``results.json``);
``format_launch_table`` / ``format_targets_table`` / ``format_key_table`` render them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

# --- what can be measured ---------------------------------------------------------------------

#: Stack name -> what one call of it is. Order is table order.
STACKS: dict[str, str] = {
    "eager": "eager PyTorch (the op allocates its output)",
    "triton": "empty_like + Triton kernel[grid](...)",
    "compiled_run": "empty_like + CompiledKernel.run(...) called directly (hooks and launch_metadata None)",
    "helion": "Helion kernel(...), fixed config, static shapes",
    "swiftlaunch": "empty_like + swiftlaunch.fast(kernel)[grid](...)",
    "swiftlaunch_jit": "empty_like + kernel[grid](...) for a @swiftlaunch.jit kernel (a Python __getitem__)",
    "swiftlaunch_helion": "Helion kernel(...) after swiftlaunch.helion.install()",
    "swiftlaunch_helion_pool": "swiftlaunch.helion.accelerate with an output-buffer pool",
    "empty_like": "floor 1: torch.empty_like alone",
    "raw_launch": "floor 2: cuLaunchKernelEx loop in the Swift core, arguments packed once",
}
FLOOR_STACKS = ("empty_like", "raw_launch")

#: Kernel name -> title. Order is table order.
KERNELS: dict[str, str] = {
    "vec_add": "vector add, N = 4096, fp32",
    "add2d": "2-D add, 1024 x 1024, bf16",
    "many_args_4": "sum of tensors, 4 tensor arguments, N = 1024, fp32",
    "many_args_16": "sum of tensors, 16 tensor arguments, N = 1024, fp32",
    "many_args_64": "sum of tensors, 64 tensor arguments, N = 1024, fp32",
    "scalar_args": "x + alpha * beta if flag (float, int, bool arguments), N = 4096, fp32",
    "softmax": "row softmax, 128 x 256, fp32",
    "matmul": "matmul (tl.dot), 128 x 128 x 128, fp16",
}
KERNEL_ALIASES = {"many_args": ("many_args_4", "many_args_16", "many_args_64")}
QUICK_KERNELS = ("vec_add", "scalar_args")

#: Without a GPU, each of these stacks has one host-side key computation to measure.
KEY_IMPLS: dict[str, str] = {
    "triton": "Triton binder + compute_cache_key (as in JITFunction.run)",
    "helion": "Helion Kernel.specialization_key(args)",
    "swiftlaunch": "swiftlaunch.dispatch_key(swiftlaunch.fast(kernel), *args, **meta)",
}

NO_GPU_NOTE = "launch figures need a CUDA GPU"

# Issue 3's launch-overhead targets, measured with every output allocated once, outside the timed call.
#: Stack name -> what one call of it is, in the targets section. Order is table order.
TARGET_STACKS: dict[str, str] = {
    "triton": "Triton kernel[grid](out, ...)",
    "compiled_run": "CompiledKernel.run(..., out, ...) called directly (hooks and launch_metadata None, "
                    "stream read once)",
    "swiftlaunch": "swiftlaunch.fast(kernel)[grid](out, ...)",
    "swiftlaunch_jit": "kernel[grid](out, ...) for a @swiftlaunch.jit kernel",
    "raw_launch": "cuLaunchKernelEx loop in the Swift core, arguments packed once",
}
TARGET_KERNEL = "vec_add"
#: (stack, the stack it is divided by, the most the ratio of their vec_add medians may be).
TARGET_RATIOS: tuple[tuple[str, str, float], ...] = (
    ("swiftlaunch", "compiled_run", 0.90),
    ("swiftlaunch", "raw_launch", 1.25),
    ("swiftlaunch_jit", "compiled_run", 0.90),
    ("swiftlaunch_jit", "raw_launch", 1.25),
)
#: The kernels whose slope is the cost of one extra tensor argument -> their tensor arguments.
TENSOR_KERNELS: dict[str, int] = {"many_args_4": 4, "many_args_16": 16, "many_args_64": 64}
# raw_launch too: the driver's own cost per extra parameter, which every stack pays.
TENSOR_STACKS = ("triton", "compiled_run", "swiftlaunch", "raw_launch")
TENSOR_TARGET_STACK, TENSOR_TARGET_NS = "swiftlaunch", 60.0
NO_GPU_TARGETS = "launch-overhead targets need a CUDA GPU"

LAUNCH_NOTES = [
    "x floor: over empty_like + raw_launch, i.e. allocating an output plus a bare cuLaunchKernelEx; "
    "every other stack allocates its output too.",
    "compiled_run passes None for launch_metadata and for both launch hooks (Triton passes its HookChain "
    "objects, which its C launcher calls on every launch even when empty) and reads the stream once: "
    "it is Triton's C launcher alone.",
    "raw_launch is timed as cpu_only only (one native loop, one sync); empty_like as cpu_only only.",
]


@dataclass
class Settings:
    calls: int = 20_000  # cpu_only calls per repetition (the baseline's count)
    wall_calls: int = 2_000  # wall+sync calls per repetition: each one waits for the GPU
    reps: int = 5
    warmup: int = 500

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        s = cls(calls=2_000, wall_calls=200, reps=3, warmup=200) if args.quick else cls()
        if args.calls is not None:
            s.calls = args.calls
            s.wall_calls = max(1, args.calls // 10)
        if args.reps is not None:
            s.reps = args.reps
        return s


# --- the kernel suite ---------------------------------------------------------------------------


@dataclass
class BenchKernel:
    """One kernel of the suite, with its inputs on one device.

    Every launching stack calls ``jit_fn[grid](out, *args, **constexprs)`` with a fresh
    ``out = torch.empty_like(like)``: the output is the first kernel argument by convention.
    """

    name: str
    jit_fn: Any
    grid: tuple[int, ...]
    args: tuple
    constexprs: dict[str, Any]
    like: torch.Tensor
    eager: Callable[[], torch.Tensor]
    eager_label: str
    helion_fn: Callable | None
    helion_args: tuple
    helion_config: dict[str, Any]
    rtol: float
    atol: float


def make_kernel(name: str, device: str) -> BenchKernel:
    """Build kernel ``name`` of the suite with fresh inputs on ``device`` (seeded, so reproducible)."""
    from swiftlaunch import _bench_kernels as K

    torch.manual_seed(0)
    dev = torch.device(device)
    if name == "vec_add":
        x, y = torch.randn(4096, device=dev), torch.randn(4096, device=dev)
        return BenchKernel(
            name, K.add_kernel, (4,), (x, y, 4096), {"BLOCK": 1024}, like=x,
            eager=lambda: torch.add(x, y), eager_label="torch.add(x, y)",
            helion_fn=K.helion_add, helion_args=(x, y),
            helion_config={"block_sizes": [1024], "num_warps": 4, "num_stages": 1},
            rtol=1.3e-6, atol=1e-5,
        )
    if name == "add2d":
        x = torch.randn(1024, 1024, device=dev, dtype=torch.bfloat16)
        y = torch.randn(1024, 1024, device=dev, dtype=torch.bfloat16)
        return BenchKernel(
            name, K.add2d_kernel, (1024 // 32, 1024 // 128),
            (x, y, 1024, 1024, x.stride(0), x.stride(0), y.stride(0)), {"BLOCK_M": 32, "BLOCK_N": 128},
            like=x, eager=lambda: torch.add(x, y), eager_label="torch.add(x, y)",
            helion_fn=K.helion_add, helion_args=(x, y),
            helion_config={"block_sizes": [32, 128], "num_warps": 4, "num_stages": 1},
            rtol=1.6e-2, atol=1e-5,
        )
    if name in ("many_args_4", "many_args_16", "many_args_64"):
        n_tensors = int(name.rsplit("_", 1)[1])
        xs = [torch.randn(1024, device=dev) for _ in range(n_tensors - 1)]  # + the output
        jit_fn = {4: K.sum4_kernel, 16: K.sum16_kernel, 64: K.sum64_kernel}[n_tensors]
        return BenchKernel(
            name, jit_fn, (1,), (*xs, 1024), {"BLOCK": 1024}, like=xs[0],
            # No single torch op sums k tensors: stack + sum is what PyTorch code would write.
            eager=lambda: torch.stack(xs).sum(0), eager_label="torch.stack(xs).sum(0)",
            helion_fn=K.helion_sum, helion_args=(xs,),
            helion_config={"block_sizes": [1024], "num_warps": 4, "num_stages": 1},
            # The kernels add in order; torch.sum may not: allow for fp32 reassociation.
            rtol=1e-5, atol=1e-4,
        )
    if name == "scalar_args":
        x = torch.randn(4096, device=dev)
        # beta = 3: neither 1 (Triton would make it a constexpr) nor a multiple of 16.
        alpha, beta, flag = 0.5, 3, True
        return BenchKernel(
            name, K.scalar_args_kernel, (4,), (x, 4096, alpha, beta, flag), {"BLOCK": 1024}, like=x,
            eager=lambda: torch.add(x, beta, alpha=alpha), eager_label="torch.add(x, beta, alpha=alpha)",
            helion_fn=K.helion_scalar_args, helion_args=(x, alpha, beta, flag),
            helion_config={"block_sizes": [1024], "num_warps": 4, "num_stages": 1},
            rtol=1.3e-6, atol=1e-5,
        )
    if name == "softmax":
        x = torch.randn(128, 256, device=dev)
        return BenchKernel(
            name, K.softmax_kernel, (128,), (x, 256, x.stride(0), x.stride(0)), {"BLOCK": 256}, like=x,
            eager=lambda: torch.softmax(x, dim=-1), eager_label="torch.softmax(x, dim=-1)",
            helion_fn=K.helion_softmax, helion_args=(x,),
            helion_config={"block_sizes": [1], "num_warps": 4, "num_stages": 1},
            rtol=1e-4, atol=1e-6,
        )
    if name == "matmul":
        a = torch.randn(128, 128, device=dev, dtype=torch.float16)
        b = torch.randn(128, 128, device=dev, dtype=torch.float16)
        c = torch.empty(128, 128, device=dev, dtype=torch.float16)
        return BenchKernel(
            name, K.matmul_kernel, (128 // 64, 128 // 64),
            (a, b, 128, 128, 128, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1)),
            {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, like=c,
            eager=lambda: torch.matmul(a, b), eager_label="torch.matmul(a, b)",
            helion_fn=K.helion_matmul, helion_args=(a, b),
            helion_config={"block_sizes": [64, 64, 32], "num_warps": 4, "num_stages": 3},
            # fp16 output (values ~ +-11) of a 128-term accumulation whose order, and for cuBLAS
            # possibly precision, differs: a few fp16 ulps. A wrong kernel is off by whole units.
            rtol=2e-2, atol=5e-2,
        )
    raise ValueError(f"unknown kernel {name!r}")


# --- what is installed --------------------------------------------------------------------------


@dataclass
class Env:
    """The optional pieces, each with the reason it is missing (None when present)."""

    sl: Any = None  # the swiftlaunch package, when importable
    sl_error: str | None = None  # why swiftlaunch's native path cannot be measured
    native: Any = None  # swiftlaunch._native, when loaded
    helion: Any = None
    helion_error: str | None = None


def probe_env(want_helion: bool = True) -> Env:
    env = Env()
    try:
        env.sl = importlib.import_module("swiftlaunch")
    except Exception as e:  # noqa: BLE001 - a broken package must not stop the Triton/Helion rows
        env.sl_error = f"swiftlaunch does not import: {type(e).__name__}: {e}"
    if env.sl is not None:
        native_available = getattr(env.sl, "native_available", None)
        if native_available is None:
            env.sl_error = "swiftlaunch.native_available() is missing"
        elif not native_available():
            why = getattr(env.sl, "native_error", lambda: None)()
            env.sl_error = f"swiftlaunch native core not available ({why or 'no reason given'})"
        else:
            env.native = getattr(env.sl, "_native", None) or importlib.import_module("swiftlaunch._native")
    if want_helion:
        try:
            from swiftlaunch import _bench_kernels

            env.helion = _bench_kernels.load_helion()
        except Exception as e:  # noqa: BLE001 - e.g. helion 1.5.1 raises ImportError on torch 2.11
            env.helion_error = f"helion does not import: {type(e).__name__}: {e}"
    else:
        env.helion_error = "helion not requested"
    return env


class Unavailable(Exception):
    """A stack that does not apply here; the message is shown in its cell."""


# --- timing ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_gc():
    # A collection in the middle of a timed loop would be charged to whichever stack ran then.
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_per_call(call: Callable[[], Any], n: int, sync: Callable[[], None]) -> float:
    """cpu_only: ns per call of ``n`` back-to-back calls and one final sync."""
    perf = time.perf_counter_ns
    with _no_gc():
        sync()
        t0 = perf()
        for _ in range(n):
            call()
        sync()
        return (perf() - t0) / n


def time_per_call_synced(call: Callable[[], Any], n: int, sync: Callable[[], None]) -> float:
    """wall+sync: ns per call with a sync after each call."""
    perf = time.perf_counter_ns
    with _no_gc():
        sync()
        t0 = perf()
        for _ in range(n):
            call()
            sync()
        return (perf() - t0) / n


def time_batch(batch: Callable[[int], Any], n: int, sync: Callable[[], None]) -> float:
    """cpu_only for a stack that loops natively: ns per launch of one ``batch(n)`` and one sync."""
    perf = time.perf_counter_ns
    with _no_gc():
        sync()
        t0 = perf()
        batch(n)
        sync()
        return (perf() - t0) / n


def loop_overhead_ns(n: int = 200_000) -> float:
    """What the timing loop itself costs per call (included in every figure)."""
    return min(time_per_call(_nothing, n, _nothing) for _ in range(3))


def _nothing() -> None:
    return None


def _stats_us(samples_ns: list[float]) -> dict[str, Any] | None:
    if not samples_ns:
        return None
    us = [s / 1000.0 for s in samples_ns]
    return {"median": statistics.median(us), "min": min(us), "samples": us}


# --- GPU: preparing each stack --------------------------------------------------------------------


@dataclass
class Prepared:
    """A stack ready to time: one call, or a native batch of launches (raw_launch)."""

    call: Callable[[], Any] | None = None  # one call; returns the output it produced
    batch: Callable[[int], Any] | None = None  # n launches in one go
    check: Callable[[], torch.Tensor] | None = None  # produces an output to compare with eager


def _grid3(grid: tuple[int, ...]) -> tuple[int, int, int]:
    return (grid[0], grid[1] if len(grid) > 1 else 1, grid[2] if len(grid) > 2 else 1)


def _bound_tail(bk: BenchKernel, out: torch.Tensor) -> tuple:
    """The arguments after the output in declaration order, constexprs included: what Triton
    passes to ``CompiledKernel.run`` (``*bound_args.values()``)."""
    import inspect

    bound = inspect.signature(bk.jit_fn.fn).bind(out, *bk.args, **bk.constexprs)
    bound.apply_defaults()
    return tuple(bound.arguments.values())[1:]


def _compiled(bk: BenchKernel) -> Any:
    """The CompiledKernel Triton's own path picks (and compiles, the first time) for these arguments."""
    compiled = bk.jit_fn[bk.grid](torch.empty_like(bk.like), *bk.args, **bk.constexprs)
    if compiled is None or not hasattr(compiled, "packed_metadata"):
        raise Unavailable("Triton returned no CompiledKernel (TRITON_INTERPRET?)")
    return compiled


def _prep_eager(bk: BenchKernel, env: Env) -> Prepared:
    return Prepared(call=bk.eager, check=bk.eager)


def _into(out: torch.Tensor, call: Callable[[], Any]) -> Callable[[], torch.Tensor]:
    """The check of a stack that writes into one preallocated ``out``: NaN first, so a call that
    wrote nothing cannot pass with what an earlier call left there."""

    def check():
        out.fill_(float("nan"))
        call()
        return out

    return check


def _written_out(call: str, values: dict[str, Any], preallocated: bool, like: torch.Tensor) -> Prepared:
    """A timed call with its arguments written out, as user code writes ``k[grid](x, y, out, n,
    BLOCK=1024)``: star-unpacking a stored tuple and dict would add a tuple, a dict and a keyword
    conversion to every call, and charge stacks that take keywords more than those that do not.
    ``call`` is the expression, over ``values`` (bound as closure variables) and ``out``."""
    names = ", ".join(values)
    if preallocated:
        body = f"    def call():\n        {call}\n        return out\n"
        head = f"def make({names}, out):\n"
    else:
        body = f"    def call():\n        out = empty_like(like)\n        {call}\n        return out\n"
        head = f"def make({names}, empty_like, like):\n"
    namespace: dict[str, Any] = {}
    exec(head + body + "    return call\n", namespace)  # noqa: S102 - our own text, no user input
    if preallocated:
        out = torch.empty_like(like)
        timed = namespace["make"](*values.values(), out)
        return Prepared(call=timed, check=_into(out, timed))
    timed = namespace["make"](*values.values(), torch.empty_like, like)
    return Prepared(call=timed, check=timed)


def _launching(kernel: Any, bk: BenchKernel, preallocated: bool = False) -> Prepared:
    # ``kernel[grid]`` runs on every call, as in user code.
    values = {"kernel": kernel, "grid": bk.grid}
    values.update({f"a{i}": a for i, a in enumerate(bk.args)})
    values.update({f"c_{k}": v for k, v in bk.constexprs.items()})
    arguments = [f"a{i}" for i in range(len(bk.args))] + [f"{k}=c_{k}" for k in bk.constexprs]
    return _written_out(f"kernel[grid](out, {', '.join(arguments)})", values, preallocated, bk.like)


def _prep_triton(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    return _launching(bk.jit_fn, bk, preallocated)


def _prep_swiftlaunch(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel = env.sl.fast(bk.jit_fn)
    # No native key means every call would go to Triton: timing it would only time Triton again.
    if env.sl.dispatch_key(kernel, torch.empty_like(bk.like), *bk.args, **bk.constexprs) is None:
        raise Unavailable(f"swiftlaunch steps aside to Triton here ({kernel!r})")
    return _launching(kernel, bk, preallocated)


def _prep_swiftlaunch_jit(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    # The same kernel source through `@swiftlaunch.jit`: a JITFunction subclass whose `[grid]` is a
    # Python method in front of the same native launch as `fast`.
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel = env.sl.jit(bk.jit_fn.fn)
    if env.sl.dispatch_key(kernel, torch.empty_like(bk.like), *bk.args, **bk.constexprs) is None:
        raise Unavailable(f"swiftlaunch steps aside to Triton here ({kernel!r})")
    return _launching(kernel, bk, preallocated)


def _prep_compiled_run(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    # Triton's own last step (jit.py, JITFunction.run), minus its Python around it. Triton passes
    # kernel.launch_metadata(...) and knobs.runtime.launch_enter_hook / launch_exit_hook, HookChain
    # objects that the C launcher calls on every launch even when empty; here they are None, and the
    # stream is read once, so this is Triton's C launcher alone (floor-like).
    compiled = _compiled(bk)
    tail = _bound_tail(bk, bk.like)  # the output slot is filled per call; only the tail is kept
    g0, g1, g2 = _grid3(bk.grid)
    values = {"compiled": compiled, "g0": g0, "g1": g1, "g2": g2, "stream": torch.cuda.current_stream().cuda_stream,
              "function": compiled.function, "packed": compiled.packed_metadata}
    values.update({f"t{i}": t for i, t in enumerate(tail)})
    tail_names = ", ".join(f"t{i}" for i in range(len(tail)))
    return _written_out(f"compiled.run(g0, g1, g2, stream, function, packed, None, None, None, out, {tail_names})",
                        values, preallocated, bk.like)


def _helion_kernel(bk: BenchKernel, env: Env):
    if env.helion_error:
        raise Unavailable(env.helion_error)
    if bk.helion_fn is None:
        raise Unavailable("no Helion version of this kernel")
    helion = env.helion
    # One config and static shapes: no autotuning, one bound kernel. A new Kernel object per
    # stack so that accelerating one never changes another.
    return helion.kernel(bk.helion_fn, config=helion.Config(**bk.helion_config), static_shapes=True)


def _prep_helion(bk: BenchKernel, env: Env) -> Prepared:
    kernel, args = _helion_kernel(bk, env), bk.helion_args
    # Helion's own Kernel.__call__, also once swiftlaunch.helion.install() has put its shim there.
    method = type(kernel).__dict__["__call__"]
    own_call = getattr(method, "__wrapped__", method)

    def call():
        return own_call(kernel, *args)

    return Prepared(call=call, check=call)


def _prep_swiftlaunch_helion(bk: BenchKernel, env: Env) -> Prepared:
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel, args = _helion_kernel(bk, env), bk.helion_args
    sl_helion = importlib.import_module("swiftlaunch.helion")
    if not sl_helion.install():
        raise Unavailable(f"swiftlaunch.helion.install() refused: {sl_helion.refusal()}")
    kernel(*args)  # compiles through Helion; the native dispatch learns the call

    def call():
        return kernel(*args)

    return Prepared(call=call, check=call)


def _prep_swiftlaunch_helion_pool(bk: BenchKernel, env: Env) -> Prepared:
    raise Unavailable("n/a (no pool)")  # swiftlaunch has no output-buffer pool for Helion


def _prep_empty_like(bk: BenchKernel, env: Env) -> Prepared:
    like, empty_like = bk.like, torch.empty_like

    def call():
        return empty_like(like)

    return Prepared(call=call)  # nothing to check


def _prep_raw_launch(bk: BenchKernel, env: Env) -> Prepared:
    # The Swift core's launch of its own cache entry for these arguments, without anything per call:
    # _native.raw_launch_loop(kernel, token, grid, args, stream, device, iterations) packs `args`
    # (every parameter, constexprs included, in declaration order) once and calls cuLaunchKernelEx
    # `iterations` times. The entry exists once swiftlaunch.fast(kernel) has launched these arguments.
    if env.sl_error:
        raise Unavailable(env.sl_error)
    raw_launch_loop = getattr(env.native, "raw_launch_loop", None)
    if raw_launch_loop is None:
        raise Unavailable("swiftlaunch._native has no raw_launch_loop")
    fast_kernel = env.sl.fast(bk.jit_fn)
    out = torch.empty_like(bk.like)
    if env.sl.dispatch_key(fast_kernel, out, *bk.args, **bk.constexprs) is None:
        raise Unavailable(f"swiftlaunch steps aside to Triton here ({fast_kernel!r}): no native entry")
    fast_kernel[bk.grid](out, *bk.args, **bk.constexprs)  # a miss: Triton launches, the core caches it
    device = torch.cuda.current_device()
    token = fast_kernel.key(device, out, *bk.args, **bk.constexprs)  # the cache entry's key
    grid, args = _grid3(bk.grid), (out, *_bound_tail(bk, out))
    stream = torch.cuda.current_stream().cuda_stream

    def batch(n: int):
        return raw_launch_loop(fast_kernel, token, grid, args, stream, device, n)

    return Prepared(batch=batch, check=_into(out, lambda: batch(1)))


PREPARE: dict[str, Callable[[BenchKernel, Env], Prepared]] = {
    "eager": _prep_eager,
    "triton": _prep_triton,
    "compiled_run": _prep_compiled_run,
    "helion": _prep_helion,
    "swiftlaunch": _prep_swiftlaunch,
    "swiftlaunch_jit": _prep_swiftlaunch_jit,
    "swiftlaunch_helion": _prep_swiftlaunch_helion,
    "swiftlaunch_helion_pool": _prep_swiftlaunch_helion_pool,
    "empty_like": _prep_empty_like,
    "raw_launch": _prep_raw_launch,
}
assert PREPARE.keys() == STACKS.keys()

#: The targets section's stacks: the output allocated once, when the stack is prepared.
PREALLOCATED: dict[str, Callable[[BenchKernel, Env], Prepared]] = {
    **{name: functools.partial(PREPARE[name], preallocated=True)
       for name in ("triton", "compiled_run", "swiftlaunch", "swiftlaunch_jit")},
    "raw_launch": _prep_raw_launch,  # allocation-free already
}
assert PREALLOCATED.keys() == TARGET_STACKS.keys()


# --- GPU: running the suite ---------------------------------------------------------------------


@dataclass
class Cell:
    kernel: str
    stack: str
    status: str = "ok"  # ok | skipped | error | wrong
    reason: str | None = None
    check: str = "-"  # ok | - (nothing to check) | the mismatch
    cpu_only_ns: list[float] = field(default_factory=list)
    wall_sync_ns: list[float] = field(default_factory=list)

    def fail(self, status: str, e: BaseException | str) -> None:
        self.status = status
        self.reason = e if isinstance(e, str) else f"{type(e).__name__}: {_first_line(e)}"


def _first_line(e: BaseException, lines: int = 1) -> str:
    return " ".join([line.strip() for line in str(e).splitlines() if line.strip()][:lines])


def _poison(like: torch.Tensor) -> None:
    # The caching allocator hands a freed block back to the next same-sized request, so a stack that
    # wrote nothing could show another stack's correct result. Leave NaN in the free block instead.
    torch.empty_like(like).fill_(float("nan"))


def _steady_output(bk: BenchKernel, prepared: Prepared, keep: list) -> torch.Tensor:
    """The output of a steady-state call: the second one, since a first call may compile or take
    a cache-miss path (swiftlaunch lets Triton run its misses) that is not what gets timed."""
    prepared.check()
    _poison(bk.like)
    out = prepared.check()
    keep.append(out)  # keep it alive so no later stack can be handed this block
    return out


def _mismatch(bk: BenchKernel, out: torch.Tensor, reference: torch.Tensor) -> str | None:
    try:
        torch.testing.assert_close(out, reference, rtol=bk.rtol, atol=bk.atol)
    except AssertionError as e:
        return _first_line(e, 2) or "mismatch"  # assert_close says what, then how many differ
    return None


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_kernel(bk: BenchKernel, stacks: list[str], env: Env, settings: Settings,
                 sync: Callable[[], None]) -> list[Cell]:
    """Prepare, check, warm up and time every stack on one kernel; one Cell per stack."""
    cells, ready = prepare_stacks(bk, stacks, env, settings, sync)
    time_interleaved(ready, settings, sync)
    return cells


def prepare_stacks(bk: BenchKernel, stacks: list[str], env: Env, settings: Settings, sync: Callable[[], None],
                   prepare: dict[str, Callable[[BenchKernel, Env], Prepared]] = PREPARE,
                   ) -> tuple[list[Cell], list[tuple[Cell, Prepared]]]:
    """Prepare, check against eager and warm up every stack on one kernel: one Cell per stack, and
    the (cell, prepared) pairs that are ready to time. ``prepare`` maps a stack to how it is built."""
    cells = {name: Cell(bk.name, name) for name in stacks}
    ready: dict[str, Prepared] = {}
    reference = bk.eager()
    sync()
    keep: list = [reference]
    for name in stacks:
        cell = cells[name]
        try:
            prepared = prepare[name](bk, env)
            out = _steady_output(bk, prepared, keep) if prepared.check is not None else None
            sync()
        except Unavailable as e:
            _failed(cell, "skipped", str(e))
            continue
        except Exception as e:  # noqa: BLE001 - one broken stack must not stop the others
            _failed(cell, "error", e)
            continue
        if out is not None:
            mismatch = _mismatch(bk, out, reference)
            cell.check = mismatch or "ok"
            if mismatch:
                _failed(cell, "wrong", f"output differs from {bk.eager_label}: {mismatch}")
                continue
        ready[name] = prepared
    del keep

    for name, prepared in list(ready.items()):
        try:
            if prepared.call is not None:
                for _ in range(settings.warmup):
                    prepared.call()
            else:
                prepared.batch(settings.warmup)
            sync()
        except Exception as e:  # noqa: BLE001
            _failed(cells[name], "error", e)
            del ready[name]
    return [cells[name] for name in stacks], [(cells[name], prepared) for name, prepared in ready.items()]


def time_interleaved(ready: list[tuple[Cell, Prepared]], settings: Settings, sync: Callable[[], None],
                     wall_sync: bool = True) -> None:
    """Time every ready (cell, prepared) pair, appending to the cells' samples. Interleaved: every
    repetition visits every pair, so slow drift is shared by all of them. Pairs may come from several
    kernels. ``wall_sync=False`` times cpu_only alone."""
    live = list(ready)
    for rep in range(settings.reps):
        for pair in list(live):
            cell, prepared = pair
            try:
                if prepared.call is not None:
                    cell.cpu_only_ns.append(time_per_call(prepared.call, settings.calls, sync))
                    if wall_sync and cell.stack not in FLOOR_STACKS:
                        cell.wall_sync_ns.append(time_per_call_synced(prepared.call, settings.wall_calls, sync))
                else:
                    cell.cpu_only_ns.append(time_batch(prepared.batch, settings.calls, sync))
            except Exception as e:  # noqa: BLE001
                _failed(cell, "error", e)
                live = [p for p in live if p is not pair]
                continue
            if rep == settings.reps - 1:
                wall = f"   wall+sync {statistics.median(cell.wall_sync_ns) / 1000:8.2f} us" if cell.wall_sync_ns else ""
                _progress(f"  {cell.kernel:<13} {cell.stack:<24} cpu_only {statistics.median(cell.cpu_only_ns) / 1000:8.2f} us{wall}")


def _failed(cell: Cell, status: str, why: BaseException | str) -> None:
    cell.fail(status, why)
    _progress(f"  {cell.kernel:<13} {cell.stack:<24} {status}: {cell.reason}")


def _cell_dict(cell: Cell, eager: Cell | None, floor_us: float | None) -> dict[str, Any]:
    cpu, wall = _stats_us(cell.cpu_only_ns), _stats_us(cell.wall_sync_ns)
    eager_cpu = _stats_us(eager.cpu_only_ns) if eager else None
    eager_wall = _stats_us(eager.wall_sync_ns) if eager else None

    def ratio(a, b):
        return a["median"] / b["median"] if a and b and b["median"] > 0 else None

    return {
        "kernel": cell.kernel,
        "stack": cell.stack,
        "status": cell.status,
        "reason": cell.reason,
        "check": cell.check,
        "cpu_only_us": cpu,
        "wall_sync_us": wall,
        "ratio_to_eager": {"cpu_only": ratio(cpu, eager_cpu), "wall_sync": ratio(wall, eager_wall)},
        "ratio_to_floor": {"cpu_only": cpu["median"] / floor_us if cpu and floor_us else None},
    }


def _sync_for(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else _nothing


def _stats_for(env: Env) -> Callable[..., dict] | None:
    """swiftlaunch.stats when the native path is measured: it tells whether swiftlaunch stepped aside."""
    return getattr(env.sl, "stats", None) if env.sl is not None and not env.sl_error else None


def _error_cells(kernel: str, stacks: Iterable[str], e: BaseException) -> list[Cell]:
    """One failed Cell per stack, for a kernel that could not even be built."""
    cells = [Cell(kernel, s) for s in stacks]
    for c in cells:
        c.fail("error", e)
    return cells


def run_launch_bench(kernels: list[str], stacks: list[str], settings: Settings, device: str = "cuda",
                     env: Env | None = None, targets: bool = True) -> dict[str, Any]:
    """The GPU benchmark; returns the results dict written to results.json. ``targets``: issue 3's
    launch-overhead targets too, measured after the suite, under ``results["targets"]``."""
    env = env or probe_env(want_helion=any("helion" in s for s in stacks))
    sync, stats = _sync_for(device), _stats_for(env)
    results = _header("gpu", kernels, stacks, settings, env, cuda=device.startswith("cuda"))
    results["loop_overhead_ns"] = loop_overhead_ns()
    results["notes"] = list(LAUNCH_NOTES)
    results["kernels"], results["cells"], results["swiftlaunch_stats"] = {}, [], {}
    for i, name in enumerate(kernels, 1):
        _progress(f"[{i}/{len(kernels)}] {name}: {KERNELS[name]} -- compiling and checking {len(stacks)} stacks")
        try:
            bk = make_kernel(name, device)
        except Exception as e:  # noqa: BLE001
            cells, bk = _error_cells(name, stacks, e), None
        else:
            if stats:
                stats(reset=True)
            cells = bench_kernel(bk, stacks, env, settings, sync)
            if stats:
                results["swiftlaunch_stats"][name] = stats()
        by_stack = {c.stack: c for c in cells}
        floor_parts = [statistics.median(by_stack[s].cpu_only_ns) / 1000
                       for s in FLOOR_STACKS if s in by_stack and by_stack[s].cpu_only_ns]
        floor_us = sum(floor_parts) if len(floor_parts) == len(FLOOR_STACKS) else None
        eager = by_stack.get("eager")
        eager = eager if eager is not None and eager.cpu_only_ns else None
        results["kernels"][name] = {
            "title": KERNELS[name],
            "eager": bk.eager_label if bk else None,
            "floor_us": floor_us,
        }
        results["cells"].extend(_cell_dict(c, eager, floor_us) for c in cells)
    if targets:
        results["targets"] = run_targets(settings, env, device)
    return results


# --- GPU: issue 3's launch-overhead targets -------------------------------------------------------


def run_targets_bench(settings: Settings, device: str = "cuda", env: Env | None = None) -> dict[str, Any]:
    """``--targets-only``: the results dict with issue 3's targets alone (no suite, no cells)."""
    env = env or probe_env(want_helion=False)
    results = _header("gpu", [TARGET_KERNEL, *TENSOR_KERNELS], list(TARGET_STACKS), settings, env,
                      cuda=device.startswith("cuda"))
    results["settings"]["targets_only"] = True
    results["stacks"] = dict(TARGET_STACKS)
    results["loop_overhead_ns"] = loop_overhead_ns()
    results["notes"], results["kernels"], results["cells"] = [], {}, []
    results["targets"] = run_targets(settings, env, device, results["loop_overhead_ns"])
    return results


def run_targets(settings: Settings, env: Env, device: str = "cuda", loop_ns: float | None = None) -> dict[str, Any]:
    """Issue 3's targets: vec_add through every TARGET_STACKS stack and the tensor-argument kernels
    through TENSOR_STACKS, each output allocated once; every cell checked against eager, then all of
    them timed cpu_only in one interleaved loop, so the ratios and the slope compare like with like."""
    _progress(f"[targets] {TARGET_KERNEL} and {', '.join(TENSOR_KERNELS)}, outputs preallocated -- "
              "compiling and checking")
    sync, stats = _sync_for(device), _stats_for(env)
    if stats:
        stats(reset=True)
    cells: list[Cell] = []
    ready: list[tuple[Cell, Prepared]] = []
    for name in (TARGET_KERNEL, *TENSOR_KERNELS):
        stacks = list(TARGET_STACKS) if name == TARGET_KERNEL else list(TENSOR_STACKS)
        try:
            bk = make_kernel(name, device)
        except Exception as e:  # noqa: BLE001
            cells.extend(_error_cells(name, stacks, e))
            continue
        kernel_cells, kernel_ready = prepare_stacks(bk, stacks, env, settings, sync, PREALLOCATED)
        cells.extend(kernel_cells)
        ready.extend(kernel_ready)
    time_interleaved(ready, settings, sync, wall_sync=False)
    card = torch.cuda.get_device_name() if device.startswith("cuda") else device
    targets = summarize_targets(cells, card, settings, loop_overhead_ns() if loop_ns is None else loop_ns)
    if stats:
        targets["swiftlaunch_stats"] = stats()
    return targets


def per_tensor_slope_ns(points: dict[int, float]) -> float | None:
    """Least-squares slope of us per call against the number of tensor arguments, in ns per extra
    tensor argument; None with fewer than two points."""
    if len(points) < 2:
        return None
    counts = sorted(points)
    slope, _ = statistics.linear_regression(counts, [points[n] for n in counts])
    return slope * 1000.0


def verdict(value: float | None, limit: float) -> str:
    """A target (value <= limit) as measured: met, missed, or not measured."""
    if value is None:
        return "not measured"
    return "met" if value <= limit else "missed"


def summarize_targets(cells: list[Cell], card: str, settings: Settings, loop_ns: float) -> dict[str, Any]:
    """Issue 3's figures and verdicts from the timed cells: ``results["targets"]``."""
    by_key = {(c.kernel, c.stack): c for c in cells}

    def median_us(kernel: str, stack: str) -> float | None:
        c = by_key.get((kernel, stack))
        return statistics.median(c.cpu_only_ns) / 1000 if c and c.status == "ok" and c.cpu_only_ns else None

    vec_us = {s: median_us(TARGET_KERNEL, s) for s in TARGET_STACKS}
    tensor_us = {s: {n: median_us(k, s) for k, n in TENSOR_KERNELS.items()} for s in TENSOR_STACKS}
    # A slope over some of the counts would not be the one asked for: all of them, or none.
    slopes = {s: per_tensor_slope_ns(us) if None not in us.values() else None for s, us in tensor_us.items()}
    verdicts = []
    for stack, base, limit in TARGET_RATIOS:
        num, den = vec_us[stack], vec_us[base]
        value = num / den if num is not None and den else None
        verdicts.append({"target": f"{stack} / {base}", "value": value, "limit": limit, "unit": "x",
                         "verdict": verdict(value, limit)})
    value = slopes[TENSOR_TARGET_STACK]
    verdicts.append({"target": f"{TENSOR_TARGET_STACK} ns per extra tensor", "value": value,
                     "limit": TENSOR_TARGET_NS, "unit": "ns", "verdict": verdict(value, TENSOR_TARGET_NS)})
    # The same slope less the raw launch's: what swiftlaunch itself spends per tensor (reading it
    # from torch, keying, packing), without the driver's per-parameter cost that no launcher avoids.
    raw = slopes.get("raw_launch")
    own = value - raw if value is not None and raw is not None else None
    verdicts.append({"target": f"{TENSOR_TARGET_STACK} ns per extra tensor over raw_launch", "value": own,
                     "limit": TENSOR_TARGET_NS, "unit": "ns", "verdict": verdict(own, TENSOR_TARGET_NS)})
    return {
        "card": card,
        "kernel": TARGET_KERNEL,
        "title": KERNELS[TARGET_KERNEL],
        "tensor_kernels": dict(TENSOR_KERNELS),
        "stacks": dict(TARGET_STACKS),
        "settings": {"cpu_only_calls": settings.calls, "reps": settings.reps, "warmup": settings.warmup},
        "loop_overhead_ns": loop_ns,
        "vec_add_us": vec_us,
        "tensor_args_us": tensor_us,
        "ns_per_extra_tensor": slopes,
        "verdicts": verdicts,
        "cells": [_cell_dict(c, None, None) for c in cells],
    }


# --- without a GPU: the host-side key computations ------------------------------------------------


def _triton_key_call(bk: BenchKernel) -> Callable[[], Any]:
    """Triton's per-call key work, as JITFunction.run does it on a cache hit (jit.py, triton 3.6):
    the kwargs it adds, the exec-generated binder (one native_specialize_impl per argument) and
    compute_cache_key. ``create_binder`` needs an active driver, which a machine without a GPU lacks,
    so the binder is built the same way for an sm90 target."""
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.runtime.jit import compute_cache_key, create_function_from_signature

    k = bk.jit_fn
    binder = create_function_from_signature(k.signature, k.params, CUDABackend(GPUTarget("cuda", 90, 32)))
    key_cache: dict = {}
    out, args, cx = torch.empty_like(bk.like), bk.args, bk.constexprs

    def call():
        kwargs = dict(cx)
        kwargs["debug"] = kwargs.get("debug", k.debug) or knobs.runtime.debug
        kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
        _, specialization, options = binder(out, *args, **kwargs)
        return compute_cache_key(key_cache, specialization, options)

    return call


def _helion_key_call(bk: BenchKernel, env: Env) -> Callable[[], Any]:
    kernel, args = _helion_kernel(bk, env), bk.helion_args
    specialization_key = kernel.specialization_key
    return lambda: specialization_key(args)


def _swiftlaunch_key_call(bk: BenchKernel, env: Env) -> Callable[[], Any]:
    if env.sl_error:
        raise Unavailable(env.sl_error)
    # Wrap once, as a program would: dispatch_key on a bare JITFunction wraps it on every call.
    dispatch_key, kernel = env.sl.dispatch_key, env.sl.fast(bk.jit_fn)
    out, args, cx = torch.empty_like(bk.like), bk.args, bk.constexprs
    if dispatch_key(kernel, out, *args, **cx) is None:
        raise Unavailable(f"no native key: swiftlaunch steps aside to Triton here ({kernel!r})")
    return lambda: dispatch_key(kernel, out, *args, **cx)


KEY_CALL: dict[str, Callable[[BenchKernel, Env], Callable[[], Any]]] = {
    "triton": lambda bk, env: _triton_key_call(bk),
    "helion": _helion_key_call,
    "swiftlaunch": _swiftlaunch_key_call,
}
assert KEY_CALL.keys() == KEY_IMPLS.keys()


def run_key_bench(kernels: list[str], stacks: list[str], settings: Settings,
                  env: Env | None = None) -> dict[str, Any]:
    """No GPU: ns per call of each stack's specialization / dispatch key on CPU tensors."""
    impls = [s for s in KEY_IMPLS if s in stacks]
    env = env or probe_env(want_helion="helion" in impls)
    results = _header("cpu", kernels, stacks, settings, env, cuda=False)
    results["stacks"] = {impl: KEY_IMPLS[impl] for impl in impls}
    results["loop_overhead_ns"] = loop_overhead_ns()
    notes = [f"No CUDA GPU: {NO_GPU_NOTE}. Measured instead: the host-side specialization and "
             "dispatch key, ns per call on CPU tensors."]
    if "swiftlaunch" in impls and env.sl_error:
        notes.append(f"{env.sl_error}: measuring Triton and Helion only.")
    if not impls:
        notes.append(f"None of the chosen stacks has a host-side key to measure ({', '.join(KEY_IMPLS)}).")
    rows: list[dict[str, Any]] = []
    for name in kernels:
        bk = make_kernel(name, "cpu")
        calls: dict[str, Callable[[], Any]] = {}
        cells: dict[str, dict[str, Any]] = {}
        for impl in impls:
            cell = cells[impl] = {"kernel": name, "stack": impl, "what": KEY_IMPLS[impl], "status": "ok",
                                  "reason": None, "samples_ns": []}
            try:
                call = KEY_CALL[impl](bk, env)
                for _ in range(settings.warmup):
                    call()
                calls[impl] = call
            except Unavailable as e:
                cell.update(status="skipped", reason=str(e))
            except Exception as e:  # noqa: BLE001
                cell.update(status="error", reason=f"{type(e).__name__}: {_first_line(e)}")
        for _ in range(settings.reps):  # interleaved, as on the GPU
            for impl, call in calls.items():
                cells[impl]["samples_ns"].append(time_per_call(call, settings.calls, _nothing))
        base = cells.get("triton", {}).get("samples_ns")
        for impl, cell in cells.items():
            samples = cell["samples_ns"]
            cell["median_ns"] = statistics.median(samples) if samples else None
            cell["min_ns"] = min(samples) if samples else None
            cell["ratio_to_triton"] = (cell["median_ns"] / statistics.median(base)
                                       if samples and base else None)
            if samples:
                _progress(f"  {name:<13} {impl:<12} {cell['median_ns']:9.0f} ns per call")
            else:
                _progress(f"  {name:<13} {impl:<12} {cell['status']}: {cell['reason']}")
            rows.append(cell)
    results["cpu"] = {"note": NO_GPU_NOTE, "notes": notes, "rows": rows}
    results["notes"] = notes
    return results


# --- records: machine, versions ---------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver_version() -> str | None:
    # torch does not expose the driver version; nvidia-smi has it, else ask libcuda for its API level.
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import ctypes

        version = ctypes.c_int()
        if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(version)) == 0:
            return f"CUDA driver API {version.value // 1000}.{version.value % 1000 // 10}"
    except OSError:
        pass
    return None


def _version(dist: str, module: Any = None) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - not installed as a distribution (e.g. run from a checkout)
        return getattr(module, "__version__", None)


def _swiftlaunch_info(env: Env) -> Any:
    """What ``python -m swiftlaunch info`` reports (driver, GPUs), when swiftlaunch imports."""
    if env.sl is None:
        return None
    try:
        return importlib.import_module("swiftlaunch.info").collect()
    except Exception as e:  # noqa: BLE001 - a record, not a requirement
        return f"swiftlaunch.info.collect() failed: {type(e).__name__}: {_first_line(e)}"


def machine_record(cuda: bool, env: Env) -> dict[str, Any]:
    record: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "cuda_available": torch.cuda.is_available(),
    }
    if cuda:
        index = torch.cuda.current_device()
        record.update(
            card=torch.cuda.get_device_name(index),
            capability=".".join(map(str, torch.cuda.get_device_capability(index))),
            driver=_driver_version(),
            cuda_runtime=torch.version.cuda,
        )
    record["swiftlaunch_info"] = _swiftlaunch_info(env)
    return record


def versions_record(env: Env) -> dict[str, Any]:
    import triton

    return {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "helion": _version("helion", env.helion) if env.helion is not None else None,
        "swiftlaunch": _version("swiftlaunch", env.sl),
        "swiftlaunch_native": "loaded" if env.native is not None else env.sl_error,
    }


def _header(mode: str, kernels: list[str], stacks: list[str], settings: Settings, env: Env,
            cuda: bool) -> dict[str, Any]:
    return {
        "schema": 1,
        "mode": mode,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_record(cuda, env),
        "versions": versions_record(env),
        "settings": {
            "kernels": kernels,
            "stacks": stacks,
            "cpu_only_calls": settings.calls,
            "wall_sync_calls": settings.wall_calls,
            "reps": settings.reps,
            "warmup": settings.warmup,
        },
        "stacks": {s: STACKS[s] for s in stacks},
    }


# --- output -------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str] | tuple[str, str]], left: int = 1, indent: str = "  ") -> list[str]:
    """Aligned columns: the first ``left`` columns left-aligned (names), the others right-aligned
    (figures). A ``(first, text)`` row keeps the first column aligned and lets ``text`` run on."""
    grid = [r for r in rows if isinstance(r, list)]
    widths = [max(len(r[i]) for r in [header, *grid]) for i in range(len(header))]
    widths[0] = max([widths[0]] + [len(r[0]) for r in rows])

    def line(row: list[str] | tuple[str, str]) -> str:
        if isinstance(row, tuple):
            return f"{indent}{row[0].ljust(widths[0])}  {row[1]}"
        cells = (c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        return (indent + "  ".join(cells)).rstrip()

    return [line(header), *map(line, rows)]


def _v(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "" if value is None else fmt.format(value)


def format_launch_table(results: dict[str, Any]) -> str:
    # Plain ASCII ("us", not "µs") on the terminal: it must print under any locale.
    out: list[str] = []
    m, v, s = results["machine"], results["versions"], results["settings"]
    out.append(f"swiftlaunch bench: per-call host cost, us per call -- {_v(m.get('card'))}, "
               f"driver {_v(m.get('driver'))}, torch {v['torch']}, triton {v['triton']}, helion {_v(v['helion'])}, "
               f"swiftlaunch {_v(v['swiftlaunch'])}")
    header = ["stack", "cpu_only", "min", "x eager", "x floor", "wall+sync", "min", "x eager", "check"]
    for kernel, info in results["kernels"].items():
        out.append("")
        out.append(f"{kernel}: {info['title']}  (eager = {info['eager']})")
        rows: list[list[str] | tuple[str, str]] = []
        for c in (c for c in results["cells"] if c["kernel"] == kernel):
            if c["status"] == "skipped":
                rows.append((c["stack"], c["reason"]))
            elif c["status"] != "ok":
                rows.append((c["stack"], f"{c['status']}: {c['reason']}"))
            else:
                cpu, wall = c["cpu_only_us"] or {}, c["wall_sync_us"] or {}
                rows.append([c["stack"], _num(cpu.get("median")), _num(cpu.get("min")),
                             _num(c["ratio_to_eager"]["cpu_only"]), _num(c["ratio_to_floor"]["cpu_only"]),
                             _num(wall.get("median")), _num(wall.get("min")),
                             _num(c["ratio_to_eager"]["wall_sync"]), c["check"]])
        out.extend(_table(header, rows))
        stats = results.get("swiftlaunch_stats", {}).get(kernel)
        if isinstance(stats, dict) and stats.get("fallbacks"):
            out.append(f"  note: swiftlaunch stepped aside to Triton here: {stats['fallbacks']}")
    out.append("")
    out.append(f"cpu_only: {s['cpu_only_calls']} calls back to back, one sync, per call; wall+sync: a sync "
               f"after each of {s['wall_sync_calls']} calls. Median and min of {s['reps']} interleaved "
               f"repetitions after {s['warmup']} warm-up calls.")
    out.extend(results["notes"])
    out.append(f"The timing loop itself costs {results['loop_overhead_ns']:.0f} ns per call, included above.")
    return "\n".join(out)


def format_key_table(results: dict[str, Any]) -> str:
    cpu, m, v = results["cpu"], results["machine"], results["versions"]
    out = [*cpu["notes"], "",
           f"host-side key per call, ns -- {m['cpu']}, Python {m['python']}, torch {v['torch']}, "
           f"triton {v['triton']}, helion {_v(v['helion'])}, swiftlaunch {_v(v['swiftlaunch'])}"]
    header = ["kernel", "stack", "median ns", "min ns", "x triton"]
    rows: list[list[str] | tuple[str, str]] = []
    for r in cpu["rows"]:
        if r["status"] == "ok":
            rows.append([r["kernel"], r["stack"], _num(r["median_ns"], "{:.0f}"), _num(r["min_ns"], "{:.0f}"),
                         _num(r["ratio_to_triton"])])
        elif r["status"] == "error":  # skipped rows are summarised once below the table
            rows.append((r["kernel"], f"{r['stack']}: error: {r['reason']}"))
    out.extend(_table(header, rows, left=2))
    out.append("")
    out.append("stacks: " + "; ".join(f"{k} = {w}" for k, w in KEY_IMPLS.items()))
    skipped = {r["reason"] for r in cpu["rows"] if r["status"] == "skipped"}
    out.extend(f"skipped: {reason}" for reason in sorted(skipped))
    s = results["settings"]
    out.append(f"{s['cpu_only_calls']} calls per repetition, median and min of {s['reps']} interleaved "
               f"repetitions; the timing loop itself costs {results['loop_overhead_ns']:.0f} ns per call, "
               "included above.")
    out.append(f"Note: {NO_GPU_NOTE}.")
    return "\n".join(out)


def format_targets_table(targets: dict[str, Any]) -> str:
    """Issue 3's targets: one row per stack (vec_add, the tensor-argument kernels, the slope), then
    one line per target with its verdict. With no GPU, the one line that says they were skipped."""
    if "skipped" in targets:
        return f"{targets['skipped']}: skipped"
    cells = {(c["kernel"], c["stack"]): c for c in targets["cells"]}
    counts = targets["tensor_kernels"]
    out = [f"launch-overhead targets (issue 3), us per call -- {targets['card']}: outputs allocated once, "
           "outside the timed call"]

    def figure(kernel: str, stack: str, key: str = "median") -> str:
        c = cells.get((kernel, stack))
        if c is None:
            return ""  # not a stack of this kernel
        if c["status"] == "ok" and c["cpu_only_us"]:
            return _num(c["cpu_only_us"][key])
        return c["status"] if key == "median" else ""  # the reason is listed below the verdicts

    header = ["stack", targets["kernel"], "(min)", *(f"{n} tensors" for n in counts.values()),
              "ns/extra tensor", "check"]
    rows: list[list[str] | tuple[str, str]] = []
    for stack in targets["stacks"]:
        mine = [c for (_, s), c in cells.items() if s == stack]
        checked = sum(c["check"] == "ok" for c in mine)
        rows.append([stack, figure(targets["kernel"], stack), figure(targets["kernel"], stack, "min"),
                     *(figure(kernel, stack) for kernel in counts),
                     _num(targets["ns_per_extra_tensor"].get(stack), "{:.0f}"),
                     "ok" if checked == len(mine) else f"{checked}/{len(mine)} ok"])
    out.extend(_table(header, rows))
    out.append("")
    verdict_rows: list[list[str] | tuple[str, str]] = []
    for v in targets["verdicts"]:
        # One decimal more than the limit has, so that a value just over it never reads as equal.
        fmt, limit = ("{:.1f}", f"<= {v['limit']:.0f} ns") if v["unit"] == "ns" else ("{:.3f}", f"<= {v['limit']:.2f}")
        verdict_rows.append([v["target"], _num(v["value"], fmt) or "-", limit, v["verdict"]])
    out.extend(_table(["target", "measured", "limit", "verdict"], verdict_rows))
    for c in targets["cells"]:
        if c["status"] != "ok":
            out.append(f"  {c['kernel']}/{c['stack']}: {c['status']}: {c['reason']}")
    stats = targets.get("swiftlaunch_stats")
    if isinstance(stats, dict) and stats.get("fallbacks"):
        out.append(f"  note: swiftlaunch stepped aside to Triton here: {stats['fallbacks']}")
    s = targets["settings"]
    out.append("")
    out.append(f"cpu_only: {s['cpu_only_calls']} calls back to back, one sync, per call; median and min of "
               f"{s['reps']} repetitions after {s['warmup']} warm-up calls, every cell of this table interleaved.")
    out.append(f"Ratios are of {targets['kernel']} medians; ns/extra tensor is the least-squares slope of the "
               f"medians over {', '.join(map(str, counts.values()))} tensor arguments. raw_launch loops in the "
               f"Swift core; the other stacks include the Python timing loop, {targets['loop_overhead_ns']:.0f} ns "
               "per call.")
    return "\n".join(out)


def write_chart(path: Path, groups: list[str], series: list[str], value: Callable[[str, str], float | None],
                xlabel: str, title: str, label_fmt: str = "{:.1f}") -> str | None:
    """Horizontal grouped bars (one group per kernel, one bar per stack); returns why not, if not."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed: chart skipped"
    # Only the stacks that have at least one value get a bar colour and a legend entry.
    series = [s for s in series if any(value(g, s) is not None for g in groups)]
    if not series:
        return "nothing measured: chart skipped"
    height = 0.8 / len(series)
    fig = Figure(figsize=(10, 1.5 + 0.2 * len(groups) * len(series) + 0.3 * len(groups)))
    FigureCanvasAgg(fig)  # the Agg canvas: no display needed
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(series))]
    for j, (stack, color) in enumerate(zip(series, colors)):
        ys, xs = [], []
        for i, group in enumerate(groups):
            x = value(group, stack)
            if x is not None:
                ys.append(i + (j - (len(series) - 1) / 2) * height)
                xs.append(x)
        bars = ax.barh(ys, xs, height=height * 0.9, color=color, label=stack)
        ax.bar_label(bars, labels=[label_fmt.format(x) for x in xs], padding=2, fontsize=7)
    ax.set_yticks(range(len(groups)), labels=groups)
    ax.invert_yaxis()  # first kernel on top, as in the table
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.12)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a bar
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return None


def _chart(results: dict[str, Any], out_dir: Path) -> tuple[Path, str | None]:
    s = results["settings"]
    if results["mode"] == "gpu":
        path = out_dir / "launch_cost.png"
        cells = {(c["kernel"], c["stack"]): c for c in results["cells"]}

        def value(kernel, stack):
            c = cells.get((kernel, stack))
            return c["cpu_only_us"]["median"] if c and c["cpu_only_us"] else None

        m = results["machine"]
        title = f"per-call host cost, cpu_only median -- {_v(m.get('card'))}, driver {_v(m.get('driver'))}"
        why = write_chart(path, s["kernels"], s["stacks"], value, "µs per call (cpu_only, median)", title)
    else:
        path = out_dir / "key_cost.png"
        rows = {(r["kernel"], r["stack"]): r for r in results["cpu"]["rows"]}

        def value(kernel, stack):
            r = rows.get((kernel, stack))
            return r["median_ns"] if r else None

        title = f"host-side specialization / dispatch key, median (no GPU: {NO_GPU_NOTE})"
        why = write_chart(path, s["kernels"], list(KEY_IMPLS), value, "ns per call", title, "{:.0f}")
    return path, why


# --- command line -------------------------------------------------------------------------------


def _pick(text: str | None, known: dict[str, str], aliases: dict[str, tuple[str, ...]], what: str,
          default: tuple[str, ...]) -> list[str]:
    if not text:
        return list(default)
    picked: list[str] = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        names = aliases.get(name, (name,))
        for n in names:
            if n not in known:
                raise SystemExit(f"swiftlaunch bench: unknown {what} {n!r}; choose from "
                                 f"{', '.join([*known, *aliases])}")
            if n not in picked:
                picked.append(n)
    return [n for n in known if n in picked]  # table order


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m swiftlaunch bench",
        description="Per-call host cost of launching small kernels through eager PyTorch, Triton, Helion "
                    "and swiftlaunch, side by side. Without a CUDA GPU: the host-side dispatch key only.",
    )
    p.add_argument("--quick", action="store_true",
                   help=f"kernels {', '.join(QUICK_KERNELS)}; 2000 calls, 3 repetitions")
    p.add_argument("--kernels", metavar="A,B", help=f"kernels to run, from: {', '.join([*KERNELS, *KERNEL_ALIASES])}")
    p.add_argument("--stacks", metavar="A,B", help=f"stacks to run, from: {', '.join(STACKS)}")
    p.add_argument("--out", metavar="DIR", default="bench-out", help="where results.json and the chart go")
    p.add_argument("--calls", type=int, metavar="N", help="cpu_only calls per repetition (wall+sync: N/10)")
    p.add_argument("--reps", type=int, metavar="N", help="repetitions")
    p.add_argument("--cpu", action="store_true",
                   help="measure only the host-side dispatch key, as on a machine without a GPU")
    p.add_argument("--targets-only", action="store_true",
                   help="only issue 3's launch-overhead targets (vec_add and 4/16/64 tensor arguments, "
                        "outputs preallocated), which otherwise run after the suite; ignores --kernels "
                        "and --stacks")
    args = p.parse_args(argv)
    for opt in ("calls", "reps"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            p.error(f"--{opt} must be at least 1")
    return args


def _failure(cell: dict[str, Any], where: str = "") -> str:
    return f"{where}{cell['kernel']}/{cell['stack']}: {cell['reason']}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_args(args)
    kernels = _pick(args.kernels, KERNELS, KERNEL_ALIASES, "kernel", QUICK_KERNELS if args.quick else tuple(KERNELS))
    stacks = _pick(args.stacks, STACKS, {}, "stack", tuple(STACKS))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    if torch.cuda.is_available() and not args.cpu:
        if args.targets_only:
            results = run_targets_bench(settings)
            tables = []
        else:
            results = run_launch_bench(kernels, stacks, settings)
            tables = [format_launch_table(results)]
        failed = [_failure(c) for c in results["cells"] if c["status"] in ("error", "wrong")]
        failed += [_failure(c, "targets ") for c in results["targets"]["cells"] if c["status"] in ("error", "wrong")]
    else:
        if not torch.cuda.is_available():
            _progress(f"swiftlaunch bench: no CUDA GPU -- {NO_GPU_NOTE}; measuring the host-side "
                      "dispatch key on CPU tensors instead")
        if args.targets_only:
            results = _header("cpu", [], [], settings, probe_env(want_helion=False), cuda=False)
            tables = []
        else:
            results = run_key_bench(kernels, stacks, settings)
            tables = [format_key_table(results)]
        results["targets"] = {"skipped": NO_GPU_TARGETS}
        failed = [_failure(r) for r in results.get("cpu", {}).get("rows", []) if r["status"] == "error"]
    table = "\n\n".join([*tables, format_targets_table(results["targets"])])  # the targets last

    try:
        chart_path, chart_skipped = (out_dir, "--targets-only: no chart") if args.targets_only else _chart(results, out_dir)
    except Exception as e:  # noqa: BLE001 - the table and results.json matter more than the picture
        chart_path, chart_skipped = out_dir, f"chart failed: {type(e).__name__}: {_first_line(e)}"
    results["chart"] = None if chart_skipped else chart_path.name
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "table.txt").write_text(table + "\n")
    print(table)
    print()
    print(f"wrote {out_dir / 'results.json'}, {out_dir / 'table.txt'}"
          + (f", {chart_path}" if not chart_skipped else f" ({chart_skipped})"))
    if failed:
        print(f"{len(failed)} cell(s) failed: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
