"""The core's cache-hit path, every guard and every fallback reason, without a GPU: run by
tests/test_hit_path_fake_driver.py in a subprocess whose libcuda.so.1 is the recording fake
(scripts/fake_libcuda.c), with CPU tensors standing in for device memory.

Triton cannot compile or launch here, so kernels are never compiled: each test puts a stand-in for the
`CompiledKernel` into the native cache under the key the core computes (as the miss path would after
Triton ran), with the signature Triton's own binder gives for those arguments. A hit must then reach
the fake's cuLaunchKernelEx with exactly what Triton's launcher would pass; a fallback must hand
Triton's `JITFunction.run` the caller's call unchanged (recorded here in place of the real `run`,
which would fail for want of a GPU) and count its reason.

Reasons no test here reaches, and why:
- "device differs from torch's", "specialization mismatch", "result is not a CompiledKernel",
  "not the CUDA driver", "tensor descriptors", "profile scratch", "kernel not loaded",
  "tuple arguments", "packed_metadata not (num_warps, num_ctas, shared)", "signature not handled":
  counted by the glue's miss path (`_triton.remember`) only after Triton compiled and launched the
  kernel, which needs a GPU.
- "untested stack", "native core unavailable": the glue's verdicts at configure time, when the core
  is not used at all (tests/test_fallback.py covers a core that is off).
- "no CUDA driver": the fake is the driver of this process; tests/test_hit_path_fake_driver.py
  checks it in a process of its own, with a fake that lacks cuLaunchKernelEx.
- "too many parameters" from the dispatch key's buffer: it is sized to the call, so it cannot fill
  up; the same label for a kernel of more than 256 parameters is tested.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import os
import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

if os.environ.get("SWIFTLAUNCH_FAKE_CUDA") != "1":
    pytest.skip("runs only under the fake libcuda, started by tests/test_hit_path_fake_driver.py",
                allow_module_level=True)

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton import knobs  # noqa: E402
from triton.runtime import _allocation  # noqa: E402

import swiftlaunch  # noqa: E402
from swiftlaunch import _runtime  # noqa: E402

from . import harness, kernels  # noqa: E402

# Any value but 0 (the default stream), so that a stream taken from anywhere else shows.
STREAM = 0x5EED_0000_7700
# The device torch reports for CPU memory; the fake's context device must be the same (FAKE_CUDA_DEVICE).
DEVICE = torch.empty(1).get_device()
# cuda.h: CU_CLUSTER_SCHEDULING_POLICY_SPREAD and CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
# which Triton's launcher sets for clusters and for 16-CTA clusters.
CLUSTER_POLICY_SPREAD = 1
NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14
streams_asked: list[int] = []
_fake: harness.FakeDriver | None = None  # set by the session fixture


def current_stream(device):
    streams_asked.append(device)
    return STREAM


def configure(**overrides):
    return harness.configure_core(**{"current_stream": current_stream, **overrides})


@pytest.fixture(scope="session")
def fake():
    if int(os.environ.get("FAKE_CUDA_DEVICE", "0")) != DEVICE:
        pytest.fail(f"FAKE_CUDA_DEVICE must be {DEVICE}, the device torch reports for CPU tensors")
    global _fake
    native, status = configure()
    requested = os.environ.get("SWIFTLAUNCH_TENSOR_READER", "native")
    if not status.startswith("native" if requested == "native" else "python"):
        pytest.fail(f"asked for the {requested} tensor reader, the core uses: {status}")
    _fake = harness.FakeDriver.of(native)
    print(f"tensor reader: {status}; driver: {_fake.path}")
    return _fake


@pytest.fixture(autouse=True)
def fresh(fake):
    fake.reset()
    swiftlaunch.stats(reset=True)
    streams_asked.clear()
    yield
    fake.reset()


@pytest.fixture
def reconfigure(fake):
    """Configures the core with some of its arguments replaced; the usual configuration comes back
    after the test."""
    yield configure
    configure()


def counters():
    stats = swiftlaunch.stats()
    return stats["hits"], stats["misses"], stats["fallbacks"]


def tensors(count=3, n=64, dtype=torch.float32):
    return [torch.randn(n).to(dtype) for _ in range(count)]


# --- putting a stand-in CompiledKernel into the native cache ---------------------------------------------


class StandIn:
    """In place of Triton's CompiledKernel: the hit path hands back whatever object was cached."""


@dataclass
class Entry:
    compiled: StandIn
    signature: tuple
    bound: dict
    function: int
    num_warps: int
    num_ctas: int
    shared: int
    cooperative: bool
    pdl: bool
    scratch_size: int
    options: dict = field(default_factory=dict)

    @property
    def param_count(self):
        return sum(kind != "constexpr" for kind in self.signature) + 2


def seed(fast, args, kwargs=None, *, device=DEVICE, function=0xF00D_0000_1000, num_warps=4, num_ctas=1,
         shared=0, cooperative=False, pdl=False, scratch_size=0, scratch_align=1, fn=None) -> Entry:
    """Caches a stand-in for the call `fast[grid](*args, **kwargs)` with the given launch metadata,
    and has the fake record that kernel's parameter words."""
    kwargs = kwargs or {}
    fn = fast.fn if fn is None else fn
    info = dict(function=function, num_warps=num_warps, num_ctas=num_ctas, shared=shared,
                cooperative=cooperative, pdl=pdl, scratch_size=scratch_size)
    compiled = StandIn()
    signature = harness.insert_stand_in(fast, args, kwargs, compiled, device=device,
                                        scratch_align=scratch_align, fn=fn, **info)
    bound, _, options = harness.triton_binder(fn)(*args, **kwargs)
    entry = Entry(compiled, signature, bound, options=options, **info)
    _fake.set_param_count(entry.param_count)
    return entry


# --- what Triton's launcher would pass ---------------------------------------------------------------------

