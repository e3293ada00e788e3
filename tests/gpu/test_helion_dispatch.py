"""`swiftlaunch.helion.install()` on a GPU: every Helion kernel call through the native dispatch must
give what Helion gives on its own, bit for bit, and keep Helion's launcher contract and
`torch.compile`.

"Helion on its own" is Helion's original `Kernel.__call__` (the shim's `__wrapped__`), called on the
same inputs: the same bound kernel and wrapper, with Helion's default launcher. The kernels (in
helion_kernels.py) are made once and reused: Helion compiles per bound kernel.
"""

import importlib

import pytest
import torch

helion = pytest.importorskip("helion")
hl = pytest.importorskip("helion.language")

import swiftlaunch  # noqa: E402
import swiftlaunch.helion as sl_helion  # noqa: E402

from . import helion_kernels as K  # noqa: E402
from .helpers import assert_same  # noqa: E402

Kernel = importlib.import_module("helion.runtime.kernel").Kernel


@pytest.fixture(scope="module", autouse=True)
def installed():
    assert sl_helion.install(), sl_helion.refusal()
    yield
    sl_helion.uninstall()


def helion_call(kernel, *args):
    """The call as Helion makes it without swiftlaunch."""
    return Kernel.__dict__["__call__"].__wrapped__(kernel, *args)


def dispatched():
    return sl_helion.dispatch_stats()["dispatched"]


def same(actual, expected, what):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), what
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{what}[{index}]")
    else:
        assert_same(actual, expected, what)


def check(kernel, *args, calls=3, native=True):
    """Helion's own result, then `calls` installed calls on the same inputs: all identical; the first
    installed call may go to Helion (and is learned), every later one is native when `native`."""
    expected = helion_call(kernel, *args)
    before, hits = dispatched(), swiftlaunch.stats()["hits"]
    for index in range(calls):
        same(kernel(*args), expected, f"{kernel.name} call {index}")
    if native:
        assert dispatched() - before >= calls - 1, (sl_helion.dispatch_stats(), swiftlaunch.stats())
        assert swiftlaunch.stats()["hits"] > hits, swiftlaunch.stats()
    return expected


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape, device="cuda", dtype=dtype)


# --- the zoo ---------------------------------------------------------------------------------------


def test_elementwise():
    check(K.add, randn(5000), randn(5000))
    check(K.scaled_add, randn(5000), randn(5000), 0.5, 3)


def test_broadcast():
    check(K.broadcast_add, randn(64, 96), randn(96))
    check(K.broadcast_add, randn(64, 96), randn(64, 96))


def test_two_outputs():
    check(K.sum_and_difference, randn(3000), randn(3000))


def test_in_place():
    x, y = randn(3000), randn(3000)
    reference = x.clone()
    expected = helion_call(K.add_into, reference, y)
    assert expected is reference
    twin = x.clone()
    before = dispatched()
    result = K.add_into(twin, y)  # learned
    assert result is twin
    assert_same(twin, expected, "in place, first call")
    for _ in range(2):
        expected = helion_call(K.add_into, reference, y)
        result = K.add_into(twin, y)
        assert result is twin
        assert_same(twin, expected, "in place")
    assert dispatched() - before >= 2


def test_reductions():
    x = randn(48, 200)
    check(K.softmax, x)
    check(K.layer_norm, x, randn(200), randn(200))
    check(K.rms_norm, x, randn(200))
    check(K.rms_norm, x, randn(200), 1e-3)
    check(K.row_sum_scaled, x, 0.25)


def test_matmul():
    check(K.matmul, randn(128, 96, dtype=torch.float16), randn(96, 64, dtype=torch.float16))


def test_persistent():
    check(K.persistent_add, randn(200, 300), randn(200, 300))


def test_dynamic_shapes():
    # One bound kernel for every shape; Helion's guard (and each native entry) is per exact shape.
    for n in (1000, 3000, 1000, 4097):
        check(K.dynamic_add, randn(n), randn(n))


def test_hl_specialize():
    # A specialized size is implied by the exact-shape guard: native.
    check(K.specialized_rows, randn(40, 64))
    # A specialized scalar is an extra guard the native side does not mirror: Helion's path.
    swiftlaunch.stats(reset=True)
    for factor in (2, 2, 3):
        x = randn(1000)
        assert_same(K.specialized_scale(x, factor), helion_call(K.specialized_scale, x, factor), "specialized scalar")
    reasons = swiftlaunch.stats()["fallbacks"]
    assert reasons.get("helion: extra guards (hl.specialize, tensor descriptors, content classifiers)") == 3, reasons


