"""The second stage of the Helion dispatch (a whole wrapper call run natively from a recorded plan)
in front of Helion's real call path, on CPU tensors with Triton's interpreter (run by
tests/test_helion_dispatch.py in a process started with TRITON_INTERPRET=1). The native launcher
steps aside for the interpreter's kernels to Helion's own launcher, so every launch here really runs,
and results are compared with eager torch.
"""

import importlib
import os

import pytest

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 before Triton is imported (tests/test_helion_dispatch.py runs this)",
                allow_module_level=True)

torch = pytest.importorskip("torch")
helion = pytest.importorskip("helion")

import swiftlaunch  # noqa: E402
import swiftlaunch.helion as sl_helion  # noqa: E402
from swiftlaunch import _helion_plan  # noqa: E402


def stats():
    return sl_helion.dispatch_stats()


def wrapper(kernel, args):
    bound = kernel.bind(args)
    return bound.compile_config(bound.config_spec.default_config())


def test_real_wrappers_are_analysed(K):
    """Eligibility is read from the code Helion generates: allocations, metadata, one launch."""
    x, y = torch.randn(8), torch.randn(8)
    eligible = {
        "scaled_add": (x, y, 0.5, 2), "cast_to": (x, torch.float16), "add_into": (x, y),
        "sum_and_difference": (x, y), "sum_and_max": (torch.randn(8, 4),), "rms_norm": (torch.randn(8, 4),),
        "dynamic_add": (x, y), "transpose": (torch.randn(4, 8),), "broadcast_add": (torch.randn(4, 4), x[:4]),
    }
    for name, args in eligible.items():
        analysis = _helion_plan.analyse(wrapper(getattr(K, name), args))
        assert not isinstance(analysis, str), (name, analysis)


def test_plan_of_scaled_add(K):
    """The recorded plan: the allocation takes the current x, the launch passes the current
    arguments (the runtime scalar alpha too) and the output; kernel and grid are recorded."""
    x, y = torch.randn(8), torch.randn(8)
    run = wrapper(K.scaled_add, (x, y, 0.5, 2))
    calls = []

    def launcher(*args, **kwargs):
        calls.append((args, kwargs))
        return helion.runtime.default_launcher(*args, **kwargs)

    result, plan = _helion_plan.record(run, launcher, (x, y, 0.5, 2))
    torch.testing.assert_close(result, (x + y * 0.5) * 2)
    assert len(calls) == 1
    allocations, (launch, names), returned = plan
    assert len(allocations) == 1
    function, specs, kw, poolable, names_from = allocations[0]
    assert function is torch.empty_like and specs == ((_helion_plan.INPUT, 0),) and kw is None and poolable
    assert names_from == 0  # empty_like(x) copies x's names: the pool asks x per call
    kinds = [kind for kind, _ in launch]
    assert kinds == [2, 2, 0, 0, 1, 0, 2, 2]
    assert launch[1] == (2, (1,)) and names == ("num_warps", "num_stages")
    assert returned == (False, ((_helion_plan.OUTPUT, 0),))


