"""The native Helion dispatch in front of Helion's real call path, on CPU tensors with Triton's
interpreter (run by tests/test_helion_dispatch.py in a process started with TRITON_INTERPRET=1; it
can also be run directly that way). The native launcher steps aside for the interpreter's kernels,
but the dispatch table and its guard run as they do on a GPU.

The central property (the hypothesis test): for any argument list, the native dispatch picks the
host wrapper Helion's own prepared-call guard picks for it, or hands the call back to Helion; never
another wrapper.
"""

import gc
import importlib
import math
import os

import pytest

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 before Triton is imported (tests/test_helion_dispatch.py runs this)",
                allow_module_level=True)

torch = pytest.importorskip("torch")
helion = pytest.importorskip("helion")
hl = pytest.importorskip("helion.language")

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import swiftlaunch  # noqa: E402
import swiftlaunch.helion as sl_helion  # noqa: E402

Kernel = importlib.import_module("helion.runtime.kernel").Kernel


def fallbacks():
    return swiftlaunch.stats()["fallbacks"]


def dispatched():
    return sl_helion.dispatch_stats()["dispatched"]


def lookup(kernel, args):
    """The wrapper the native dispatch would run for `args`, else why not ("" for a plain miss)."""
    return swiftlaunch._loader.native.helion_lookup(kernel, tuple(args))


# --- results through Helion's real path ------------------------------------------------------------


def test_results_and_native_dispatch(K, installed):
    """Kernels made before install() (at import) give Helion's results through the native dispatch:
    the first call of each argument shape goes to Helion and is learned, the next is native."""
    x, y = torch.randn(8), torch.randn(8)
    x2, y2 = torch.randn(12), torch.randn(12)
    before = dispatched()
    for _ in range(2):
        torch.testing.assert_close(K.scaled_add(x, y, 0.5, 2), (x + y * 0.5) * 2)
        torch.testing.assert_close(K.scaled_add(x2, y2, -1.0, 3), (x2 - y2) * 3)
    # Shapes in turn: both stay in the table.
    for _ in range(2):
        torch.testing.assert_close(K.scaled_add(x, y, 0.5, 2), (x + y * 0.5) * 2)
        torch.testing.assert_close(K.scaled_add(x2, y2, 2.0, 3), (x2 + y2 * 2) * 3)
    assert dispatched() - before == 6, sl_helion.dispatch_stats()

    # A runtime scalar of the same type reuses the entry; a new constexpr value is a new entry.
    torch.testing.assert_close(K.scaled_add(x, y, 3.0, 2), (x + y * 3) * 2)
    assert dispatched() - before == 7
    torch.testing.assert_close(K.scaled_add(x, y, 3.0, 5), (x + y * 3) * 5)
    torch.testing.assert_close(K.scaled_add(x, y, 3.0, 5), (x + y * 3) * 5)
    assert dispatched() - before == 8

    matrix = torch.randn(4, 8)
    for _ in range(2):
        total, largest = K.sum_and_max(matrix)
        torch.testing.assert_close(total, matrix.sum(-1))
        torch.testing.assert_close(largest, matrix.amax(-1))
        torch.testing.assert_close(K.rms_norm(matrix), matrix / torch.sqrt((matrix * matrix).mean(-1, keepdim=True) + 1e-5))
        half = K.cast_to(x, torch.float16)
        assert half.dtype == torch.float16
        torch.testing.assert_close(half, x.half())
        total, difference = K.sum_and_difference(x, y)
        torch.testing.assert_close(total, x + y)
        torch.testing.assert_close(difference, x - y)
        # Host code that broadcasts: a row against a matrix, and two matrices of one shape.
        torch.testing.assert_close(K.broadcast_add(matrix, x), matrix + x)
        torch.testing.assert_close(K.broadcast_add(matrix, matrix), matrix + matrix)
    assert dispatched() - before == 14


def test_in_place_returns_its_input(K, installed):
    x, y = torch.randn(8), torch.randn(8)
    for _ in range(3):
        expected = x + y
        assert K.add_into(x, y) is x
        torch.testing.assert_close(x, expected)


