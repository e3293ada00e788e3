"""Per-call host cost of a Helion kernel call with and without `swiftlaunch.helion.install()`, on a GPU.

Method as in /work/shared/notes/baseline-h200.md: `cpu_only` = time of N back-to-back calls with one
`torch.cuda.synchronize()` at the end, divided by N; median over interleaved repetitions (every row
once per repetition, in turn), after warm-up calls. µs per call.

    python scripts/bench_helion_dispatch.py [--calls 20000] [--reps 5]

Three sections, each interleaved on its own: the pool off (with breakdown rows: the native dispatch
without the shim, the plan's launch alone, a bare launch once per Python call, and each Python query
the shim, the dispatch and the pool make); a few of those rows again with captured constexpr globals
compared through Python's `!=` (as before the core did it natively); the pool on
(`install(output_pool=True)` is process-wide). Then the GPU time per call (calls queued behind a
sleep kernel), the breakdown, and the Helion targets, each a ratio of two rows of one section; the raw
launch is the Swift core's `cuLaunchKernelEx` loop on the benchmark's Triton add of the same size
(arguments packed once), per launch.
"""

import argparse
import statistics
import time
import weakref

import torch

import helion
import swiftlaunch
import swiftlaunch.helion as sl_helion
from swiftlaunch import _helion_dispatch, _runtime
from swiftlaunch.bench import kernels


# The benchmark's own Helion add (load_helion() first: it binds `hl` for it), at the configs its
# suite uses for 1-D and 2-D adds.
kernels.load_helion()
add = helion.kernel(kernels.helion_add, config=helion.Config(block_sizes=[1024]), static_shapes=True)
add2d = helion.kernel(kernels.helion_add, config=helion.Config(block_sizes=[32, 32]), static_shapes=True)
broadcast_add = helion.kernel(kernels.helion_broadcast_add, config=helion.Config(block_sizes=[1024]),
                              static_shapes=True)