# Triton 3.6's launcher (backends/nvidia/driver.py): each scalar is parsed with a PyArg_ParseTuple format
# into a C type, and floats are then packed into their storage type. Ranges are not checked here: a
# value out of range never reaches a launch.
_INT_FORMATS = {
    "i1": ("<B", None), "i8": ("<B", None), "i16": ("<h", None), "i32": ("<i", None), "i64": ("<q", None),
    # "B", "H", "I", "K": masked, never range-checked.
    "u1": ("<B", 0xFF), "u8": ("<B", 0xFF), "u16": ("<H", 0xFFFF), "u32": ("<I", 0xFFFF_FFFF),
    "u64": ("<Q", 2**64 - 1),
}


def triton_bytes(kind: str, value) -> bytes:
    """The bytes Triton's launcher hands the driver for `value` as a parameter of type `kind`."""
    if kind.startswith("*"):
        address = value.data_ptr() if isinstance(value, torch.Tensor) else 0 if value is None else value
        return struct.pack("<Q", address)
    if kind in _INT_FORMATS:
        fmt, mask = _INT_FORMATS[kind]
        number = int(value)
        return struct.pack(fmt, number & mask if mask else number)
    d = float(value)  # the "d" format
    if kind == "fp16":
        return struct.pack("<e", d)  # PyFloat_Pack2, as pack_fp16
    if kind == "bf16":
        return bytes(ctypes.c_float(d))[2:]  # (float)d, upper half of the bits, as pack_bf16
    if kind in ("fp32", "f32"):
        return bytes(ctypes.c_float(d))  # (float)d, as pack_fp32
    if kind == "fp64":
        return struct.pack("<d", d)
    raise AssertionError(f"no conversion for {kind}")


def expected_params(entry: Entry, bound=None, scratch=0) -> list[bytes]:
    bound = entry.bound if bound is None else bound
    params = [triton_bytes(kind, value) for kind, value in zip(entry.signature, bound.values())
              if kind != "constexpr"]
    return params + [struct.pack("<Q", scratch), struct.pack("<Q", 0)]  # global and profile scratch


def recorded_params(record, expected: list[bytes]) -> list[bytes]:
    """The recorded 8-byte words, each cut to the width the kernel reads of it."""
    assert record.param_count == len(expected), (record.param_count, len(expected))
    return [word.to_bytes(8, "little")[: len(want)] for word, want in zip(record.words, expected)]


def check_launch(record, entry: Entry, grid, bound=None, scratch=0):
    dims = (list(grid) + [1, 1])[:3]
    assert record.result == 0
    assert record.function == entry.function
    assert list(record.grid) == [dims[0] * entry.num_ctas, dims[1], dims[2]]
    assert list(record.block) == [32 * entry.num_warps, 1, 1]
    assert record.shared_memory == entry.shared
    assert record.stream == STREAM
    assert record.cooperative == int(entry.cooperative)
    assert record.pdl == int(entry.pdl)
    clustered = entry.num_ctas != 1
    assert list(record.cluster) == ([entry.num_ctas, 1, 1] if clustered else [0, 0, 0])
    assert record.cluster_policy == (CLUSTER_POLICY_SPREAD if clustered else -1)
    assert record.num_attributes == int(entry.cooperative) + int(entry.pdl) + 2 * clustered
    assert record.unknown_attributes == 0 and not record.has_extra
    expected = expected_params(entry, bound, scratch)
    assert recorded_params(record, expected) == expected


def hit(fake, fast, grid, *args, **kwargs):
    """One call that must be a hit with exactly one launch; returns (result, record)."""
    return hit_call(fake, lambda: fast[grid](*args, **kwargs))


def hit_call(fake, call):
    launches, (hits, misses, fallbacks) = fake.launch_count(), counters()
    result = call()
    assert counters() == (hits + 1, misses, fallbacks), swiftlaunch.stats()
    assert fake.launch_count() == launches + 1
    return result, fake.launch(launches)


# --- fallbacks: Triton gets the call ---------------------------------------------------------------------


@contextmanager
def triton_run_recorded(fn):
    """Records the calls that reach Triton's `JITFunction.run` (the fallback's target) instead of
    running it; each returns the yielded sentinel."""
    calls = []
    sentinel = StandIn()

    def run(*args, grid, warmup, **kwargs):
        calls.append((args, grid, warmup, kwargs))
        return sentinel

    fn.run = run
    try:
        yield calls, sentinel
    finally:
        del fn.run


def assert_fallback(fake, reason, fast, grid, *args, **kwargs):
    """The call goes to Triton unchanged, with `reason` counted and nothing launched."""
    launches = fake.launch_count()
    with triton_run_recorded(fast.fn) as (calls, sentinel):
        result = fast[grid](*args, **kwargs)
    assert result is sentinel
    assert len(calls) == 1
    got_args, got_grid, warmup, got_kwargs = calls[0]
    assert got_grid is grid and warmup is False
    assert len(got_args) == len(args) and all(a is b for a, b in zip(got_args, args))
    assert got_kwargs.keys() == kwargs.keys() and all(got_kwargs[k] is kwargs[k] for k in kwargs)
    hits, misses, fallbacks = counters()
    assert (hits, misses, fallbacks) == (0, 0, {reason: 1}), swiftlaunch.stats()
    assert fake.launch_count() == launches, "a fallback launched"
    swiftlaunch.stats(reset=True)


def add_call(n=100, block=64):
    x, y, out = tensors(3, n)
    return (x, y, out, n), {"BLOCK": block}


def seeded_add(**info):
    fast = swiftlaunch.fast(kernels.add_kernel)
    args, kwargs = add_call()
    entry = seed(fast, args, kwargs, **info)
    return fast, args, kwargs, entry


# === the hit path ==========================================================================================


@pytest.mark.parametrize("grid", [(3,), (3, 5), (2, 3, 4), [4, 2], (7, 1, 1), (2, 3, 4, 5)], ids=str)
def test_hit_launches_what_triton_would(fake, grid):
    fast, args, kwargs, entry = seeded_add(num_warps=8, shared=1536)
    result, record = hit(fake, fast, grid, *args, **kwargs)
    assert result is entry.compiled
    check_launch(record, entry, grid)
    assert streams_asked == [DEVICE], "the stream is asked for the launch device, once"


