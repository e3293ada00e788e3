"""The second stage and the output pool on a GPU.

Second stage: kernels whose wrappers are only allocations, metadata, a broadcast that changes
nothing, one launch and a return run natively (`dispatch_stats()["native_runs"]`), bit for bit what Helion gives.

Pool (`install(output_pool=True)`): a caller who keeps a result, a view, a slice, a DLPack capsule,
a `detach()` or its storage never sees it overwritten; dropping every reference makes the next call
reuse it; no reuse while a CUDA graph captures, on another stream, or across inference mode.

"Overwritten" is checked the only way that can see it: after the next calls (on other inputs) and a
synchronize, whatever the caller kept still holds the first call's values.
"""

import gc
import importlib

import pytest
import torch

helion = pytest.importorskip("helion")

import swiftlaunch  # noqa: E402
import swiftlaunch.helion as sl_helion  # noqa: E402

from . import helion_kernels as K  # noqa: E402
from .helpers import assert_same  # noqa: E402

Kernel = importlib.import_module("helion.runtime.kernel").Kernel
N = 4096


def helion_call(kernel, *args):
    return Kernel.__dict__["__call__"].__wrapped__(kernel, *args)


def stats():
    return sl_helion.dispatch_stats()


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, device="cuda", dtype=dtype)


@pytest.fixture
def plain():
    sl_helion.uninstall()
    assert sl_helion.install(), sl_helion.refusal()
    assert not sl_helion.pool_on()
    yield
    sl_helion.uninstall()


@pytest.fixture
def pooled():
    sl_helion.uninstall()
    assert sl_helion.install(output_pool=True), sl_helion.refusal()
    assert sl_helion.pool_on(), sl_helion.pool_refusal()
    yield
    sl_helion.uninstall()


def warm(kernel, *args, calls=3):
    """Learned (Helion), recorded (the twin), then one native call: the entry has its plan."""
    for _ in range(calls):
        kernel(*args)
    torch.cuda.synchronize()


# --- second stage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["add", "scaled_add", "sum_and_difference", "softmax", "layer_norm", "rms_norm",
                                  "matmul", "persistent_add", "dynamic_add"])
def test_native_run_equals_helion(plain, case):
    args = {
        "add": (randn(N), randn(N)),
        "scaled_add": (randn(N), randn(N), 0.5, 3),
        "sum_and_difference": (randn(N), randn(N)),
        "softmax": (randn(48, 200),),
        "layer_norm": (randn(48, 200), randn(200), randn(200)),
        "rms_norm": (randn(48, 200), randn(200)),
        "matmul": (randn(128, 96, dtype=torch.float16), randn(96, 64, dtype=torch.float16)),
        "persistent_add": (randn(200, 300), randn(200, 300)),
        "dynamic_add": (randn(3000), randn(3000)),
    }[case]
    kernel = getattr(K, case)
    expected = helion_call(kernel, *args)
    before = stats()["native_runs"]
    for index in range(4):
        result = kernel(*args)
        if isinstance(expected, tuple):
            assert type(result) is tuple and len(result) == len(expected)
            for a, e in zip(result, expected):
                assert_same(a, e, f"{case} call {index}")
        else:
            assert_same(result, expected, f"{case} call {index}")
    assert stats()["native_runs"] - before >= 2, (stats(), swiftlaunch.stats()["fallbacks"])


def test_runtime_scalar_is_the_current_one(plain):
    x, y = randn(N), randn(N)
    for alpha in (0.5, 2.0, -1.0, 0.25, 3.0):
        assert_same(K.scaled_add(x, y, alpha, 3), helion_call(K.scaled_add, x, y, alpha, 3), f"alpha {alpha}")


def test_in_place_launches_once(plain):
    x, y = randn(N), randn(N)
    expected = x.clone()
    for _ in range(5):
        expected = helion_call(K.add_into, expected, y)
        assert K.add_into(x, y) is x
        assert_same(x, expected, "in place")


def test_broadcast_runs_natively_only_when_it_changes_nothing(plain):
    """Matching shapes: the broadcast is dropped and the call runs natively. A row against a matrix:
    that entry stays in the first stage, with its reason. Alternating, every result is Helion's."""
    x, y, row = randn(64, 96), randn(64, 96), randn(96)
    reason = "helion native run: torch.broadcast_tensors changes a shape"
    before, refused = stats()["native_runs"], swiftlaunch.stats()["fallbacks"].get(reason, 0)
    for _ in range(4):
        assert_same(K.broadcast_add(x, y), helion_call(K.broadcast_add, x, y), "broadcast, same shapes")
        assert_same(K.broadcast_add(x, row), helion_call(K.broadcast_add, x, row), "broadcast of a row")
    assert stats()["native_runs"] - before == 2, stats()
    assert swiftlaunch.stats()["fallbacks"].get(reason, 0) - refused == 1


# --- the pool ----------------------------------------------------------------------------------------


def test_pool_results_are_right(pooled):
    for _ in range(10):
        x, y = randn(N), randn(N)
        assert_same(K.add(x, y), helion_call(K.add, x, y), "pooled add")
        total, difference = K.sum_and_difference(x, y)
        expected = helion_call(K.sum_and_difference, x, y)
        assert_same(total, expected[0], "total")
        assert_same(difference, expected[1], "difference")


