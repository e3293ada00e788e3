"""The output pool's holder checks on CPU tensors (tests/gpu/test_helion_pool.py runs the pool itself).

`_native.helion_pool_check([t])` answers what the pool asks of a pooled tensor before it reuses it
(the list stands in for the pool's slot: its reference is the pool's own): nothing else may hold the
object, its TensorImpl or its StorageImpl, nothing may weakly reference it, and it must still look
like a fresh allocation. The per-call checks (stream, graph capture, dispatch modes) need CUDA.
"""

import gc
import sys
import weakref

import pytest

torch = pytest.importorskip("torch")

from swiftlaunch import _helion_pool  # noqa: E402


@pytest.fixture
def pool(native):
    problem = _helion_pool.validate_layout(native)
    assert problem == "", problem
    # The per-call functions are the CUDA ones in `configure`; these stand-ins are never called by
    # `helion_pool_check`, which looks only at the tensor.
    native.helion_pool_configure(weakref.getweakrefcount, lambda: False, torch._C.is_inference_mode_enabled,
                                 torch._C._len_torch_dispatch_stack)
    yield native
    native.helion_pool_configure(None)


def reason(native, box):
    return native.helion_pool_check(box)


def test_counts_follow_torch(native):
    """The validated counts equal torch's own for several holders."""
    assert _helion_pool.validate_layout(native) == ""
    t = torch.empty(16)
    strong, weak, storage_strong, storage_weak, address = native.helion_pool_counts(t)
    assert (strong, weak, storage_strong, storage_weak) == (1, 1, 1, 1)
    views = [t[1:], t.view(4, 4), t.reshape(16)]
    assert native.helion_pool_counts(t)[0] == t._use_count() == 4
    assert native.helion_pool_counts(t)[2] == torch._C._storage_Use_Count(address) == 4
    del views
    assert native.helion_pool_counts(t)[:4] == (1, 1, 1, 1)


def test_fresh_tensor_is_reusable(pool):
    box = [torch.empty(8)]
    assert reason(pool, box) == ""
    box = [torch.empty(4, 4).t().contiguous()]
    assert reason(pool, box) == ""


@pytest.mark.parametrize("hold", [
    pytest.param(lambda t: t, id="the result itself"),
    pytest.param(lambda t: t[1:], id="slice"),
    pytest.param(lambda t: t.view(2, 4), id="view"),
    pytest.param(lambda t: t.reshape(8), id="reshape (a view)"),
    pytest.param(lambda t: t.detach(), id="detach"),
    pytest.param(lambda t: torch.utils.dlpack.to_dlpack(t), id="DLPack capsule"),
    pytest.param(lambda t: torch.from_dlpack(t), id="from_dlpack"),
    pytest.param(lambda t: t.untyped_storage(), id="untyped storage"),
    pytest.param(lambda t: t.numpy(), id="numpy"),
    pytest.param(lambda t: weakref.ref(t), id="weakref"),
    pytest.param(lambda t: [t], id="list"),
])
def test_every_holder_blocks_reuse(pool, hold):
    box = [torch.empty(8)]
    held = hold(box[0])
    assert reason(pool, box) != ""
    del held


@pytest.mark.parametrize("hold", [
    pytest.param(lambda t: t[1:], id="slice"),
    pytest.param(lambda t: t.view(2, 4), id="view"),
    pytest.param(lambda t: t.detach(), id="detach"),
    pytest.param(lambda t: torch.utils.dlpack.to_dlpack(t), id="DLPack capsule"),
    pytest.param(lambda t: weakref.ref(t), id="weakref"),
])
def test_dropping_the_holder_allows_reuse(pool, hold):
    box = [torch.empty(8)]
    held = hold(box[0])
    assert reason(pool, box) != ""
    del held
    gc.collect()
    assert reason(pool, box) == ""


def mutate_requires_grad(t):
    t.requires_grad_()


def mutate_grad(t):
    t.grad = torch.zeros_like(t)


def mutate_attribute(t):
    t.tag = 1


def mutate_names(t):
    t.rename_("n")


@pytest.mark.parametrize("mutate", [mutate_requires_grad, mutate_grad, mutate_attribute, mutate_names])
def test_state_a_fresh_tensor_lacks_blocks_reuse(pool, mutate):
    box = [torch.empty(8)]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # named tensors are experimental
        mutate(box[0])
    assert reason(pool, box) != ""


def test_saved_for_backward_blocks_reuse(pool):
    box = [torch.empty(8)]
    w = torch.ones(8, requires_grad=True)
    product = w * box[0]  # saves box[0] for the gradient of w
    assert reason(pool, box) != ""
    del product
    assert reason(pool, box) == ""


def test_pool_holder_is_the_only_reference(pool):
    t = torch.empty(8)
    box = [t]
    assert sys.getrefcount(t) > 2
    assert reason(pool, box) == "result still referenced"


def test_entry_points_refuse_bad_arguments(native):
    with pytest.raises(TypeError):
        native.helion_pool_probe(object())
    with pytest.raises(ValueError):
        native.helion_pool_layout(1 << 40, True)
    with pytest.raises(TypeError):
        native.helion_pool_layout("8", True)
    with pytest.raises(TypeError):
        native.helion_pool_counts(object())
    with pytest.raises(TypeError):
        native.helion_pool_check(torch.empty(2))
    with pytest.raises(TypeError):
        native.helion_pool_check([1, 2])
    with pytest.raises(TypeError):
        native.helion_pool_configure(1, 2, 3)
    with pytest.raises(TypeError):
        native.helion_native_configure(5)