@pytest.mark.parametrize("source, reason", [
    ("out = torch.zeros_like(x)", "call of torch.zeros_like"),
    ("out = torch.empty_like(x)\n    out = torch.empty_like(x)", "assigned twice"),
    ("n = x.storage_offset()\n    out = torch.empty_like(x)", ".storage_offset() is not guarded"),
    ("out = torch.empty([alpha], device=x.device)", "alpha used inside an expression"),
])
def test_ineligible_forms(source, reason, tmp_path):
    """Forms that are not allocations, metadata, asserts, one launch and a return stay in the first stage."""
    module_path = tmp_path / "synthetic_wrapper.py"
    module_path.write_text(
        "import torch\n\n\ndef wrapper(x, alpha, *, _launcher=None):\n"
        f"    {source}\n    _launcher(None, (1,), x, out)\n    return out\n")
    spec = importlib.util.spec_from_file_location("synthetic_wrapper", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    analysis = _helion_plan.analyse(module.wrapper)
    assert isinstance(analysis, str) and reason in analysis, analysis


def test_native_run_results(K, installed):
    """Every eligible kernel: first call Helion (learned), second records, then native; results equal
    eager torch on every call, a runtime scalar is the current one, and each call gets a fresh output."""
    x, y = torch.randn(8), torch.randn(8)
    matrix = torch.randn(4, 8)
    before = stats()["native_runs"]
    outputs = []
    for alpha in (0.5, 2.0, -1.0, 3.0):
        out = K.scaled_add(x, y, alpha, 2)
        torch.testing.assert_close(out, (x + y * alpha) * 2)
        outputs.append(out)
    assert len({o.data_ptr() for o in outputs}) == len(outputs)
    for _ in range(3):
        total, difference = K.sum_and_difference(x, y)
        torch.testing.assert_close(total, x + y)
        torch.testing.assert_close(difference, x - y)
        total, largest = K.sum_and_max(matrix)
        torch.testing.assert_close(total, matrix.sum(-1))
        torch.testing.assert_close(largest, matrix.amax(-1))
        torch.testing.assert_close(K.rms_norm(matrix),
                                   matrix / torch.sqrt((matrix * matrix).mean(-1, keepdim=True) + 1e-5))
        half = K.cast_to(x, torch.float16)
        assert half.dtype == torch.float16
        torch.testing.assert_close(half, x.half())
        torch.testing.assert_close(K.transpose(matrix), matrix.T)
    assert stats()["native_runs"] - before == 2 + 5, stats()


def test_result_structure(K, installed):
    x, y = torch.randn(8), torch.randn(8)
    for _ in range(3):
        result = K.sum_and_difference(x, y)
    assert type(result) is tuple and len(result) == 2
    assert type(K.scaled_add(x, y, 1.0, 2)) is torch.Tensor


def test_nothing_is_launched_twice(K, installed):
    """An in-place kernel: every call, the recording one included, adds y exactly once."""
    x, y = torch.randn(8), torch.randn(8)
    expected = x.clone()
    for _ in range(5):
        expected += y
        assert K.add_into(x, y) is x
        torch.testing.assert_close(x, expected)
    assert stats()["native_runs"] >= 3


def test_dynamic_shapes_each_shape_its_own_plan(K, installed):
    """static_shapes=False: one bound kernel, but the guard (and so the plan) is per exact shape;
    sizes and strides passed to the kernel are the current shape's."""
    recorded = stats()["recorded"]
    shapes = [torch.randn(8), torch.randn(5), torch.randn(13)]
    for _ in range(3):
        for x in shapes:
            torch.testing.assert_close(K.dynamic_add(x, x * 2), x * 3)
    # Strided input of a known size: another entry with the strides it has.
    base = torch.randn(16)
    for _ in range(3):
        torch.testing.assert_close(K.dynamic_add(base[::2], base[1::2]), base[::2] + base[1::2])
    assert stats()["recorded"] - recorded == 4


def test_native_run_off(K, installed, monkeypatch):
    """SWIFTLAUNCH_HELION_NATIVE_RUN=0: hits stay in the first stage."""
    monkeypatch.setenv("SWIFTLAUNCH_HELION_NATIVE_RUN", "0")
    swiftlaunch._loader.native.helion_forget(None)
    assert sl_helion.install()
    before = stats()["native_runs"]
    x, y = torch.randn(8), torch.randn(8)
    for _ in range(3):
        torch.testing.assert_close(K.scaled_add(x, y, 0.5, 2), (x + y * 0.5) * 2)
    assert stats()["native_runs"] == before


def test_ineligible_reason_counted_once(K, installed):
    """A broadcast that changes a shape keeps its entry in the first stage, said once per entry."""
    m, row = torch.randn(4, 4), torch.randn(4)
    reason = "helion native run: torch.broadcast_tensors changes a shape"
    before = swiftlaunch.stats()["fallbacks"].get(reason, 0)
    for _ in range(4):
        torch.testing.assert_close(K.broadcast_add(m, row), m + row)
    assert swiftlaunch.stats()["fallbacks"].get(reason, 0) - before == 1


def test_broadcast_of_matching_shapes_is_dropped(K, installed):
    """Matching shapes run natively (the broadcast dropped); a broadcasting entry of the same kernel
    stays in the first stage; alternating between them, every result is right."""
    m, other, row = torch.randn(4, 4), torch.randn(4, 4), torch.randn(4)
    before = stats()["native_runs"]
    for _ in range(4):
        torch.testing.assert_close(K.broadcast_add(m, other), m + other)
        torch.testing.assert_close(K.broadcast_add(m, row), m + row)
        torch.testing.assert_close(K.broadcast_add(m, m), m + m)
    # Two same-shape entries (distinct and aliased arguments), each learned, recorded, then native twice.
    assert stats()["native_runs"] - before == 4, stats()


@pytest.mark.parametrize("plan", [
    ((1, 2),),
    ((), (((2, None), (2, (1,)), (0, 99)), None), (False, ())),          # an input index out of range
    ((), (((2, None), (2, (1,)), (1, 0)), None), (False, ())),           # an output that does not exist
    ((), (((2, None),), None), (False, ())),                             # no grid
    ((), (((2, None), (2, (1,))), ("a", "b", "c")), (False, ())),       # more keyword names than values
    ((), (((2, None), (2, (1,))), None), (False, ((2, 5),))),           # returns a constant
])
def test_malformed_plan_stays_first_stage(K, installed, plan):
    """A plan the native side cannot check is refused, counted, and the call's result stands."""
    native = swiftlaunch._loader.native
    native.helion_native_configure(lambda run, launcher, args: (run(*args, _launcher=launcher), plan))
    try:
        x, y = torch.randn(8), torch.randn(8)
        for _ in range(4):
            torch.testing.assert_close(K.scaled_add(x, y, 0.5, 2), (x + y * 0.5) * 2)
        assert swiftlaunch.stats()["fallbacks"].get("helion native run: plan not decodable") == 1
    finally:
        native.helion_native_configure(_helion_plan.record)


def test_recorder_returning_garbage_raises(K, installed):
    native = swiftlaunch._loader.native
    native.helion_native_configure(lambda run, launcher, args: 5)
    try:
        x, y = torch.randn(8), torch.randn(8)
        K.scaled_add(x, y, 0.5, 2)  # learned
        with pytest.raises(RuntimeError, match="recorder"):
            K.scaled_add(x, y, 0.5, 2)
    finally:
        native.helion_native_configure(_helion_plan.record)
