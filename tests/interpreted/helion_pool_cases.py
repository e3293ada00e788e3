"""The output pool end to end on CPU: Helion's real wrappers run natively (TRITON_INTERPRET=1, run by
tests/test_helion_dispatch.py), with the pool configured for CPU tensors and a stand-in for torch's
current stream and graph-capture state (`helion_pool_configure(..., True, current_stream)`), so that
every rule the GPU relies on is exercised here: a caller who keeps a result, a view, a slice, a
DLPack capsule, a detach() or its storage never sees it overwritten; dropping every reference makes
the next call reuse it; no reuse while "capturing", on another "stream", or across inference mode.
tests/gpu/test_helion_pool.py checks the same with real CUDA streams and graphs.
"""

import gc
import os
import weakref

import pytest

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 before Triton is imported (tests/test_helion_dispatch.py runs this)",
                allow_module_level=True)

torch = pytest.importorskip("torch")
helion = pytest.importorskip("helion")

import swiftlaunch.helion as sl_helion  # noqa: E402
from swiftlaunch import _helion_pool  # noqa: E402

STATE = {"capturing": False, "stream": 7}


def _launcher_on_copies():
    """Helion's launcher, run on copies of the tensor arguments, copied back after the launch.
    Triton's interpreter asks every tensor argument for its `untyped_storage()`, which in torch 2.10+
    keeps the storage's count at 2 for good (a preserved storage object): the pool then rightly never
    reuses it. A CUDA launch reads no storage object; this stands in for one."""
    from helion.runtime import default_launcher

    def launcher(triton_kernel, grid, *args, **kwargs):
        copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        result = default_launcher(triton_kernel, grid, *copies, **kwargs)
        for original, copy in zip(args, copies):
            if isinstance(original, torch.Tensor):
                original.copy_(copy)
        return result

    return launcher


@pytest.fixture
def pooled(native, monkeypatch):
    monkeypatch.setattr(sl_helion, "_helion_default_launcher", _launcher_on_copies)
    assert sl_helion.install()
    assert _helion_pool.validate_layout(native) == ""
    STATE.update(capturing=False, stream=7)
    native.helion_pool_configure(weakref.getweakrefcount, lambda: STATE["capturing"], torch._C.is_inference_mode_enabled,
                                 torch._C._len_torch_dispatch_stack, True, lambda device: STATE["stream"])
    native.helion_forget(None)  # plans are made with a pool from now on
    yield native
    native.helion_pool_configure(None)
    sl_helion.uninstall()


def stats():
    return sl_helion.dispatch_stats()


def warm(kernel, *args):
    for _ in range(3):  # learned (Helion), recorded, then natively into the pool
        kernel(*args)


def inputs():
    return torch.randn(8), torch.randn(8)


def test_dropping_every_reference_reuses(K, pooled):
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    result = K.scaled_add(x, y, 0.5, 2)
    address = result.data_ptr()
    del result
    reused = stats()["pool_reused"]
    x2, y2 = inputs()
    again = K.scaled_add(x2, y2, 0.5, 2)
    assert again.data_ptr() == address and stats()["pool_reused"] == reused + 1
    torch.testing.assert_close(again, (x2 + y2 * 0.5) * 2)


def test_kept_result_is_never_overwritten(K, pooled):
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    kept = K.scaled_add(x, y, 0.5, 2)
    expected = kept.clone()
    for _ in range(3):
        other = K.scaled_add(*inputs(), 0.5, 2)
        assert other.data_ptr() != kept.data_ptr()
    torch.testing.assert_close(kept, expected)


HOLDERS = {
    "view": (lambda t: t.view(2, 4), lambda h: h.reshape(-1)),
    "slice": (lambda t: t[1:], lambda h: h),
    "detach": (lambda t: t.detach(), lambda h: h),
    "dlpack": (lambda t: torch.utils.dlpack.to_dlpack(t), lambda h: torch.from_dlpack(h)),
    "storage": (lambda t: t.untyped_storage(), lambda h: torch.empty(0).set_(h)[:8]),
    "numpy": (lambda t: t.numpy(), lambda h: torch.from_numpy(h)),
}


@pytest.mark.parametrize("holder", list(HOLDERS))
def test_a_holder_keeps_the_memory(K, pooled, holder):
    hold, read = HOLDERS[holder]
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    result = K.scaled_add(x, y, 0.5, 2)
    expected = result.clone()
    held = hold(result)
    del result
    gc.collect()
    for _ in range(3):
        K.scaled_add(*inputs(), 0.5, 2)
    seen = read(held)
    torch.testing.assert_close(seen, expected[1:] if holder == "slice" else expected)