def test_repeated_hits_read_new_arguments_each_time(fake):
    fast, args, kwargs, entry = seeded_add()
    for n in (100, 99, 33):  # one specialization: none is 1 or a multiple of 16
        fresh_args = (*tensors(3, n), n)
        _, record = hit(fake, fast, (2,), *fresh_args, **kwargs)
        check_launch(record, entry, (2,), bound=dict(zip(entry.bound, (*fresh_args, kwargs["BLOCK"]))))
    assert swiftlaunch.stats()["hits"] == 3


@pytest.mark.parametrize("grid_of", ["tuple", "list"])
def test_callable_grid_gets_the_bound_arguments(fake, grid_of):
    fast = swiftlaunch.fast(kernels.scalars_kernel)
    out = tensors(1)[0]
    args = (out, 5, 0.25, True, 7, 1.5, 2.0, 3, 11, 13)
    entry = seed(fast, args)
    seen = []

    def grid(meta):
        seen.append(dict(meta))
        dims = (meta["a"], meta["BLOCK"])
        return dims if grid_of == "tuple" else list(dims)

    _, record = hit(fake, fast, grid, *args)
    # Triton calls the grid with every parameter bound, defaults and constexprs included.
    (meta,) = seen
    assert list(meta) == [p.name for p in kernels.scalars_kernel.params]
    assert all(meta[name] is value for name, value in entry.bound.items())
    check_launch(record, entry, (7, 16))


@pytest.mark.parametrize("values", [
    # i, f, b, a: i32, h: fp16, bf: bf16, u: u8, w: i64, d (do_not_specialize), s (default)
    (5, 0.25, True, 7, 1.5, 2.0, 3, 11, 13),
    (-(2**31), -0.0, False, -(2**31), 65504.0, 1 + 3 * 2**-9, 300, -(2**63), 16),
    (2**31, 1e300, True, 2**31 - 1, 6e-8, 3.4e38, -1, 2**63 - 1, 2**40),
    (2**63, float("inf"), False, 0, float("nan"), float("-inf"), 2**40 + 5, 0, -7),
    (-(2**63), 0.1, True, True, 3, 1e-40, 255, 2**62, 2**64 - 1),
    (32, float("nan"), True, -16, -0.0, 0.1, 0, -1, 1),
], ids=[f"row{i}" for i in range(6)])
@pytest.mark.parametrize("s", [None, 7, 0.75])
def test_scalars_are_converted_as_triton_converts_them(fake, values, s):
    # Unannotated ints by range (i32 / i64 / u64), floats as fp32, bools as u1; annotated parameters
    # in their own type (fp16 rounding, bf16 truncation, u8 masking); `s` given or defaulted.
    fast = swiftlaunch.fast(kernels.scalars_kernel)
    args = (tensors(1)[0], *values) + (() if s is None else (s,))
    entry = seed(fast, args)
    _, record = hit(fake, fast, (1,), *args)
    check_launch(record, entry, (1,))


def test_integer_one_and_none_are_constexprs(fake):
    # Triton turns 1 and None into compile-time constants: their parameters vanish from the launch.
    fast = swiftlaunch.fast(kernels.add_kernel)
    x, _, out = tensors()
    args = (x, None, out, 1)
    entry = seed(fast, args, {"BLOCK": 32})
    assert entry.signature[1] == "constexpr" and entry.signature[3] == "constexpr"
    _, record = hit(fake, fast, (1,), *args, BLOCK=32)
    check_launch(record, entry, (1,))


def test_misaligned_and_empty_tensors(fake):
    fast = swiftlaunch.fast(kernels.add_kernel)
    base, y, out = tensors(3, 65)
    empty = torch.empty(0)
    args = (base[1:], empty, out, 64)
    assert args[0].data_ptr() % 16 != 0 and empty.data_ptr() == 0
    entry = seed(fast, args, {"BLOCK": 64})
    _, record = hit(fake, fast, (1,), *args, BLOCK=64)
    check_launch(record, entry, (1,))


@pytest.mark.parametrize("info", [
    {"cooperative": True}, {"pdl": True}, {"cooperative": True, "pdl": True}, {"num_ctas": 2},
    {"num_ctas": 4, "pdl": True, "cooperative": True}, {"num_warps": 1, "shared": 232448},
], ids=str)
def test_launch_attributes(fake, info):
    fast, args, kwargs, entry = seeded_add(**info)
    functions_before, _ = fake.func_attributes()
    _, record = hit(fake, fast, (5, 2), *args, **kwargs)
    check_launch(record, entry, (5, 2))
    assert fake.func_attributes()[0] == functions_before, "only 16-CTA clusters set a function attribute"


def test_sixteen_cta_cluster_allows_non_portable_size(fake):
    fast, args, kwargs, entry = seeded_add(num_ctas=16)
    _, record = hit(fake, fast, (3,), *args, **kwargs)
    check_launch(record, entry, (3,))
    count, last = fake.func_attributes()
    assert count == 1 and last == (entry.function, NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)


@pytest.mark.parametrize("grid", [(0,), (4, 0), (2, 3, 0)], ids=str)
def test_empty_grid_is_a_hit_that_launches_nothing(fake, grid):
    # Triton launches only when the grid's product is positive.
    fast, args, kwargs, entry = seeded_add()
    result = fast[grid](*args, **kwargs)
    assert result is entry.compiled
    assert fake.launch_count() == 0
    assert counters() == (1, 0, {})


def test_options_are_part_of_the_key(fake):
    fast = swiftlaunch.fast(kernels.add_kernel)
    args, kwargs = add_call()
    plain = seed(fast, args, kwargs, function=1)
    eight = seed(fast, args, {**kwargs, "num_warps": 8}, num_warps=8, function=2)
    assert eight.options == {"num_warps": 8}
    _, record = hit(fake, fast, (1,), *args, **kwargs)
    check_launch(record, plain, (1,))
    _, record = hit(fake, fast, (1,), *args, **kwargs, num_warps=8)
    check_launch(record, eight, (1,))


def test_swiftlaunch_jit_kernel_hits(fake):
    jit_kernel = kernels.jit_add_kernel
    fast = jit_kernel._swiftlaunch_kernel()
    args, kwargs = add_call()
    entry = seed(fast, args, kwargs)
    result, record = hit(fake, jit_kernel, (2,), *args, **kwargs)
    assert result is entry.compiled
    check_launch(record, entry, (2,))


