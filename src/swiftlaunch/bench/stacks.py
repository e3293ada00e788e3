"""The launch stacks: what one timed call of each is, and how it is built for one kernel.

A stack is prepared into a ``Prepared``: the call to time (or, for ``raw_launch``, a native batch of
launches) and the call whose output is checked against eager PyTorch. A stack that does not apply
here raises ``Unavailable`` with the reason shown in its cell.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .environment import Env
from .suite import BenchKernel

#: Stack name -> what one call of it is. Order is table order.
STACKS: dict[str, str] = {
    "eager": "eager PyTorch (the op allocates its output)",
    "triton": "empty_like + Triton kernel[grid](...)",
    "compiled_run": "empty_like + CompiledKernel.run(...) called directly (hooks and launch_metadata None)",
    "helion": "Helion kernel(...), fixed config, static shapes",
    "swiftlaunch": "empty_like + swiftlaunch.fast(kernel)[grid](...)",
    "swiftlaunch_jit": "empty_like + kernel[grid](...) for a @swiftlaunch.jit kernel (its [grid] is the "
                       "core's own method, from _native.jit_getitem)",
    "swiftlaunch_helion": "Helion kernel(...) after swiftlaunch.helion.install()",
    "swiftlaunch_helion_pool": "Helion kernel(...) after swiftlaunch.helion.install(output_pool=True), the "
                               "output dropped each call (SWIFTLAUNCH_OUTPUT_POOL=1 runs only)",
    "empty_like": "floor 1: torch.empty_like alone",
    "raw_launch": "floor 2: cuLaunchKernelEx loop in the Swift core, arguments packed once",
}
FLOOR_STACKS = ("empty_like", "raw_launch")


class Unavailable(Exception):
    """A stack that does not apply here; the message is shown in its cell."""


@dataclass
class Prepared:
    """A stack ready to time: one call, or a native batch of launches (raw_launch)."""

    call: Callable[[], Any] | None = None  # one call; returns the output it produced
    batch: Callable[[int], Any] | None = None  # n launches in one go
    check: Callable[[], torch.Tensor] | None = None  # produces an output to compare with eager


def grid3(grid: tuple[int, ...]) -> tuple[int, int, int]:
    return (grid[0], grid[1] if len(grid) > 1 else 1, grid[2] if len(grid) > 2 else 1)


def bound_tail(bk: BenchKernel, out: torch.Tensor) -> tuple:
    """The arguments after the output in declaration order, constexprs included: what Triton
    passes to ``CompiledKernel.run`` (``*bound_args.values()``)."""
    bound = inspect.signature(bk.jit_fn.fn).bind(out, *bk.args, **bk.constexprs)
    bound.apply_defaults()
    return tuple(bound.arguments.values())[1:]


def helion_launch_options(bk: BenchKernel) -> dict[str, int]:
    """num_warps and num_stages as the Helion version of ``bk`` is configured: what its generated
    host wrapper passes to ``_launcher`` with every launch."""
    return {name: bk.helion_config[name] for name in ("num_warps", "num_stages")}


def _compiled(bk: BenchKernel) -> Any:
    """The CompiledKernel Triton's own path picks (and compiles, the first time) for these arguments."""
    compiled = bk.jit_fn[bk.grid](torch.empty_like(bk.like), *bk.args, **bk.constexprs)
    if compiled is None or not hasattr(compiled, "packed_metadata"):
        raise Unavailable("Triton returned no CompiledKernel (TRITON_INTERPRET?)")
    return compiled


def into(out: torch.Tensor, call: Callable[[], Any]) -> Callable[[], torch.Tensor]:
    """The check of a stack that writes into one preallocated ``out``: NaN first, so a call that
    wrote nothing cannot pass with what an earlier call left there."""

    def check():
        out.fill_(float("nan"))
        call()
        return out

    return check


def written_out(call: str, values: dict[str, Any], preallocated: bool, like: torch.Tensor) -> Prepared:
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
        return Prepared(call=timed, check=into(out, timed))
    timed = namespace["make"](*values.values(), torch.empty_like, like)
    return Prepared(call=timed, check=timed)