def timed(call, calls):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=5)
    options = parser.parse_args()

    assert sl_helion.install(), sl_helion.refusal()
    own = type(add).__dict__["__call__"].__wrapped__  # Helion's Kernel.__call__
    x, y = torch.randn(4096, device="cuda"), torch.randn(4096, device="cuda")
    x2, y2 = torch.randn(8192, device="cuda"), torch.randn(8192, device="cuda")
    a, b = (torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for args in ((x, y), (x2, y2)):
        add(*args)
        add(*args)
    for kernel, args in ((add2d, (a, b)), (broadcast_add, (x, y))):
        kernel(*args)
        kernel(*args)
    bound = add.bind((x, y))
    run = bound._run
    launcher = swiftlaunch.Launcher()
    lookup = swiftlaunch._loader.native.helion_lookup
    rows = {
        "eager torch.add(x, y)": lambda: torch.add(x, y),
        "torch.empty_like(x)": lambda: torch.empty_like(x),
        "Helion k(x, y)": lambda: own(add, x, y),
        "installed k(x, y)": lambda: add(x, y),
        "Helion, two shapes in turn (per call)": lambda: (own(add, x, y), own(add, x2, y2)),
        "installed, two shapes in turn (per call)": lambda: (add(x, y), add(x2, y2)),
        "wrapper bound._run(x, y), Helion's launcher": lambda: run(x, y),
        "wrapper with _launcher=swiftlaunch.Launcher()": lambda: run(x, y, _launcher=launcher),
        "native guard alone (helion_lookup)": lambda: lookup(add, (x, y)),
        "Helion k(a, b) 1024² bf16": lambda: own(add2d, a, b),
        "installed k(a, b) 1024² bf16": lambda: add2d(a, b),
        "Helion example add (broadcast_tensors first), same shapes": lambda: own(broadcast_add, x, y),
        "installed example add (broadcast dropped)": lambda: broadcast_add(x, y),
    }
    rows["eager torch.add(a, b) 1024² bf16"] = lambda: torch.add(a, b)
    # The breakdown of an installed call: the call's share (installed − native dispatch), the launch
    # the plan makes (the wrapper's own launcher call, replayed), and what the dispatch asks Python.
    native = swiftlaunch._loader.native
    dispatch = native.helion_dispatch
    rows["native dispatch alone, no shim (helion_dispatch)"] = lambda: dispatch(add, (x, y))
    # The installed call as it was before the native call slot: the shim's Python frame.
    shim_function = type(add).__dict__["__call__"]
    rows["installed, through the shim's frame: Kernel.__call__(k, x, y)"] = lambda: shim_function(add, x, y)
    launch_args, launch_kwargs = recorded_launch(run, x, y)
    rows["the plan's launch alone: Launcher(kernel, grid, ...)"] = lambda: launcher(*launch_args, **launch_kwargs)
    fast, token, raw_grid, raw_args, stream, device = raw_launch_setup(x, y)
    rows["raw launch, once per Python call"] = lambda: native.raw_launch_loop(fast, token, raw_grid, raw_args, stream,
                                                                             device, 1)
    # The same raw launch on Helion's own compiled kernel: separates what the kernel costs the driver
    # (and the GPU) from what the Launcher adds.
    h_fast, h_token, h_grid, h_args = helion_raw_setup(launch_args, launch_kwargs)
    rows["raw launch of Helion's kernel, once per Python call"] = (
        lambda: native.raw_launch_loop(h_fast, h_token, h_grid, h_args, stream, device, 1))
    rows["fast(Helion's kernel)[grid](...)"] = lambda: h_fast[launch_args[1]](*h_args, **launch_kwargs)
    rows["shim's query: torch.compiler.is_dynamo_compiling()"] = torch.compiler.is_dynamo_compiling
    rows["dispatch's query: torch.distributed.is_initialized()"] = torch.distributed.is_initialized
    rows["dispatch's query: torch._C._is_torch_function_mode_enabled()"] = torch._C._is_torch_function_mode_enabled
    # What the pool asks torch on every call, each alone (the native run calls the same C functions).
    rows["pool's query: torch._C._cuda_isCurrentStreamCapturing()"] = torch._C._cuda_isCurrentStreamCapturing
    rows["pool's query: torch._C.is_inference_mode_enabled()"] = torch._C.is_inference_mode_enabled
    rows["pool's query: torch._C._len_torch_dispatch_stack()"] = torch._C._len_torch_dispatch_stack
    rows["pool's query: weakref.getweakrefcount(x)"] = lambda: weakref.getweakrefcount(x)
    first = measure(rows, options)
    pool_rows = {
        "eager torch.add(x, y)": lambda: torch.add(x, y),
        "installed, pool k(x, y)": lambda: add(x, y),
        "installed, pool, two shapes in turn (per call)": lambda: (add(x, y), add(x2, y2)),
        "eager torch.add(a, b) 1024² bf16": lambda: torch.add(a, b),
        "installed, pool k(a, b) 1024² bf16": lambda: add2d(a, b),
        "native dispatch alone, pool (helion_dispatch)": lambda: dispatch(add, (x, y)),
        "raw launch, once per Python call": rows["raw launch, once per Python call"],
    }
    # The same rows with captured constexpr globals compared through Python's `!=`, as before the
    # native comparison (`_runtime._configure_constexpr` puts it back).
    python_ne_rows = {name: rows[name] for name in (
        "eager torch.add(x, y)", "installed k(x, y)", "the plan's launch alone: Launcher(kernel, grid, ...)",
        "raw launch of Helion's kernel, once per Python call")}
    native.constexpr_compare_configure(None)
    try:
        python_ne = measure(python_ne_rows, options)
    finally:
        _runtime._configure_constexpr(native)
    assert sl_helion.install(output_pool=True), sl_helion.refusal()
    pool = measure(pool_rows, options) if sl_helion.pool_on() else None
    raw_us = raw_launch_us(x, y, options)

    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, helion {_helion_dispatch.helion_version(helion)}, "
          f"{options.calls} calls x {options.reps} reps, us/call cpu_only (median, min)")
    report(first)
    print("with captured constexpr globals compared through Python's != (as before 2026-12-03):")
    report(python_ne)
    if pool is None:
        print(f"pool: off ({sl_helion.pool_refusal()})")
    else:
        print("with install(output_pool=True):")
        report(pool)
    print(f"  {'raw cuLaunchKernelEx loop, Triton add 4096 fp32, per launch':56s} {raw_us:7.2f}")
    h_seconds = []
    for _ in range(options.reps):
        torch.cuda.synchronize()
        h_seconds.append(native.raw_launch_loop(h_fast, h_token, h_grid, h_args, stream, device, options.calls))
        torch.cuda.synchronize()
    print(f"  {'raw cuLaunchKernelEx loop, Helion add 4096 fp32, per launch':56s} "
          f"{statistics.median(h_seconds) / options.calls * 1e6:7.2f}")
    print("GPU time per call, queued behind a sleep (us; host cost is hidden):")
    for name, call in (("eager torch.add(x, y)", rows["eager torch.add(x, y)"]),
                       ("raw launch, Triton add", rows["raw launch, once per Python call"]),
                       ("raw launch, Helion's kernel", rows["raw launch of Helion's kernel, once per Python call"]),
                       ("installed k(x, y), pool on", lambda: add(x, y))):
        print(f"  {name:56s} {gpu_us_per_call(call):7.2f}")
    print("dispatch:", sl_helion.dispatch_stats())
    print("stats:", swiftlaunch.stats())

    med = {name: statistics.median(values) for name, values in first.items()}
    floor = med["torch.empty_like(x)"] + raw_us
    print("breakdown of installed k(x, y), differences of medians:")
    call_cost = med["installed k(x, y)"] - med["native dispatch alone, no shim (helion_dispatch)"]
    parts = (med["native guard alone (helion_lookup)"] + med["torch.empty_like(x)"]
             + med["the plan's launch alone: Launcher(kernel, grid, ...)"])
    frame = med["installed, through the shim's frame: Kernel.__call__(k, x, y)"]
    print(f"  {'the call (installed − helion_dispatch)':56s} {call_cost:7.2f}")
    print(f"  {'the shim frame (Kernel.__call__ − helion_dispatch)':56s} "
          f"{frame - med['native dispatch alone, no shim (helion_dispatch)']:7.2f}")
    print(f"  {'helion_dispatch − (guard + empty_like + plan launch)':56s} "
          f"{med['native dispatch alone, no shim (helion_dispatch)'] - parts:7.2f}")
    print(f"  {'plan launch − raw launch once per call':56s} "
          f"{med['the plan' + chr(39) + 's launch alone: Launcher(kernel, grid, ...)'] - med['raw launch, once per Python call']:7.2f}")
    print("Helion targets, ratios of medians within a section:")
    target("installed / eager (vec add)", med["installed k(x, y)"] / med["eager torch.add(x, y)"], 1.0)
    target("installed / (empty_like + raw launch)", med["installed k(x, y)"] / floor, 1.25)
    target("installed 1024² bf16 / eager 1024² bf16",
           med["installed k(a, b) 1024² bf16"] / med["eager torch.add(a, b) 1024² bf16"], 1.0)
    target("installed, two shapes in turn / steady",
           med["installed, two shapes in turn (per call)"] / med["installed k(x, y)"], 1.2)
    if pool is not None:
        pmed = {name: statistics.median(values) for name, values in pool.items()}
        target("pool / eager (vec add)", pmed["installed, pool k(x, y)"] / pmed["eager torch.add(x, y)"], 0.8)
        target("pool / raw launch", pmed["installed, pool k(x, y)"] / raw_us, 1.2)