def test_weakref_blocks_reuse(K, pooled):
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    result = K.scaled_add(x, y, 0.5, 2)
    address = result.data_ptr()
    ref = weakref.ref(result)
    del result
    assert ref() is not None
    again = K.scaled_add(*inputs(), 0.5, 2)
    assert again.data_ptr() != address
    assert stats()["pool_refusals"].get("weak references", 0) >= 1


def test_no_reuse_while_capturing(K, pooled):
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    K.scaled_add(x, y, 0.5, 2)  # pooled, dropped
    reused, refusals = stats()["pool_reused"], stats()["pool_refusals"].get("CUDA graph capturing", 0)
    STATE["capturing"] = True
    captured = [K.scaled_add(x, y, 0.5, 2) for _ in range(2)]
    STATE["capturing"] = False
    assert stats()["pool_reused"] == reused
    assert stats()["pool_refusals"]["CUDA graph capturing"] == refusals + 2
    # Nothing made during the capture entered the pool: the output pooled before it is still the one
    # reused (while the captured outputs are alive, so no address can repeat).
    before = K.scaled_add(x, y, 0.5, 2)
    assert stats()["pool_reused"] == reused + 1
    assert before.data_ptr() not in {t.data_ptr() for t in captured}


def test_no_reuse_on_another_stream(K, pooled):
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    K.scaled_add(x, y, 0.5, 2)  # pooled on stream 7, dropped
    reused = stats()["pool_reused"]
    STATE["stream"] = 8
    result = K.scaled_add(x, y, 0.5, 2)
    assert stats()["pool_reused"] == reused
    assert stats()["pool_refusals"].get("another stream", 0) >= 1
    torch.testing.assert_close(result, (x + y * 0.5) * 2)
    del result
    # Now pooled on stream 8: reused there.
    K.scaled_add(x, y, 0.5, 2)
    assert stats()["pool_reused"] == reused + 1


def test_no_reuse_across_inference_mode(K, pooled):
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    K.scaled_add(x, y, 0.5, 2)  # pooled outside inference mode, dropped
    with torch.inference_mode():
        result = K.scaled_add(x, y, 0.5, 2)
        assert result.is_inference()
    assert stats()["pool_refusals"].get("inference mode changed", 0) >= 1


def test_state_changes_block_reuse(K, pooled):
    """A result the caller changed (requires_grad, an attribute, resized) and then dropped is not reused."""
    x, y = inputs()
    warm(K.scaled_add, x, y, 0.5, 2)
    for mutate, reason in [(lambda t: t.requires_grad_(), "autograd state"),
                           (lambda t: setattr(t, "tag", 1), "instance attributes"),
                           (lambda t: t.resize_(4), "tensor changed (resized, re-pointed)")]:
        result = K.scaled_add(x, y, 0.5, 2)
        mutate(result)
        del result
        before = stats()["pool_refusals"].get(reason, 0)
        fresh = K.scaled_add(x, y, 0.5, 2)
        assert stats()["pool_refusals"].get(reason, 0) == before + 1, stats()["pool_refusals"]
        assert fresh.shape == (8,) and not fresh.requires_grad and not hasattr(fresh, "tag")
        torch.testing.assert_close(fresh, (x + y * 0.5) * 2)
        del fresh


def test_two_outputs_each_pooled(K, pooled):
    x, y = inputs()
    warm(K.sum_and_difference, x, y)
    total, difference = K.sum_and_difference(x, y)
    kept_total = total
    difference_address = difference.data_ptr()
    expected_total = total.clone()
    del total, difference
    x2, y2 = inputs()
    total2, difference2 = K.sum_and_difference(x2, y2)
    assert difference2.data_ptr() == difference_address  # dropped: reused
    assert total2.data_ptr() != kept_total.data_ptr()    # kept: not
    torch.testing.assert_close(kept_total, expected_total)
    torch.testing.assert_close(total2, x2 + y2)
    torch.testing.assert_close(difference2, x2 - y2)


def test_results_stay_right(K, pooled):
    for _ in range(6):
        x, y = inputs()
        torch.testing.assert_close(K.scaled_add(x, y, 0.5, 2), (x + y * 0.5) * 2)
        a = torch.randn(8, 4)
        total, largest = K.sum_and_max(a)
        torch.testing.assert_close(total, a.sum(-1))
        torch.testing.assert_close(largest, a.amax(-1))
    assert stats()["pool_reused"] > 0