def test_export_tracing_goes_to_helions_own_call(K, installed, monkeypatch):
    """While torch.export runs Python (`torch.compiler._is_compiling_flag` set, so
    `torch.compiler.is_compiling()` is True) the shim calls Helion's own method, as under Dynamo."""
    x, y = torch.randn(8), torch.randn(8)
    for _ in range(3):
        K.sum_and_difference(x, y)
    monkeypatch.setattr(torch.compiler, "_is_compiling_flag", True)
    assert torch.compiler.is_compiling()
    before = dispatched()
    for _ in range(3):
        torch.testing.assert_close(K.sum_and_difference(x, y)[0], x + y)
    assert dispatched() == before
    monkeypatch.setattr(torch.compiler, "_is_compiling_flag", False)
    K.sum_and_difference(x, y)
    assert dispatched() == before + 1


def _shim_frames(call):
    """How many times the shim's Python frame ran during `call()`."""
    import sys

    shim = Kernel.__dict__["__call__"].__code__
    seen = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is shim:
            seen.append(frame)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return len(seen)


def test_call_slot_runs_without_the_shims_frame(K, installed):
    """CPython calls an installed Kernel through its native call slot: the shim's frame does not run,
    while `Kernel.__call__` (what Dynamo and attribute lookups see) is the shim."""
    assert sl_helion.dispatch_stats()["call_slot"].startswith("native call slot"), sl_helion.dispatch_stats()
    x, y = torch.randn(8), torch.randn(8)
    for _ in range(3):
        K.sum_and_difference(x, y)
    before = dispatched()
    assert _shim_frames(lambda: K.sum_and_difference(x, y)) == 0
    assert dispatched() == before + 1
    # Keywords go through the shim itself, as before.
    assert _shim_frames(lambda: K.scaled_add(x, y, alpha=0.5, scale=2)) == 1
    assert Kernel.__dict__["__call__"] is type(K.sum_and_difference).__call__


def test_call_slot_off_by_environment(K, native, monkeypatch):
    from swiftlaunch import _helion_dispatch

    monkeypatch.setenv(_helion_dispatch.CALL_SLOT_ENV, "0")
    assert sl_helion.install()
    try:
        assert sl_helion.dispatch_stats()["call_slot"] == f"python shim ({_helion_dispatch.CALL_SLOT_ENV}=0)"
        x, y = torch.randn(8), torch.randn(8)
        for _ in range(3):
            K.sum_and_difference(x, y)
        assert _shim_frames(lambda: K.sum_and_difference(x, y)) == 1
    finally:
        sl_helion.uninstall()


def test_call_slot_gives_way_to_a_later_patch(K, native):
    """Assigning Kernel.__call__ after install() resets CPython's slot: the new method is what runs.
    uninstall() then leaves it in place (with its warning) and calls still go to it."""
    assert sl_helion.install()
    shim = Kernel.__dict__["__call__"]
    calls = []

    def patched(self, *args, **kwargs):
        calls.append(args)
        return shim(self, *args, **kwargs)

    try:
        Kernel.__call__ = patched
        x, y = torch.randn(8), torch.randn(8)
        torch.testing.assert_close(K.sum_and_difference(x, y)[0], x + y)
        assert len(calls) == 1
    finally:
        with pytest.warns(RuntimeWarning, match="replaced after install"):
            sl_helion.uninstall()
        Kernel.__call__ = shim.__wrapped__
    torch.testing.assert_close(K.sum_and_difference(x, y)[0], x + y)
    assert len(calls) == 1


def test_subclass_goes_through_the_shim(K, installed):
    """A Kernel subclass made while installed gets CPython's generic slot (its __call__ is the
    shim's, found in the MRO): Helion's own path, refused as a subclass, with the right result."""
    sub = type("SubKernel", (Kernel,), {})
    kernel = K.sum_and_difference
    instance = sub.__new__(sub)
    instance.__dict__.update(kernel.__dict__)
    x, y = torch.randn(8), torch.randn(8)
    assert _shim_frames(lambda: instance(x, y)) == 1
    torch.testing.assert_close(instance(x, y)[0], x + y)