# === keyword binding ========================================================================================


def test_keyword_order_does_not_matter(fake):
    fast, (x, y, out, n), kwargs, entry = seeded_add()
    block = kwargs["BLOCK"]
    for call in (lambda: fast[(1,)](x, y, out, n, BLOCK=block),
                 lambda: fast[(1,)](x, y, out=out, n=n, BLOCK=block),
                 lambda: fast[(1,)](BLOCK=block, n=n, out=out, y=y, x=x),
                 lambda: fast[(1,)](x, n=n, BLOCK=block, y=y, out=out)):
        launches = fake.launch_count()
        assert call() is entry.compiled
        check_launch(fake.launch(launches), entry, (1,))
    assert counters() == (4, 0, {})


def test_two_call_sites_alternating(fake):
    # Each call site has its own keyword-name tuple: the core re-plans on every switch and must bind
    # each call by its own names.
    fast, args, kwargs, entry = seeded_add()
    for round_ in range(3):
        x, y, out = tensors()
        n = args[3]
        bound = {"x": x, "y": y, "out": out, "n": n, "BLOCK": kwargs["BLOCK"]}
        _, record = hit(fake, fast, (1,), x, y, out=out, n=n, BLOCK=kwargs["BLOCK"])
        check_launch(record, entry, (1,), bound=bound)
        _, record = hit(fake, fast, (1,), x, y, out, BLOCK=kwargs["BLOCK"], n=n)
        check_launch(record, entry, (1,), bound=bound)


def test_keywords_passed_as_a_fresh_dict_each_call(fake):
    # `**kwargs` makes a new keyword-name tuple per call: no plan is ever reused.
    fast, args, kwargs, entry = seeded_add()
    for _ in range(3):
        names = {"out": args[2], "n": args[3], "BLOCK": kwargs["BLOCK"]}
        _, record = hit(fake, fast, (1,), args[0], args[1], **names)
        check_launch(record, entry, (1,))


# === guards ================================================================================================


def test_pre_run_hook(fake):
    fast, args, kwargs, entry = seeded_add()
    fn = fast.fn

    def hook(*_args, **_kwargs):
        pass

    fn.add_pre_run_hook(hook)
    try:
        assert_fallback(fake, "pre-run hook", fast, (1,), *args, **kwargs)
    finally:
        fn.pre_run_hooks.remove(hook)
    hit(fake, fast, (1,), *args, **kwargs)


def test_debug_keyword(fake):
    fast, args, kwargs, _ = seeded_add()
    assert_fallback(fake, "debug", fast, (1,), *args, **kwargs, debug=True)
    # Any value: Triton's run reads `debug` from the keywords whatever it is.
    assert_fallback(fake, "debug", fast, (1,), *args, **kwargs, debug=False)


def test_debug_on_the_function(fake):
    fast, args, kwargs, _ = seeded_add()
    fast.fn.debug = True
    try:
        assert_fallback(fake, "debug", fast, (1,), *args, **kwargs)
    finally:
        fast.fn.debug = False
    hit(fake, fast, (1,), *args, **kwargs)


@pytest.mark.parametrize("knob,value,reason", [
    ("runtime.debug", True, "debug"),
    ("compilation.instrumentation_mode", "fpsan", "instrumentation"),
    ("runtime.add_stages_inspection_hook", lambda *args: None, "stages inspection hook"),
    ("runtime.launch_enter_hook", lambda metadata: None, "launch hook"),
    ("runtime.launch_exit_hook", lambda metadata: None, "launch hook"),
])
def test_knob_set_on_the_instance(fake, knob, value, reason):
    fast, args, kwargs, _ = seeded_add()
    group, name = knob.split(".")
    owner = getattr(knobs, group)
    with owner.scope():
        setattr(owner, name, value)
        assert_fallback(fake, reason, fast, (1,), *args, **kwargs)
    hit(fake, fast, (1,), *args, **kwargs)


@pytest.mark.parametrize("chain", ["launch_enter_hook", "launch_exit_hook"])
def test_hook_added_to_the_class_chain(fake, chain):
    fast, args, kwargs, _ = seeded_add()
    hooks = getattr(knobs.runtime, chain)

    def hook(metadata):
        pass

    hooks.add(hook)
    try:
        assert_fallback(fake, "launch hook", fast, (1,), *args, **kwargs)
    finally:
        hooks.remove(hook)
    hit(fake, fast, (1,), *args, **kwargs)


def test_changed_captured_global(fake):
    fn = kernels.global_kernel
    fn.cache_key  # noqa: B018 - Triton records the globals a kernel reads when it hashes it
    assert [name for name, _ in fn.used_global_vals] == ["G"]
    fast = swiftlaunch.fast(fn)
    x, out = tensors(2)
    args, kwargs = (x, out, 64), {"BLOCK": 64}
    entry = seed(fast, args, kwargs)
    hit(fake, fast, (1,), *args, **kwargs)
    original = kernels.G
    kernels.G = tl.constexpr(original.value + 1)
    try:
        swiftlaunch.stats(reset=True)
        assert_fallback(fake, "captured global changed", fast, (1,), *args, **kwargs)
    finally:
        kernels.G = original
    _, record = hit(fake, fast, (1,), *args, **kwargs)
    check_launch(record, entry, (1,))


def test_constexpr_global_is_compared_natively(fake):
    """A `tl.constexpr` global is recorded as a deep copy (another object): the hit compares the two
    as constexpr's `__ne__` would, without its Python code, and still launches exactly once."""
    assert _runtime.constexpr_status.startswith("native"), _runtime.constexpr_status
    fn = kernels.global_kernel
    fn.cache_key  # noqa: B018
    (recorded, _), = fn.used_global_vals.values()
    assert recorded is not kernels.G and recorded.value == kernels.G.value
    fast = swiftlaunch.fast(fn)
    x, out = tensors(2)
    entry = seed(fast, (x, out, 64), {"BLOCK": 64})
    for _ in range(3):
        _, record = hit(fake, fast, (1,), x, out, 64, BLOCK=64)
        check_launch(record, entry, (1,))


