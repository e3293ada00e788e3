"""Eligibility of Helion's generated host wrappers for the native run, on the real code Helion 1.5.0
generates for the GPU tests' kernel zoo (tests/gpu/helion_kernels.py). No GPU needed: `bind` and
`compile_config` generate the wrapper without launching anything."""

import pytest

torch = pytest.importorskip("torch")
helion = pytest.importorskip("helion")

from swiftlaunch import _helion_plan  # noqa: E402


def r(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


CASES = {
    "add": lambda: (r(64), r(64)),
    "scaled_add": lambda: (r(64), r(64), 0.5, 3),
    "sum_and_difference": lambda: (r(64), r(64)),
    "softmax": lambda: (r(48, 200),),
    "layer_norm": lambda: (r(48, 200), r(200), r(200)),
    "rms_norm": lambda: (r(48, 200), r(200)),
    "matmul": lambda: (r(128, 96, dtype=torch.float16), r(96, 64, dtype=torch.float16)),
    "persistent_add": lambda: (r(200, 300), r(200, 300)),
    "dynamic_add": lambda: (r(3000), r(3000)),
    "row_sum_scaled": lambda: (r(48, 200), 0.25),
    "add_into": lambda: (r(64), r(64)),
    "add_out": lambda: (r(64), r(64), r(64)),
}


@pytest.fixture(scope="module")
def zoo():
    from gpu import helion_kernels

    return helion_kernels


def wrapper(kernel, args):
    bound = kernel.bind(args)
    return bound.compile_config(bound.config_spec.default_config())


@pytest.mark.parametrize("name", list(CASES))
def test_zoo_is_eligible(zoo, name):
    analysis = _helion_plan.analyse(wrapper(getattr(zoo, name), CASES[name]()))
    assert not isinstance(analysis, str), analysis


def test_broadcast_rebinding_is_eligible(zoo):
    """`x, y = torch.broadcast_tensors(x, y)` is analysed as a rebinding; whether it changes anything
    is decided per entry, from the recorded call."""
    analysis = _helion_plan.analyse(wrapper(zoo.broadcast_add, (r(64, 96), r(96))))
    assert not isinstance(analysis, str), analysis
    assert analysis.broadcast == {"x", "y"}


def _recorded(run, args):
    launches = []
    result, plan = _helion_plan.record(run, lambda *a, **k: launches.append((a, k)), args)
    assert len(launches) == 1
    return launches[0][0], result, plan


@pytest.mark.parametrize("same", [True, False])
def test_broadcast_dropped_only_when_it_returns_its_inputs(zoo, same):
    """Shapes that already match: the broadcast gives back the very inputs, so the plan passes the
    current arguments and the statement is dropped. Shapes that differ: the launch got expanded views,
    not the arguments, and the entry stays in the first stage."""
    x = r(64, 96)
    y = r(64, 96) if same else r(96)
    run = wrapper(zoo.broadcast_add, (x, y))
    launched, result, plan = _recorded(run, (x, y))
    assert launched[2] is x
    assert (launched[3] is y) == same
    if same:
        assert not isinstance(plan, str), plan
        launch_specs = plan[1][0]
        assert launch_specs[2:5] == ((_helion_plan.INPUT, 0), (_helion_plan.INPUT, 1), (_helion_plan.OUTPUT, 0))
    else:
        assert plan == "helion native run: torch.broadcast_tensors changes a shape"


def test_broadcast_used_in_metadata_only(tmp_path):
    """A rebound name read only for its metadata needs no identity: the broadcast shape is a function
    of the guarded shapes, and the plan records it as a constant."""
    body = ("    x, alpha = torch.broadcast_tensors(x, alpha)\n"
            "    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)\n"
            "    _launcher(kernel, (1,), out)\n    return out\n")
    run = _synthetic(tmp_path, body)
    launched, result, plan = _recorded(run, (r(4, 1), r(3)))
    assert not isinstance(plan, str), plan
    assert result.shape == (4, 3)


def test_analysis_is_cached_per_wrapper(zoo):
    run = wrapper(zoo.add, CASES["add"]())
    assert _helion_plan.analyse(run) is _helion_plan.analyse(run)


def test_poolable_allocations(zoo):
    """empty_like is poolable; torch.empty is only with explicit dtype= and device=."""
    matmul = _helion_plan.analyse(wrapper(zoo.matmul, CASES["matmul"]()))
    assert [(kind, poolable) for _, _, kind, poolable in matmul.allocations] == [("empty", True)]
    add = _helion_plan.analyse(wrapper(zoo.add, CASES["add"]()))
    assert [(kind, poolable) for _, _, kind, poolable in add.allocations] == [("empty_like", True)]


def _synthetic(tmp_path, body, params="x, alpha"):
    path = tmp_path / "synthetic_wrapper_plan.py"
    path.write_text(f"import torch\nimport triton\n\nkernel = object()\n\n\ndef wrapper({params}, *, _launcher=None):\n{body}")
    import importlib.util

    spec = importlib.util.spec_from_file_location("synthetic_wrapper_plan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.wrapper


@pytest.mark.parametrize("body, reason", [
    ("    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out)\n    return out.view(-1)\n", "returns something"),
    ("    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out)\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", "statements after the launch"),
    ("    out = torch.empty_like(x)\n    for i in range(2):\n        pass\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", "For statement"),
    ("    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x.data_ptr(), out)\n    return out\n",
     ".data_ptr() is not guarded"),
    ("    out = torch.empty_like(x)\n    _launcher(kernel, (alpha * 2,), x, out)\n    return out\n",
     "alpha used inside an expression"),
    ("    out = torch.empty(x.size(0), device=x.device)\n    out.zero_()\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", "Expr statement"),
    ("    out = torch.empty_like(x)\n    return out\n", "no launch"),
    ("    out = torch.empty_like(x, requires_grad=x.requires_grad)\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", ".requires_grad is not guarded"),
    ("    out = torch.empty_like(x)\n    _launcher(kernel, (x.grad.shape[0],), x, out)\n    return out\n",
     ".grad is not guarded"),
    ("    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out, torch.cuda.current_stream())\n    return out\n",
     "call of torch.cuda.current_stream"),
    ("    a, b = torch.broadcast_tensors(x, alpha)\n    out = torch.empty_like(a)\n    _launcher(kernel, (1,), a, out)\n"
     "    return out\n", "torch.broadcast_tensors other than parameters rebound"),
    ("    alpha, x = torch.broadcast_tensors(x, alpha)\n    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", "torch.broadcast_tensors other than parameters rebound"),
    ("    x = torch.broadcast_tensors(x)\n    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", "torch.broadcast_tensors other than parameters rebound"),
    ("    x, alpha = torch.broadcast_tensors(x, alpha, out=None)\n    out = torch.empty_like(x)\n"
     "    _launcher(kernel, (1,), x, out)\n    return out\n", "torch.broadcast_tensors other than parameters rebound"),
    ("    x, alpha = torch.broadcast_to(x, alpha)\n    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out)\n"
     "    return out\n", "call of torch.broadcast_to"),
])
def test_ineligible(tmp_path, body, reason):
    analysis = _helion_plan.analyse(_synthetic(tmp_path, body))
    assert isinstance(analysis, str) and reason in analysis, analysis


def test_metadata_forms_are_eligible(tmp_path):
    body = ("    m = x.size(0)\n    n = x.shape[-1] if x.ndim > 1 else 1\n    assert m > 0, f'{m}'\n"
            "    out = torch.empty([m, n], dtype=x.dtype, device=x.device)\n"
            "    _launcher(kernel, (triton.cdiv(m, 16), 1, 1), x, out, alpha, x.stride(0), x.dtype.itemsize,\n"
            "              num_warps=4)\n"
            "    return out, x\n")
    analysis = _helion_plan.analyse(_synthetic(tmp_path, body))
    assert not isinstance(analysis, str), analysis
    assert analysis.allocations[0][3] is True


def test_scalar_sized_allocation_is_not_planned(tmp_path):
    """`torch.empty(n)` with a runtime int n: the guard checks n's type only, so the output's shape is
    not fixed per entry: the recorded call says so and the entry stays in the first stage."""
    body = "    out = torch.empty(n, device=x.device, dtype=x.dtype)\n    _launcher(kernel, (1,), x, out)\n    return out\n"
    run = _synthetic(tmp_path, body, params="x, n")
    assert not isinstance(_helion_plan.analyse(run), str)
    launches = []
    result, plan = _helion_plan.record(run, lambda *a, **k: launches.append(a), (torch.randn(4), 3))
    assert len(launches) == 1 and result.shape == (3,)
    assert isinstance(plan, str) and "scalar argument" in plan, plan


def test_source_changed_after_load_is_not_analysed(tmp_path):
    """The analysed source must be the code that runs: a generated file rewritten after its module
    was loaded (another grid here) is refused."""
    import linecache
    import os

    body = "    out = torch.empty_like(x)\n    _launcher(kernel, (1,), x, out)\n    return out\n"
    run = _synthetic(tmp_path, body)
    path = tmp_path / "synthetic_wrapper_plan.py"
    path.write_text(path.read_text().replace("(1,)", "(2,)"))
    os.utime(path, (1, 1))  # a different mtime, so linecache reads the file again
    linecache.checkcache(str(path))
    analysis = _helion_plan.analyse(run)
    assert analysis == "helion native run: source does not match the function", analysis


def test_helion_example_add_runs_natively_on_one_shape():
    """Helion's own example add (the benchmark's `helion_broadcast_add`): broadcast, then an output of
    the promoted dtype. Same shapes: a plan whose launch takes the arguments themselves."""
    from swiftlaunch.bench import kernels

    kernels.load_helion()
    example = helion.kernel(kernels.helion_broadcast_add, config=helion.Config(block_sizes=[64]), static_shapes=True)
    x, y = r(256), r(256)
    run = wrapper(example, (x, y))
    launched, result, plan = _recorded(run, (x, y))
    assert not isinstance(plan, str), plan
    assert launched[2] is x and launched[3] is y and launched[4] is result
    allocation = plan[0][0]
    assert allocation[0] is torch.empty and allocation[3] is True  # dtype= and device= given: poolable
    # x.shape, recorded once, is passed as a plain tuple (torch parses it faster, to the same sizes).
    assert allocation[1][0] == (_helion_plan.CONSTANT, (256,)) and type(allocation[1][0][1]) is tuple