# --- dispatch cases --------------------------------------------------------------------------------


def test_shape_switching_stays_native():
    small, large = (randn(4096), randn(4096)), (randn(8192), randn(8192))
    expected_small, expected_large = helion_call(K.add, *small), helion_call(K.add, *large)
    K.add(*small)
    K.add(*large)
    before = dispatched()
    for _ in range(10):
        assert_same(K.add(*small), expected_small, "small")
        assert_same(K.add(*large), expected_large, "large")
    assert dispatched() - before == 20


def test_aliasing_parameter_constexpr_dtype():
    x, y = randn(2048), randn(2048)
    check(K.add, x, y)
    check(K.add, x, x)  # the same object twice: another guard
    with torch.no_grad():
        check(K.add, torch.nn.Parameter(x.clone()), y)
    check(K.scaled_add, x, y, 1.0, 2)
    check(K.scaled_add, x, y, 2.0, 2)  # a runtime scalar: same entry
    check(K.scaled_add, x, y, 1.0, 5)  # a new constexpr value: a new wrapper
    check(K.scaled_add, x, y, 1.0, hl.constexpr(4))
    check(K.add, x.half(), y.half())
    check(K.add, x.double(), y.double())


def test_reset():
    x, y = randn(1024), randn(1024)
    check(K.add, x, y)
    K.add.reset()
    before = dispatched()
    expected = K.add(x, y)  # recompiles through Helion
    assert dispatched() == before
    assert_same(expected, x + y, "after reset")
    check(K.add, x, y)


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_initialized_process_group(backend, tmp_path):
    import torch.distributed as dist

    if backend == "nccl" and not dist.is_nccl_available():
        pytest.skip("no NCCL")
    x, y = randn(1024), randn(1024)
    check(K.add, x, y)
    swiftlaunch.stats(reset=True)
    dist.init_process_group(backend, init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        for _ in range(3):
            assert_same(K.add(x, y), helion_call(K.add, x, y), "process group initialized")
        assert swiftlaunch.stats()["fallbacks"].get("helion: process group initialized") == 3
    finally:
        dist.destroy_process_group()
    check(K.add, x, y)


# --- Helion's launcher contract --------------------------------------------------------------------


def test_unaligned_input_after_aligned():
    n = 5000
    xb, yb = randn(n + 1), randn(n + 1)
    x, y, xm, ym = xb[:n], yb[:n], xb[1:], yb[1:]
    assert x.data_ptr() % 16 == 0 and xm.data_ptr() % 16 == 4
    check(K.add, x, y)
    # Same shape, strides and dtype: the same native entry, and Triton's other specialization.
    check(K.add, xm, ym)
    check(K.add, x, y)


def test_unaligned_user_output():
    n = 5000
    x, y = randn(n), randn(n)
    out_base = torch.zeros(n + 1, device="cuda")
    out = out_base[1:]
    assert out.data_ptr() % 16 == 4
    for _ in range(3):
        out.zero_()
        assert K.add_out(x, y, out) is out
        assert_same(out, x + y, "unaligned output")
    reference = torch.empty(n, device="cuda")
    helion_call(K.add_out, x, y, reference)
    assert_same(out, reference, "unaligned output vs Helion")


def test_changed_captured_global_raises():
    x, y = randn(1000), randn(1000)
    check(K.add, x, y)
    run = K.add.bind((x, y))._run
    namespace = run.__globals__
    name = next(key for key in namespace if key.startswith("_BLOCK_SIZE"))
    saved = namespace[name]
    namespace[name] = type(saved)(saved.value * 2)
    try:
        with pytest.raises(RuntimeError, match="has changed since we compiled"):
            helion_call(K.add, x, y)
        with pytest.raises(RuntimeError, match="has changed since we compiled"):
            K.add(x, y)
    finally:
        namespace[name] = saved
    check(K.add, x, y)


# --- torch.compile and autotuning ------------------------------------------------------------------


def test_torch_compile_fullgraph():
    def f(a, b):
        return K.add(a, b) * 2

    x, y = randn(4096), randn(4096)
    K.add(x, y)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(f)(x, y)
    assert explained.graph_break_count == 0, explained.break_reasons
    compiled = torch.compile(f, fullgraph=True)
    assert_same(compiled(x, y), (x + y) * 2, "compiled")
    # The eager path still dispatches natively afterwards.
    check(K.add, x, y)


def test_autotuning_with_install():
    x, y = randn(6000), randn(6000)
    first = K.autotuned_add(x, y)  # autotunes through Helion's own path
    assert_same(first, x + y, "autotuned")
    check(K.autotuned_add, x, y)