def test_dropping_every_reference_reuses(pooled):
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    result = K.add(x, y)
    address = result.data_ptr()
    del result
    reused = stats()["pool_reused"]
    x2, y2 = randn(N), randn(N)
    again = K.add(x2, y2)
    assert again.data_ptr() == address and stats()["pool_reused"] == reused + 1, stats()
    assert_same(again, x2 + y2, "reused output")


def test_kept_result_is_never_overwritten(pooled):
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    kept = K.add(x, y)
    expected = (x + y).clone()
    for _ in range(3):
        other = K.add(randn(N), randn(N))
        assert other.data_ptr() != kept.data_ptr()
        del other
    torch.cuda.synchronize()
    assert_same(kept, expected, "kept result")


HOLDERS = {
    "view": (lambda t: t.view(64, 64), lambda h: h.reshape(-1)),
    "slice": (lambda t: t[1:], lambda h: h),
    "detach": (lambda t: t.detach(), lambda h: h),
    "dlpack": (lambda t: torch.utils.dlpack.to_dlpack(t), lambda h: torch.from_dlpack(h)),
    "storage": (lambda t: t.untyped_storage(),
                lambda h: torch.empty(0, device="cuda").set_(h).view(torch.float32)[:N]),
}


@pytest.mark.parametrize("holder", list(HOLDERS))
def test_a_holder_keeps_the_memory(pooled, holder):
    """The result itself is dropped; only the holder remains. Later calls must not write into it."""
    hold, read = HOLDERS[holder]
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    result = K.add(x, y)
    expected = result.clone()
    held = hold(result)
    del result
    gc.collect()
    for _ in range(3):
        K.add(randn(N), randn(N))
    torch.cuda.synchronize()
    seen = read(held)
    if holder == "slice":
        assert_same(seen, expected[1:], holder)
    else:
        assert_same(seen, expected, holder)


def test_named_input_is_not_served_from_the_pool(pooled):
    """Helion's guard does not compare names: a named input hits the same entry, and `empty_like`
    copies its names. A pooled (unnamed) output must not stand in: the result is what Helion gives."""
    import warnings

    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    K.add(x, y)  # its output, dropped, is the pool's to reuse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # named tensors are a prototype feature
        named = x.refine_names("n")
        try:
            expected = helion_call(K.add, named, y)
        except Exception as error:  # noqa: BLE001 -- then the installed call must raise the same
            with pytest.raises(type(error)):
                K.add(named, y)
            return
        result = K.add(named, y)
    assert result.names == expected.names == ("n",)
    assert_same(result.rename(None), expected.rename(None), "named input")


def test_weakref_blocks_reuse(pooled):
    import weakref

    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    result = K.add(x, y)
    address = result.data_ptr()
    ref = weakref.ref(result)
    del result  # the pool's reference keeps it alive, and the weak reference can still reach it
    assert ref() is not None
    again = K.add(randn(N), randn(N))
    assert again.data_ptr() != address
    assert stats()["pool_refusals"].get("weak references", 0) >= 1


def test_no_reuse_while_a_graph_captures(pooled):
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    K.add(x, y)  # pooled, and dropped
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        warm(K.add, x, y)  # the capture stream gets its own pooled output, then drops it
    torch.cuda.current_stream().wait_stream(stream)
    reused = stats()["pool_reused"]
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = K.add(x, y)
    assert stats()["pool_reused"] == reused, stats()
    assert stats()["pool_refusals"].get("CUDA graph capturing", 0) >= 1
    # The captured output is the graph's: never handed out by the pool afterwards.
    for _ in range(3):
        eager = K.add(randn(N), randn(N))
        assert eager.data_ptr() != captured.data_ptr()
    x2, y2 = randn(N), randn(N)
    x.copy_(x2)
    y.copy_(y2)
    graph.replay()
    torch.cuda.synchronize()
    assert_same(captured, x2 + y2, "graph replay")


def test_capture_state_comes_from_the_driver(pooled):
    """The pool asks the driver, not torch, once install() saw both agree; both agree here too:
    outside a capture, on a side stream, and inside a capture on it."""
    assert stats()["pool_capture_query"].startswith("the driver's cuStreamIsCapturing"), stats()
    native = swiftlaunch._loader.native
    assert native.current_stream_capturing() is False
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        assert native.current_stream_capturing() is False
        graph = torch.cuda.CUDAGraph()
        scratch = torch.zeros(4, device="cuda")
        graph.capture_begin()
        try:
            scratch.add_(1)
            inside = (native.current_stream_capturing(), torch.cuda.is_current_stream_capturing())
        finally:
            graph.capture_end()
    assert inside == (True, True)
    assert native.current_stream_capturing() is False


def test_no_reuse_on_another_stream(pooled):
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    K.add(x, y)  # pooled on the current stream, dropped
    reused = stats()["pool_reused"]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        result = K.add(x, y)
    assert stats()["pool_reused"] == reused
    assert stats()["pool_refusals"].get("another stream", 0) >= 1
    torch.cuda.current_stream().wait_stream(side)
    assert_same(result, x + y, "other stream")


def test_no_reuse_across_inference_mode(pooled):
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    K.add(x, y)  # pooled outside inference mode, dropped
    with torch.inference_mode():
        result = K.add(x, y)
        assert result.is_inference()
    assert stats()["pool_refusals"].get("inference mode changed", 0) >= 1


def test_uninstall_drops_the_pool(pooled):
    x, y = randn(N), randn(N)
    warm(K.add, x, y)
    sl_helion.uninstall()
    assert not sl_helion.pool_on()
    assert stats()["entries"] == 0