def test_global_with_a_python_ne_runs_it_once_per_launch(fake):
    """Triton evaluates `current != recorded` on every launch; so does the hit, running the global's
    own `__ne__`, and a global that compares unequal sends the call to Triton."""
    fn = kernels.counted_global_kernel
    fn.cache_key  # noqa: B018
    assert [name for name, _ in fn.used_global_vals] == ["SCALE"]
    fast = swiftlaunch.fast(fn)
    x, out = tensors(2)
    entry = seed(fast, (x, out, 64), {"BLOCK": 64})
    before = kernels.CountedNe.calls
    _, record = hit(fake, fast, (1,), x, out, 64, BLOCK=64)
    check_launch(record, entry, (1,))
    assert kernels.CountedNe.calls == before + 1
    original = kernels.SCALE
    kernels.SCALE = kernels.CountedNe(5)
    try:
        swiftlaunch.stats(reset=True)
        assert_fallback(fake, "captured global changed", fast, (1,), x, out, 64, BLOCK=64)
    finally:
        kernels.SCALE = original


def test_nan_global_is_never_equal_to_itself(fake):
    """`copy.deepcopy(nan)` is the same object, and Triton's `nan != nan` is still true (it raises on
    every launch): no identity shortcut, the call goes to Triton."""
    fn = kernels.nan_global_kernel
    fn.cache_key  # noqa: B018
    (recorded, _), = fn.used_global_vals.values()
    assert recorded is kernels.NAN
    fast = swiftlaunch.fast(fn)
    x, out = tensors(2)
    seed(fast, (x, out, 64), {"BLOCK": 64})
    swiftlaunch.stats(reset=True)
    assert_fallback(fake, "captured global changed", fast, (1,), x, out, 64, BLOCK=64)


def test_no_current_context(fake):
    fast, args, kwargs, _ = seeded_add()
    fake.set_context(False)
    assert_fallback(fake, "no current CUDA context", fast, (1,), *args, **kwargs)
    fake.set_context(True)
    hit(fake, fast, (1,), *args, **kwargs)


def test_context_lost_while_the_grid_runs(fake):
    # The context is asked again at launch: Python code (the grid) may have changed it.
    fast, args, kwargs, _ = seeded_add()

    def grid(meta):
        fake.set_context(False)
        return (1,)

    assert_fallback(fake, "no current CUDA context", fast, grid, *args, **kwargs)


def test_context_switched_to_another_device_while_the_grid_runs(fake):
    fast, args, kwargs, _ = seeded_add()

    def grid(meta):
        fake.set_device(DEVICE + 1)
        return (1,)

    assert_fallback(fake, "context on another device", fast, grid, *args, **kwargs)


@pytest.mark.parametrize("when", ["before", "during the grid"])
def test_context_query_fails(fake, when):
    fast, args, kwargs, _ = seeded_add()

    def failing_grid(meta):
        fake.set_context_result(999)
        return (1,)

    if when == "before":
        fake.set_context_result(999)
    grid = (1,) if when == "before" else failing_grid
    assert_fallback(fake, "driver query failed", fast, grid, *args, **kwargs)


def test_driver_launch_error_raises_the_drivers_text(fake):
    # Not a fallback: Triton would raise the same RuntimeError from its own launcher.
    fast, args, kwargs, entry = seeded_add()
    fake.set_launch_result(719)
    with pytest.raises(RuntimeError) as raised:
        fast[(1,)](*args, **kwargs)
    assert str(raised.value) == f"Triton Error [CUDA]: {fake.error_string(719)}"
    assert fake.launch(0).result == 719
    assert counters() == (0, 0, {})
    fake.set_launch_result(0)
    _, record = hit(fake, fast, (1,), *args, **kwargs)
    check_launch(record, entry, (1,))


# === grids =================================================================================================


@pytest.mark.parametrize("grid,reason", [
    (("4",), "grid not handled"), ((2.0,), "grid not handled"), ((), "grid not handled"),
    ((2**63,), "grid not handled"), (None, "grid not handled"), (3, "grid not handled"),
    ((1, None), "grid not handled"), (lambda meta: 3, "grid not handled"),
    ((-1,), "grid value out of range"), ((2, -3), "grid value out of range"),
    ((2**31,), "grid value out of range"), ((1, 1, 2**31), "grid value out of range"),
], ids=repr)
def test_grid_the_core_does_not_launch(fake, grid, reason):
    fast, args, kwargs, _ = seeded_add()
    assert_fallback(fake, reason, fast, grid, *args, **kwargs)


def test_grid_that_raises(fake):
    # Triton calls the grid too, and the error propagates from it: the core lets it through as is.
    fast, args, kwargs, _ = seeded_add()

    def grid(meta):
        raise ZeroDivisionError("grid")

    with pytest.raises(ZeroDivisionError, match="grid"):
        fast[grid](*args, **kwargs)
    assert counters() == (0, 0, {}) and fake.launch_count() == 0


def test_tensor_rebound_by_the_grid_launches_the_new_storage(fake):
    # Triton reads tensor addresses when it launches, after calling the grid.
    fast, (x, y, out, n), kwargs, entry = seeded_add()
    other = tensors(1)[0]
    old = x.data_ptr()

    def grid(meta):
        x.data = other
        return (1,)

    _, record = hit(fake, fast, grid, x, y, out, n, **kwargs)
    assert x.data_ptr() == other.data_ptr() != old
    check_launch(record, entry, (1,))  # entry.bound holds x itself: its address now is other's


def test_grid_that_launches_the_same_kernel(fake):
    # A launch from inside the grid (with other keyword names, so the call-site plan is replaced
    # midway): both launch, the inner one first, each with its own arguments.
    fast, (x, y, out, n), kwargs, entry = seeded_add()
    inner = tensors()

    def grid(meta):
        fast[(1,)](*inner, n=n, **kwargs)
        return (2,)

    result = fast[grid](x, y, out, n, **kwargs)
    assert result is entry.compiled
    assert counters() == (2, 0, {})
    first, second = fake.launches()
    check_launch(first, entry, (1,), bound=dict(zip(entry.bound, (*inner, n, kwargs["BLOCK"]))))
    check_launch(second, entry, (2,))


