"""Native allocation of planned Helion outputs (`TensorAllocation.swift`, `swiftlaunch._torch_alloc`),
without a GPU: the entry points, the validation against torch's own factory on CPU probes, and the
refusals. The CUDA checks (the caching allocator's count, deterministic fill, every device) and the
native run with CUDA outputs are in tests/gpu/test_helion_pool.py; the native run on CPU tensors in
tests/interpreted/helion_native_run_cases.py."""

import pytest

torch = pytest.importorskip("torch")

from swiftlaunch import _torch_alloc  # noqa: E402


@pytest.fixture
def allocator(native):
    status = _torch_alloc.configure(native, "cpu")
    if status.startswith("off (needs the native tensor reader"):
        pytest.skip(status)
    assert status.startswith("on for cpu"), status
    yield native
    native.torch_allocator_configure(None)
    _torch_alloc.status = "off (not configured)"


@pytest.mark.parametrize("sizes, strides", _torch_alloc.PROBE_LAYOUTS + [((3, 5), (1, 3)), ((1,), (1,))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int16, torch.float8_e4m3fn, torch.complex128])
def test_made_like_torch(allocator, sizes, strides, dtype):
    expected = torch.empty_strided(sizes, strides, dtype=dtype)
    made = allocator.torch_allocate(_torch_alloc.layout_of(allocator, expected), expected.element_size())
    assert _torch_alloc._describe(made) == _torch_alloc._describe(expected)
    assert _torch_alloc._storage(made) == _torch_alloc._storage(expected)


def test_layout_of(allocator):
    x = torch.empty(3, 4, dtype=torch.float16).t()
    sizes, strides, dtype_code, device_type, device_index = _torch_alloc.layout_of(allocator, x)
    assert (sizes, strides) == ((4, 3), (1, 4))
    assert dtype_code == allocator.read_tensor(torch.empty(1, dtype=torch.float16))[2]
    assert (device_type, device_index) == allocator.read_tensor(x)[:2]


@pytest.mark.parametrize("call, error", [
    (lambda n: n.torch_allocate(), TypeError),
    (lambda n: n.torch_allocate(((4,), (1,), 6), 4), TypeError),
    (lambda n: n.torch_allocate(((4,), (1, 1), 6, 0, -1), 4), TypeError),
    (lambda n: n.torch_allocate(((-4,), (1,), 6, 0, -1), 4), TypeError),
    (lambda n: n.torch_allocate(((4,), (1,), 2**40, 0, -1), 4), TypeError),
    (lambda n: n.torch_allocate(((4,), (1,), 6, 0, -1), 0), ValueError),
    (lambda n: n.torch_allocate(((1 << 30,), (1,), 6, 0, -1), 4), ValueError),
    (lambda n: n.torch_allocate(((2**62, 2**62), (2**62, 1), 6, 0, -1), 4), ValueError),
    (lambda n: n.torch_allocator_configure(), TypeError),
    (lambda n: n.torch_allocator_configure((0,)), TypeError),
    (lambda n: n.torch_allocator_configure((0,), 5), TypeError),
    (lambda n: n.torch_allocator_configure(("cpu",), len), TypeError),
    (lambda n: n.torch_allocator_probe("/nonexistent/libtorch_cpu.so", "/nonexistent/libtorch_python.so"), RuntimeError),
    (lambda n: n.torch_allocator_probe(1, 2), TypeError),
])
def test_bad_calls_raise(native, call, error):
    with pytest.raises(error):
        call(native)


def test_torch_error_raises(allocator):
    """An error inside torch (here an unknown device type) is a Python exception, never a crash."""
    layout = _torch_alloc.layout_of(allocator, torch.empty(4))
    with pytest.raises(RuntimeError, match="aoti_torch_empty_strided"):
        allocator.torch_allocate(layout[:3] + (250, 0), 4)


class _Disagreeing:
    """The native module, except that its allocations require grad: validation must refuse it."""

    def __init__(self, native):
        self._native = native

    def __getattr__(self, name):
        return getattr(self._native, name)

    def torch_allocate(self, layout, item_size):
        return self._native.torch_allocate(layout, item_size).requires_grad_(layout[2] in (6, 7))


def test_validation_refuses_a_disagreement(native):
    status = _torch_alloc.configure(_Disagreeing(native), "cpu")
    _torch_alloc.status = "off (not configured)"
    if status.startswith("off (needs the native tensor reader"):
        pytest.skip(status)
    assert status.startswith("off (the native allocation disagreed with torch:"), status


def test_cuda_without_a_device_is_off(native):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert _torch_alloc.configure(native, "cuda") in ("off (no CUDA device)", "off (needs the native tensor reader)")
    _torch_alloc.status = "off (not configured)"