def test_dispatch_cases(K, installed):
    """k(x, x) after k(x, y), Parameter after Tensor, a dtype change, strided input, reset()."""
    k = K.scaled_add
    x, y = torch.randn(8), torch.randn(8)
    k(x, y, 1.0, 2)
    run = lookup(k, (x, y, 1.0, 2))
    assert callable(run)
    # Aliasing is part of Helion's guard: k(x, x) is another entry.
    assert lookup(k, (x, x, 1.0, 2)) == ""
    torch.testing.assert_close(k(x, x, 1.0, 2), (x + x) * 2)
    torch.testing.assert_close(k(x, x, 1.0, 2), (x + x) * 2)
    assert callable(lookup(k, (x, x, 1.0, 2)))
    # Parameter vs Tensor: different exact types.
    p = torch.nn.Parameter(x.clone())
    assert lookup(k, (p, y, 1.0, 2)) == ""
    with torch.no_grad():
        torch.testing.assert_close(k(p, y, 1.0, 2), (p + y) * 2)
        torch.testing.assert_close(k(p, y, 1.0, 2), (p + y) * 2)
    assert callable(lookup(k, (p, y, 1.0, 2)))
    # dtype and strides.
    h = torch.randn(8, dtype=torch.float64)
    assert lookup(k, (h, h.clone(), 1.0, 2)) == ""
    base = torch.randn(16)
    strided = base[::2]
    assert lookup(k, (strided, y, 1.0, 2)) == ""
    torch.testing.assert_close(k(strided, y, 1.0, 2), (strided + y) * 2)
    torch.testing.assert_close(k(strided, y, 1.0, 2), (strided + y) * 2)
    assert callable(lookup(k, (strided, y, 1.0, 2)))
    # reset(): every entry is stale; the next call goes to Helion, the one after is native again.
    k.reset()
    assert lookup(k, (x, y, 1.0, 2)) == ""
    before = dispatched()
    torch.testing.assert_close(k(x, y, 1.0, 2), (x + y) * 2)
    torch.testing.assert_close(k(x, y, 1.0, 2), (x + y) * 2)
    assert dispatched() - before == 1


def test_set_config_retires_the_entry(K, installed):
    k = K.scaled_add
    x, y = torch.randn(8), torch.randn(8)
    k(x, y, 1.0, 2)
    old = lookup(k, (x, y, 1.0, 2))
    assert callable(old)
    bound = k.bind((x, y, 1.0, 2))
    bound.set_config(helion.Config(block_sizes=[8]))
    # Helion would now run the new wrapper: the old entry no longer holds.
    assert lookup(k, (x, y, 1.0, 2)) == ""
    torch.testing.assert_close(k(x, y, 1.0, 2), (x + y) * 2)
    assert lookup(k, (x, y, 1.0, 2)) is bound._run
    bound.set_config(helion.Config(block_sizes=[K.BLOCK]))