def measure(rows, options):
    """Every row warmed up, then timed once per repetition in turn: {name: [us per call, ...]}."""
    halves = {name for name in rows if "two shapes" in name}
    for call in rows.values():
        for _ in range(500):
            call()
    samples = {name: [] for name in rows}
    for _ in range(options.reps):
        for name, call in rows.items():
            per_call = timed(call, options.calls)
            samples[name].append(per_call / 2 if name in halves else per_call)
    return samples


def report(samples):
    for name, values in samples.items():
        print(f"  {name:56s} {statistics.median(values):7.2f} {min(values):7.2f}")


def target(what, value, limit):
    print(f"  {what:56s} {value:7.3f}  <= {limit:.2f}  {'met' if value <= limit else 'missed'}")


def recorded_launch(run, x, y):
    """The positional and keyword arguments the wrapper passes its launcher for (x, y)."""
    calls = []
    run(x, y, _launcher=lambda *args, **kwargs: calls.append((args, kwargs)))
    assert len(calls) == 1, calls
    return calls[0]


def raw_launch_setup(x, y):
    """What `raw_launch_loop` takes for the benchmark's Triton add of x and y, cached by one call."""
    fast = swiftlaunch.fast(kernels.add_kernel)
    out = torch.empty_like(x)
    grid = ((x.numel() + 1023) // 1024,)
    fast[grid](out, x, y, x.numel(), BLOCK=1024)  # a miss: Triton launches, the core caches it
    device = torch.cuda.current_device()
    token = fast.key(device, out, x, y, x.numel(), BLOCK=1024)
    stream = torch.cuda.current_stream().cuda_stream
    return fast, token, (grid[0], 1, 1), (out, x, y, x.numel(), 1024), stream, device


def helion_raw_setup(launch_args, launch_kwargs):
    """`raw_launch_loop`'s inputs for the Helion kernel the wrapper launches, cached by one call."""
    h_fast = swiftlaunch.fast(launch_args[0])
    grid, args = launch_args[1], launch_args[2:]
    h_fast[grid](*args, **launch_kwargs)
    token = h_fast.key(torch.cuda.current_device(), *args, **launch_kwargs)
    assert token is not None
    return h_fast, token, tuple(grid) + (1,) * (3 - len(grid)), args


def gpu_us_per_call(call, count=400):
    """GPU time per call with the GPU kept busy: `count` calls queued behind a sleep kernel long
    enough for the host to queue them all, timed by events on the stream (µs per call)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    torch.cuda._sleep(100_000_000)
    start.record()
    for _ in range(count):
        call()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / count


def raw_launch_us(x, y, options):
    """The Swift core's launch loop on the benchmark's Triton add of x and y: us per launch (median
    over the repetitions), the arguments packed once."""
    fast, token, grid, args, stream, device = raw_launch_setup(x, y)
    native = swiftlaunch._loader.native
    seconds = []
    for _ in range(options.reps):
        torch.cuda.synchronize()
        seconds.append(native.raw_launch_loop(fast, token, grid, args, stream, device, options.calls))
        torch.cuda.synchronize()
    return statistics.median(seconds) / options.calls * 1e6


if __name__ == "__main__":
    main()