# === arguments =============================================================================================


class TensorSubclass(torch.Tensor):
    pass


@pytest.mark.parametrize("make,reason", [
    (lambda x: "x", "argument type not handled"),
    (lambda x: [x], "argument type not handled"),
    (lambda x: torch.Tensor._make_subclass(TensorSubclass, x), "argument type not handled"),
    (lambda x: x.to(torch.complex64), "argument type not handled"),
    (lambda x: tl.constexpr(3), "argument type not handled"),
    (lambda x: 2**64, "argument type not handled"),
    (lambda x: -(2**63) - 1, "argument type not handled"),
    (lambda x: x.to("meta"), "pointer is not device memory"),
], ids=["str", "list", "subclass", "complex64", "constexpr_instance", "int_2_64", "int_below_i64", "meta"])
def test_argument_the_core_does_not_read(fake, make, reason):
    fast, args, kwargs, entry = seeded_add()
    bad = make(args[0])
    if isinstance(bad, torch.Tensor) and bad.is_meta and _runtime.reader_status.startswith("python"):
        # torch's accessors say device -1 and address 0 for meta memory, as for an empty CPU tensor:
        # a null pointer, which Triton too passes unchecked.
        _, record = hit(fake, fast, (1,), bad, *args[1:], **kwargs)
        check_launch(record, entry, (1,), bound={**entry.bound, "x": bad})
        return
    assert_fallback(fake, reason, fast, (1,), bad, *args[1:], **kwargs)


@pytest.mark.parametrize("position,value,reason", [
    (4, 2**31, "argument out of range"),            # a: tl.int32
    (4, -(2**31) - 1, "argument out of range"),
    (8, 2**63, "argument out of range"),            # w: tl.int64
    (5, 1e6, "argument out of range"),              # h: tl.float16 overflows
    (5, 65520.0, "argument out of range"),          # rounds to fp16 infinity
    (4, 2.5, "argument type not handled"),          # a float for an int parameter
], ids=str)
def test_scalar_the_core_does_not_pack(fake, position, value, reason):
    fast = swiftlaunch.fast(kernels.scalars_kernel)
    args = [tensors(1)[0], 5, 0.25, True, 7, 1.5, 2.0, 3, 11, 13]
    args[position] = value
    seed(fast, args)  # keyed like Triton: the bad value only shows when packed
    assert_fallback(fake, reason, fast, (1,), *args)


def test_pointer_on_the_launch_device_only(fake):
    # A key made for device 0 while CPU memory reads as device -1: the pointer check steps aside.
    fast, args, kwargs, _ = seeded_add(device=DEVICE + 1)
    fake.set_device(DEVICE + 1)
    assert_fallback(fake, "pointer is not device memory", fast, (1,), *args, **kwargs)


def test_pointer_on_another_device(fake, reconfigure):
    # Only the accessor reader can report a device index for CPU memory: its get_device is replaced.
    dtype, data_ptr, _, probe = _runtime.tensor_access()
    reconfigure(reader=None, tensor_access=(dtype, data_ptr, lambda tensor: DEVICE + 7, probe))
    fast, args, kwargs, _ = seeded_add()
    assert_fallback(fake, "pointer on another device", fast, (1,), *args, **kwargs)


def test_rebound_tensor_on_another_device_is_asked_of_the_driver(fake, reconfigure):
    # As Triton does for every pointer: the driver's device pointer is what the kernel gets, and an
    # address the driver does not know raises Triton's ValueError.
    elsewhere = {}
    dtype, data_ptr, _, probe = _runtime.tensor_access()
    reconfigure(reader=None,
                tensor_access=(dtype, data_ptr, lambda t: elsewhere.get(t.data_ptr(), DEVICE), probe))
    fast, (x, y, out, n), kwargs, entry = seeded_add()
    known, unknown = tensors(2)
    elsewhere[known.data_ptr()] = elsewhere[unknown.data_ptr()] = DEVICE + 3
    translated = 0x7F00_0000_0000
    fake.add_allocation(known.data_ptr(), known.numel() * known.element_size(), DEVICE + 3, translated)

    def rebind(to):
        def grid(meta):
            x.data = to
            return (1,)
        return grid

    _, record = hit(fake, fast, rebind(known), x, y, out, n, **kwargs)
    bound = {**entry.bound, "x": translated}
    check_launch(record, entry, (1,), bound=bound)
    with pytest.raises(ValueError, match=r"Pointer argument \(at 0\) cannot be accessed from Triton"):
        fast[rebind(unknown)](x, y, out, n, **kwargs)


# === binding and options ===================================================================================


def test_argument_binding(fake):
    fast, (x, y, out, n), kwargs, _ = seeded_add()
    assert_fallback(fake, "argument binding", fast, (1,), x, y, out, n, 64, 5)      # too many
    assert_fallback(fake, "argument binding", fast, (1,), x, y, out, **kwargs)      # n missing
    assert_fallback(fake, "argument binding", fast, (1,), x, y, out, n, n=n, **kwargs)  # n twice


def test_option_values_the_key_cannot_hold(fake):
    fast, args, kwargs, _ = seeded_add()
    assert_fallback(fake, "option not handled", fast, (1,), *args, **kwargs, num_warps=[4])
    assert_fallback(fake, "option not handled", fast, (1,), *args, **kwargs, num_warps=math.nan)


def test_forty_unknown_options(fake):
    # More options than one call binds natively (32): Triton gets all of them (and rejects them).
    fast, args, kwargs, _ = seeded_add()
    options = {f"unknown_{i}": i for i in range(40)}
    assert_fallback(fake, "option not handled", fast, (1,), *args, **kwargs, **options)


def test_more_keywords_than_a_call_binds(fake):
    fast, (x, y, out, n), kwargs, _ = seeded_add()
    options = {f"unknown_{i}": i for i in range(64)}
    assert_fallback(fake, "option not handled", fast, (1,), x, y, out, n, **kwargs, **options)