def _arguments_after_out(bk: BenchKernel, options: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The kernel's arguments after the output, then its constexprs and ``options`` as keywords: the
    values to bind, and the argument list that names them."""
    values = {f"a{i}": a for i, a in enumerate(bk.args)}
    values.update({f"c_{k}": v for k, v in bk.constexprs.items()})
    values.update({f"o_{k}": v for k, v in options.items()})
    arguments = ([f"a{i}" for i in range(len(bk.args))] + [f"{k}=c_{k}" for k in bk.constexprs]
                 + [f"{k}=o_{k}" for k in options])
    return values, ", ".join(arguments)


def launching(kernel: Any, bk: BenchKernel, preallocated: bool = False,
              options: dict[str, Any] | None = None) -> Prepared:
    """``kernel[grid](out, ...)``, with launch ``options`` (num_warps=...) after the constexprs."""
    # ``kernel[grid]`` runs on every call, as in user code.
    values, arguments = _arguments_after_out(bk, options or {})
    return written_out(f"kernel[grid](out, {arguments})", {"kernel": kernel, "grid": bk.grid, **values},
                       preallocated, bk.like)


def launcher_calling(launcher: Any, bk: BenchKernel, options: dict[str, Any]) -> Prepared:
    """``launcher(kernel, grid, out, ...)`` as Helion's generated host wrapper calls its ``_launcher``,
    into a preallocated output."""
    values, arguments = _arguments_after_out(bk, options)
    return written_out(f"launcher(kernel, grid, out, {arguments})",
                       {"launcher": launcher, "kernel": bk.jit_fn, "grid": bk.grid, **values}, True, bk.like)


def _require_native_key(env: Env, kernel: Any, bk: BenchKernel, options: dict[str, Any] | None = None) -> None:
    # No native key means every call would go to Triton: timing it would only time Triton again.
    if env.sl.dispatch_key(kernel, torch.empty_like(bk.like), *bk.args, **bk.constexprs, **(options or {})) is None:
        raise Unavailable(f"swiftlaunch steps aside to Triton here ({kernel!r})")


def _prep_eager(bk: BenchKernel, env: Env) -> Prepared:
    return Prepared(call=bk.eager, check=bk.eager)


def _prep_triton(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    return launching(bk.jit_fn, bk, preallocated)


def _prep_swiftlaunch(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel = env.sl.fast(bk.jit_fn)
    _require_native_key(env, kernel, bk)
    return launching(kernel, bk, preallocated)


def _prep_swiftlaunch_jit(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    # The same kernel source through `@swiftlaunch.jit`: a JITFunction subclass whose `[grid]` is the
    # core's own method descriptor (from `_native.jit_getitem`), in front of the same native launch
    # as `fast`.
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel = env.sl.jit(bk.jit_fn.fn)
    _require_native_key(env, kernel, bk)
    return launching(kernel, bk, preallocated)


def prep_swiftlaunch_helion_options(bk: BenchKernel, env: Env) -> Prepared:
    """``fast(kernel)[grid](out, ..., num_warps=, num_stages=)`` with a preallocated output: the
    ``launcher`` stack's call through ``fast``'s entry point instead, the arguments the same."""
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel, options = env.sl.fast(bk.jit_fn), helion_launch_options(bk)
    _require_native_key(env, kernel, bk, options)
    return launching(kernel, bk, preallocated=True, options=options)


def prep_launcher(bk: BenchKernel, env: Env) -> Prepared:
    """``swiftlaunch.Launcher()`` called directly, as Helion's host wrapper calls ``_launcher``, on the
    suite's Triton kernel, with a preallocated output."""
    if env.sl_error:
        raise Unavailable(env.sl_error)
    options = helion_launch_options(bk)
    # The Launcher builds the core's kernel from the same parameter tables as `fast`: where `fast`
    # has no native key for these arguments, the Launcher would hand every call to Helion's launcher.
    _require_native_key(env, env.sl.fast(bk.jit_fn), bk, options)
    return launcher_calling(env.sl.Launcher(), bk, options)


def _prep_compiled_run(bk: BenchKernel, env: Env, preallocated: bool = False) -> Prepared:
    # Triton's own last step (jit.py, JITFunction.run), minus its Python around it. Triton passes
    # kernel.launch_metadata(...) and knobs.runtime.launch_enter_hook / launch_exit_hook, HookChain
    # objects that the C launcher calls on every launch even when empty; here they are None, and the
    # stream is read once, so this is Triton's C launcher alone (floor-like).
    compiled = _compiled(bk)
    tail = bound_tail(bk, bk.like)  # the output slot is filled per call; only the tail is kept
    g0, g1, g2 = grid3(bk.grid)
    values = {"compiled": compiled, "g0": g0, "g1": g1, "g2": g2, "stream": torch.cuda.current_stream().cuda_stream,
              "function": compiled.function, "packed": compiled.packed_metadata}
    values.update({f"t{i}": t for i, t in enumerate(tail)})
    tail_names = ", ".join(f"t{i}" for i in range(len(tail)))
    return written_out(f"compiled.run(g0, g1, g2, stream, function, packed, None, None, None, out, {tail_names})",
                       values, preallocated, bk.like)


def helion_kernel(bk: BenchKernel, env: Env):
    if env.helion_error:
        raise Unavailable(env.helion_error)
    if bk.helion_fn is None:
        raise Unavailable("no Helion version of this kernel")
    helion = env.helion
    # One config and static shapes: no autotuning, one bound kernel. A new Kernel object per
    # stack, so each stack's dispatch table is its own.
    return helion.kernel(bk.helion_fn, config=helion.Config(**bk.helion_config), static_shapes=True)


def _prep_helion(bk: BenchKernel, env: Env) -> Prepared:
    kernel, args = helion_kernel(bk, env), bk.helion_args
    # Helion's own Kernel.__call__, also once swiftlaunch.helion.install() has put its shim there.
    method = type(kernel).__dict__["__call__"]
    own_call = getattr(method, "__wrapped__", method)

    def call():
        return own_call(kernel, *args)

    return Prepared(call=call, check=call)


def _prep_swiftlaunch_helion(bk: BenchKernel, env: Env) -> Prepared:
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel, args = helion_kernel(bk, env), bk.helion_args
    sl_helion = importlib.import_module("swiftlaunch.helion")
    if not sl_helion.install():
        raise Unavailable(f"swiftlaunch.helion.install() refused: {sl_helion.refusal()}")
    kernel(*args)  # compiles through Helion; the native dispatch learns the call

    def call():
        return kernel(*args)

    return Prepared(call=call, check=call)


def _prep_swiftlaunch_helion_pool(bk: BenchKernel, env: Env) -> Prepared:
    # The pool is process-wide (install()'s setting), and stacks are timed interleaved: with the pool
    # on, the swiftlaunch_helion stack would be pooled too. So it is timed only in a run of its own,
    # with SWIFTLAUNCH_OUTPUT_POOL=1, where swiftlaunch_helion is then the same call.
    if os.environ.get("SWIFTLAUNCH_OUTPUT_POOL", "") in ("", "0"):
        raise Unavailable("n/a (the pool is process-wide: run with SWIFTLAUNCH_OUTPUT_POOL=1)")
    if env.sl_error:
        raise Unavailable(env.sl_error)
    kernel, args = helion_kernel(bk, env), bk.helion_args
    sl_helion = importlib.import_module("swiftlaunch.helion")
    if not sl_helion.install(output_pool=True):
        raise Unavailable(f"swiftlaunch.helion.install() refused: {sl_helion.refusal()}")
    if not sl_helion.pool_on():
        raise Unavailable(f"the output pool is off: {sl_helion.pool_refusal()}")
    for _ in range(3):
        kernel(*args)  # learned (Helion compiles), recorded, then run natively into the pool

    def call():
        return kernel(*args)

    return Prepared(call=call, check=call)


def _prep_empty_like(bk: BenchKernel, env: Env) -> Prepared:
    like, empty_like = bk.like, torch.empty_like

    def call():
        return empty_like(like)

    return Prepared(call=call)  # nothing to check


def prep_raw_launch(bk: BenchKernel, env: Env) -> Prepared:
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
    grid, args = grid3(bk.grid), (out, *bound_tail(bk, out))
    stream = torch.cuda.current_stream().cuda_stream

    def batch(n: int):
        return raw_launch_loop(fast_kernel, token, grid, args, stream, device, n)

    return Prepared(batch=batch, check=into(out, lambda: batch(1)))


def prep_raw_launch_each(bk: BenchKernel, env: Env) -> Prepared:
    # The same native launch, one per Python call: the loop, a call into the extension, reading and
    # packing the arguments, one context query and one cuLaunchKernelEx. About the least a launch
    # called from Python does (it checks nothing: no guard, no key), so it shows how much of the gap
    # to the raw loop is the call from Python itself.
    raw = prep_raw_launch(bk, env)
    batch = raw.batch

    def call():
        return batch(1)

    return Prepared(call=call, check=raw.check)


#: Stack -> how it is prepared for one kernel, each call allocating its output. Keys are STACKS'.
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
    "raw_launch": prep_raw_launch,
}
assert PREPARE.keys() == STACKS.keys()