def test_handed_back_with_reasons(K, installed, tmp_path):
    x, y = torch.randn(8), torch.randn(8)
    k = K.scaled_add
    k(x, y, 1.0, 2)
    k(x, y, 1.0, 2)
    # Keyword arguments: Helion's own __call__ (normalize_args).
    torch.testing.assert_close(k(x, y, alpha=1.0, scale=2), (x + y) * 2)
    assert fallbacks()["helion: keyword arguments"] == 1
    # Under a torch function mode Helion's guard reads tensors through the mode.
    with torch.device("cpu"):
        torch.testing.assert_close(k(x, y, 1.0, 2), (x + y) * 2)
    assert fallbacks()["helion: torch function mode"] == 1
    # Dynamo's static indices, and a tensor whose `stride` is its own attribute.
    marked = x.clone()
    marked._dynamo_static_indices = {0}
    assert lookup(k, (marked, y, 1.0, 2)) == "helion: _dynamo_static_indices"
    torch.testing.assert_close(k(marked, y, 1.0, 2), (marked + y) * 2)
    odd = x.clone()
    odd.stride = lambda *a: (1,)
    assert lookup(k, (odd, y, 1.0, 2)) == "helion: stride is not torch's"
    plain = x.clone()
    plain.note = "an instance attribute that changes nothing"
    assert callable(lookup(k, (plain, y, 1.0, 2)))
    plain._dynamo_static_indices = None  # getattr(..., None) is None: Helion's guard accepts it
    assert callable(lookup(k, (plain, y, 1.0, 2)))
    # A container argument, more arguments than parameters.
    assert lookup(k, (x, [y], 1.0, 2)) == "helion: container argument"
    assert lookup(k, (x, y, 1.0, 2, 3)) == ""
    # key=: every call of that kernel goes to Helion.
    for _ in range(2):
        torch.testing.assert_close(K.keyed_add(x, y), x + y)
    assert fallbacks()["helion: key="] == 2
    # hl.specialize on a scalar: a guard the native side does not mirror.
    for factor in (2, 2, 3):
        torch.testing.assert_close(K.specialized_scale(x, factor), x * factor)
    assert fallbacks()["helion: extra guards (hl.specialize, tensor descriptors, content classifiers)"] == 3


def outcome(function, *args):
    try:
        return "result", function(*args)
    except Exception as error:  # noqa: BLE001 -- compared, not handled
        return "raised", type(error)


def test_initialized_process_group_goes_to_helion(K, installed, tmp_path):
    """A single-process gloo group: every call goes to Helion, which does what it does without
    swiftlaunch (on CPU tensors Helion's distributed path raises; on a GPU it launches)."""
    import torch.distributed as dist

    original = Kernel.__dict__["__call__"].__wrapped__
    x, y = torch.randn(8), torch.randn(8)
    K.scaled_add(x, y, 1.0, 2)
    K.scaled_add(x, y, 1.0, 2)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert lookup(K.scaled_add, (x, y, 1.0, 2)) == "helion: process group initialized"
        for _ in range(2):
            kind, value = outcome(K.scaled_add, x, y, 1.0, 2)
            helion_kind, helion_value = outcome(original, K.scaled_add, x, y, 1.0, 2)
            assert kind == helion_kind
            if kind == "result":
                torch.testing.assert_close(value, helion_value)
            else:
                assert value is helion_value
        assert fallbacks()["helion: process group initialized"] == 2
    finally:
        dist.destroy_process_group()
    assert callable(lookup(K.scaled_add, (x, y, 1.0, 2)))


def test_kernel_freed_drops_its_table(installed):
    import helion_cpu_kernels

    source = helion_cpu_kernels.scaled_add.fn
    kernel = helion.kernel(config=helion.Config(block_sizes=[helion_cpu_kernels.BLOCK]), static_shapes=True)(source)
    x, y = torch.randn(8), torch.randn(8)
    kernel(x, y, 1.0, 2)
    kernel(x, y, 1.0, 2)
    tables = sl_helion.dispatch_stats()["tables"]
    del kernel
    gc.collect()
    assert sl_helion.dispatch_stats()["tables"] == tables - 1


# --- the native guard against Helion's own ---------------------------------------------------------