def test_option_names_per_kernel_are_bounded(fake):
    # A kernel keys on at most 256 distinct option names; the next new one goes to Triton, names it
    # knows still bind.
    # A kernel of its own: `fast()` keeps one wrapper per kernel, and other tests add option names.
    fast = swiftlaunch.fast(triton.jit(kernels.add_kernel.fn))
    args, kwargs = add_call()
    seed(fast, args, kwargs)
    for batch in range(8):
        names = {f"option_{batch}_{i}": 0 for i in range(32)}
        assert fast.key(DEVICE, *args, **kwargs, **names) is not None
    assert fast.key(DEVICE, *args, **kwargs, option_0_0=1) is not None
    assert fast.key(DEVICE, *args, **kwargs, one_too_many=0) is None
    assert_fallback(fake, "option not handled", fast, (1,), *args, **kwargs, one_too_many=0)


def test_too_many_parameters(fake, tmp_path):
    names = [f"p{i}" for i in range(257)]
    source = tmp_path / "wide_kernel.py"
    source.write_text("import triton\n\n\n@triton.jit\n"
                      f"def wide_kernel({', '.join(names)}):\n    pass\n")
    spec = importlib.util.spec_from_file_location("wide_kernel", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fast = swiftlaunch.fast(module.wide_kernel)
    args = tuple(range(2, 259))
    assert fast.key(DEVICE, *args) is None
    assert_fallback(fake, "too many parameters", fast, (1,), *args)


# === global scratch ========================================================================================


@contextmanager
def allocator(fn):
    triton.set_allocator(fn)
    try:
        yield
    finally:
        triton.set_allocator(_allocation._NULL_ALLOCATOR)


def seeded_scratch(fake):
    """A kernel with global scratch, cached for device 0 and made current there: the driver reports
    a real ordinal (>= 0) for device memory, never CPU memory's -1, so the scratch buffer can only be
    on a device >= 0. The call has no tensor argument (`out` is None) that would have to live there
    too."""
    device = DEVICE + 1
    fake.set_device(device)
    fast = swiftlaunch.fast(kernels.scalars_kernel)
    args = (None, 5, 0.25, True, 7, 1.5, 2.0, 3, 11, 13)
    entry = seed(fast, args, device=device, num_ctas=2, scratch_size=24, scratch_align=128)
    return fast, args, entry, device


def test_global_scratch_from_the_allocator(fake):
    fast, args, entry, device = seeded_scratch(fake)
    requests, buffers = [], []
    translated = 0x7E00_0000_0000

    def allocate(size, alignment, stream):
        requests.append((size, alignment, stream))
        buffer = torch.empty(size, dtype=torch.int8)
        fake.add_allocation(buffer.data_ptr(), size, device, translated)
        buffers.append(buffer)
        return buffer

    with allocator(allocate):
        _, record = hit(fake, fast, (3, 2), *args)
    # Triton's allocate_scratch: grid size times num_ctas times the per-CTA size, on the launch stream.
    assert requests == [(3 * 2 * 2 * 24, 128, STREAM)]
    assert streams_asked == [device]
    # The kernel gets the driver's device pointer for the buffer, as from Triton's getPointer.
    check_launch(record, entry, (3, 2), scratch=translated)


def test_global_scratch_without_an_allocator(fake):
    fast, args, _, _ = seeded_scratch(fake)
    assert_fallback(fake, "global scratch without an allocator", fast, (1,), *args)


@pytest.mark.parametrize("device_offset,pointer_result", [(None, 0), (1, 0), (0, 1), (0, 999)],
                         ids=["unknown_to_the_driver", "on_another_device", "invalid_value", "query_fails"])
def test_global_scratch_the_driver_does_not_vouch_for(fake, device_offset, pointer_result):
    fast, args, _, device = seeded_scratch(fake)
    kept = []

    def allocate(size, alignment, stream):
        buffer = torch.empty(size, dtype=torch.int8)
        if device_offset is not None:
            fake.add_allocation(buffer.data_ptr(), size, device + device_offset)
        kept.append(buffer)
        return buffer

    fake.set_pointer_result(pointer_result)
    with allocator(allocate):
        assert_fallback(fake, "global scratch", fast, (1,), *args)


@pytest.mark.parametrize("grid,reason", [
    # Each dimension below 2^31, but their product times the scratch size is past Int64: the core
    # once trapped (killed the process) computing it.
    ((2**31 - 1, 2**31 - 1, 2**31 - 1), "global scratch"),
    # Not launchable at all: Triton allocates, then its launcher rejects the grid; it does both.
    ((2**40, 2**40), "grid value out of range"),
    ((-1,), "grid value out of range"),
], ids=str)
def test_global_scratch_with_a_grid_too_large(fake, grid, reason):
    fast, args, _, _ = seeded_scratch(fake)
    requests = []

    def allocate(size, alignment, stream):
        requests.append(size)
        return torch.empty(0, dtype=torch.int8)

    with allocator(allocate):
        assert_fallback(fake, reason, fast, grid, *args)
    assert requests == [], "Triton makes the allocation, not the core"


def test_global_scratch_with_an_empty_grid(fake):
    fast, args, _, _ = seeded_scratch(fake)
    with allocator(lambda size, alignment, stream: torch.empty(size, dtype=torch.int8)):
        assert_fallback(fake, "global scratch with an empty grid", fast, (0,), *args)


# === Helion's launcher contract ============================================================================


@pytest.fixture
def helion(monkeypatch):
    """`swiftlaunch.Launcher()`, with Helion's default launcher (the fallback) recorded instead of
    imported, and the native kernels the glue's factory makes for it, in order."""
    from swiftlaunch import helion as glue

    calls, made = [], []
    sentinel = StandIn()

    def default_launcher(triton_kernel, grid, *args, **kwargs):
        calls.append((triton_kernel, grid, args, kwargs))
        return sentinel

    native = swiftlaunch._loader.native
    launcher_type = native.Launcher

    def recording_launcher(factory, fallback):
        def recording_factory(triton_kernel):
            kernel = factory(triton_kernel)
            made.append(kernel)
            return kernel

        return launcher_type(recording_factory, fallback)

    monkeypatch.setattr(glue, "_helion_default_launcher", lambda: default_launcher)
    monkeypatch.setattr(native, "Launcher", recording_launcher)
    return glue.Launcher(), made, calls, sentinel


def assert_helion_fallback(fake, reason, helion, triton_kernel, grid, *args, **kwargs):
    launcher, _, calls, sentinel = helion
    launches, before = fake.launch_count(), len(calls)
    assert launcher(triton_kernel, grid, *args, **kwargs) is sentinel
    assert len(calls) == before + 1
    got_kernel, got_grid, got_args, got_kwargs = calls[-1]
    assert got_kernel is triton_kernel and got_grid is grid
    assert len(got_args) == len(args) and all(a is b for a, b in zip(got_args, args))
    assert got_kwargs.keys() == kwargs.keys() and all(got_kwargs[k] is kwargs[k] for k in kwargs)
    assert counters() == (0, 0, {reason: 1}), swiftlaunch.stats()
    assert fake.launch_count() == launches
    swiftlaunch.stats(reset=True)


def test_helion_launcher_hit(fake, helion):
    launcher, made, _, _ = helion
    fn = kernels.add_kernel
    args, kwargs = add_call()
    meta = {"num_warps": 8, "num_stages": 3, **kwargs}
    # The first call of a kernel makes its native kernel; one Triton must take shows it, caching nothing.
    assert_helion_fallback(fake, "debug", helion, fn, (1,), *args, **meta, debug=True)
    (kernel,) = made
    entry = seed(kernel, args, meta, fn=fn, num_warps=8)
    result, record = hit_call(fake, lambda: launcher(fn, (3, 2), *args, **meta))
    assert result is entry.compiled
    check_launch(record, entry, (3, 2))
    # The launcher adds launch_cooperative_grid=False where Helion leaves it out: given, it is the same key.
    _, record = hit_call(fake, lambda: launcher(fn, (1,), *args, **meta, launch_cooperative_grid=False))
    check_launch(record, entry, (1,))
    assert len(made) == 1


@pytest.mark.parametrize("extra", ["_remote_copy_signal_dst", "_minimum_resident_programs", "ptx_options"])
def test_helion_launcher_extras(fake, helion, extra):
    args, kwargs = add_call()
    assert_helion_fallback(fake, "helion launcher extras", helion, kernels.add_kernel, (1,), *args,
                           num_warps=4, num_stages=3, **kwargs, **{extra: None})


def test_helion_launcher_with_a_kernel_that_is_not_triton_jit(fake, helion):
    args, kwargs = add_call()

    def not_jit(*args, **kwargs):
        pass

    assert_helion_fallback(fake, "not a triton.jit kernel", helion, not_jit, (1,), *args, num_warps=4,
                           num_stages=3, **kwargs)


# === kernels the glue hands to Triton whole =================================================================


def test_interpreted_kernel_runs_in_tritons_interpreter(fake):
    from triton.runtime.interpreter import InterpretedFunction

    interpreted = InterpretedFunction(kernels.add_kernel.fn)
    (x, y, out, n), kwargs = add_call()
    swiftlaunch.fast(interpreted)[(2,)](x, y, out, n, **kwargs)
    # The interpreter runs on the CPU: the result is real.
    assert torch.equal(out, x + y)
    assert counters() == (0, 0, {"triton interpreter": 1}) and fake.launch_count() == 0


def test_jit_function_subclass(fake):
    class Subclass(triton.runtime.jit.JITFunction):
        pass

    fast = swiftlaunch.fast(Subclass(kernels.add_kernel.fn))
    args, kwargs = add_call()
    assert_fallback(fake, "JITFunction subclass", fast, (1,), *args, **kwargs)


def test_parameter_annotation_the_core_cannot_pack(fake):
    fast = swiftlaunch.fast(kernels.fp8_scalar_kernel)
    out = tensors(1)[0]
    launches = fake.launch_count()
    with triton_run_recorded(fast.fn) as (calls, sentinel):
        assert fast[(1,)](out, 1.5) is sentinel
    assert len(calls) == 1 and calls[0][0][0] is out
    (reason,) = swiftlaunch.stats()["fallbacks"]
    assert reason.startswith("parameters not handled") and "fp8e5" in reason, reason
    assert fake.launch_count() == launches


# === configuration =========================================================================================


def test_no_stream_query(fake, reconfigure):
    reconfigure(current_stream=None)
    fast, args, kwargs, _ = seeded_add()
    assert_fallback(fake, "no CUDA device", fast, (1,), *args, **kwargs)


def test_no_knobs(fake, reconfigure):
    reconfigure(runtime_knobs=None)
    fast, args, kwargs, _ = seeded_add()
    assert_fallback(fake, "triton not configured", fast, (1,), *args, **kwargs)


def test_fallback_runs_triton_itself(fake):
    # Without the recording stand-in: the fallback's error is Triton's own, exactly as a direct call
    # raises it here (Triton finds no GPU).
    fast, args, kwargs, _ = seeded_add()
    with pytest.raises(Exception) as direct:
        kernels.add_kernel[(1,)](*args, **kwargs, debug=True)
    with pytest.raises(type(direct.value)) as through:
        fast[(1,)](*args, **kwargs, debug=True)
    assert str(through.value) == str(direct.value)
    assert counters() == (0, 0, {"debug": 1})


# === threads ===============================================================================================


def test_threads(fake):
    n_threads, per_thread = 4, 2000
    fast, args, kwargs, entry = seeded_add()
    work = [(*tensors(), args[3]) for _ in range(n_threads)]
    expected = {expected_params(entry, bound={**entry.bound, **dict(zip("x y out n".split(), w))})[0]: w
                for w in work}
    start = threading.Barrier(n_threads)
    errors = []

    def run(thread_args):
        try:
            start.wait()
            for _ in range(per_thread):
                fast[(2,)](*thread_args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,)) for w in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    total = n_threads * per_thread
    assert counters() == (total, 0, {})
    assert fake.launch_count() == total
    # The ring holds the latest launches: each must carry one thread's arguments, all of them.
    for record in fake.launches(start=max(0, total - fake.ring_size)):
        first = record.words[0].to_bytes(8, "little")
        w = expected[first]
        check_launch(record, entry, (2,), bound={**entry.bound, **dict(zip("x y out n".split(), w))})