class Learned:
    """Entries learned from real Helion dispatches of `scaled_add`, with the prepared call Helion
    published for each (its guard, the wrapper it runs)."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.prepared = []
        base = torch.randn(32)
        self.tensors = {
            "x8": torch.randn(8), "y8": torch.randn(8), "x12": torch.randn(12), "y12": torch.randn(12),
            "p8": torch.nn.Parameter(torch.randn(8)), "s8": base[::4], "d8": torch.randn(8, dtype=torch.float64),
            "e8": torch.randn(8, dtype=torch.float64), "t8": torch.randn(8), "m24": torch.randn(2, 4),
            "view8": base[8:16], "zero": torch.randn(0),
        }
        T = self.tensors
        self.learning = [
            (T["x8"], T["y8"], 1.0, 2),
            (T["x8"], T["y8"], 1.0, 3),
            (T["x12"], T["y12"], 0.5, 2),
            (T["x8"], T["x8"], 1.0, 2),
            (T["p8"], T["y8"], 1.0, 2),
            (T["s8"], T["y8"], 1.0, 2),
            (T["d8"], T["e8"], 1.0, 2),
            (T["x8"], T["y8"], 1.0, 2.5),
            (T["x8"], T["y8"], 1.0, True),
            (T["x8"], T["y8"], 1.0, hl.constexpr(4)),
            (T["x8"], T["y8"], 1.0, hl.constexpr(1.5)),
        ]
        self.ensure()

    def ensure(self):
        """(Re)learns every entry: an uninstall in between drops the native tables."""
        assert sl_helion.install()
        self.prepared = []
        with torch.no_grad():
            for args in self.learning:
                self.kernel(*args)
                prepared = self.kernel._prepared_call
                assert prepared is not None and prepared.matches(self.kernel, args)
                assert lookup(self.kernel, args) is prepared.bound._run, args
                self.prepared.append(prepared)


@pytest.fixture(scope="module")
def learned_once(native):
    import helion_cpu_kernels

    source = helion_cpu_kernels.scaled_add.fn
    # A kernel of its own, so other tests' resets and configs do not touch its entries.
    kernel = helion.kernel(config=helion.Config(block_sizes=[helion_cpu_kernels.BLOCK]), static_shapes=True)(source)
    return Learned(kernel)


@pytest.fixture
def learned(learned_once):
    if not callable(lookup(learned_once.kernel, learned_once.learning[0])):
        learned_once.ensure()
    return learned_once


SCALARS = [1.0, 0.5, -0.0, 0.0, math.inf, math.nan, 2, 3, 4, 0, -1, 2**70, True, False, None, 2.5, 1.5, "a",
           torch.float32, torch.device("cpu"), hl.constexpr(4), hl.constexpr(4.0), hl.constexpr(True),
           hl.constexpr(1.5), hl.constexpr("4"), hl.constexpr(5), (1, 2), [1]]


@st.composite
def argument_lists(draw, learned):
    """Mostly a learned argument list with a few positions changed, so hits and near misses are both
    common; sometimes a list of other length."""
    names = sorted(learned.tensors)
    pool = [learned.tensors[name] for name in names] + SCALARS
    args = list(draw(st.sampled_from(learned.learning)))
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(args) - 1))
        args[position] = draw(st.sampled_from(pool))
    if draw(st.integers(0, 9)) == 0:
        args = args[:-1]
    elif draw(st.integers(0, 9)) == 0:
        args = args + [draw(st.sampled_from(pool))]
    return tuple(args)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
@given(data=st.data())
def test_native_guard_picks_helions_wrapper_or_hands_back(learned, data):
    args = data.draw(argument_lists(learned))
    kernel = learned.kernel
    got = lookup(kernel, args)
    accepting = [p for p in learned.prepared if p.matches(kernel, args)]
    event("hit" if not isinstance(got, str) else (got or "miss"))
    if isinstance(got, str):
        if got == "":
            # A plain miss: no learned guard of Helion's accepts these arguments.
            assert not accepting, (args, [p.bound._run for p in accepting])
        return
    # A hit: Helion's own guard for that wrapper accepts the arguments, and every guard of Helion's
    # that accepts them runs the same wrapper.
    assert accepting, args
    assert all(p.bound._run is got for p in accepting), args
    # Helion's own dispatch cache maps these arguments to the same bound kernel.
    fast_key = kernel._fast_dispatch_key(args)
    assert fast_key is not None and kernel._dispatch_cache[fast_key]._run is got


def test_each_learned_argument_list_finds_its_wrapper(learned):
    for args, prepared in zip(learned.learning, learned.prepared):
        assert lookup(learned.kernel, args) is prepared.bound._run
