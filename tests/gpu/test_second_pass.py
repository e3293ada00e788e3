"""GPU checks for the launcher's second pass: the native tensor reader equals torch's accessors on CUDA
tensors of every dtype and view kind, tensor addresses are read again after Python code ran during
the call (as Triton reads them at launch), and the Helion launcher entry binds like `fast`."""

import sys
from pathlib import Path

import pytest
import torch
import triton

import swiftlaunch
from swiftlaunch import _loader

from . import kernels as zoo
from .helpers import assert_same, assert_same_error, counters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tensor_views  # noqa: E402


@pytest.fixture(scope="module")
def reader():
    assert swiftlaunch.native_available(), swiftlaunch.native_error()
    status = swiftlaunch.stats()["tensor_reader"]
    if not status.startswith("native"):
        pytest.skip(f"the native reader is off: {status}")
    return _loader.native


def test_reader_was_validated_on_cuda_probes(reader):
    from swiftlaunch import _torch_reader

    probes = len(_torch_reader.probe_tensors("cpu")) + len(_torch_reader.probe_tensors("cuda"))
    assert f"checked on {probes} probes" in swiftlaunch.stats()["tensor_reader"]


def test_reader_matches_torch_on_every_cuda_view_kind(reader):
    for name, tensor in tensor_views.view_kinds("cuda"):
        read = reader.read_tensor(tensor)
        assert tensor_views.native_fields(read) == tensor_views.torch_fields(tensor), name
        assert read[0] == reader.read_tensor(torch.empty(0, device="cuda"))[0], f"{name}: device type"


def test_reader_matches_torch_on_every_cuda_dtype(reader):
    probes = tensor_views.dtype_probes("cuda")
    assert len(probes) >= 20
    for name, tensor in probes:
        assert tensor_views.native_fields(reader.read_tensor(tensor)) == tensor_views.torch_fields(tensor), name


def test_reader_sees_the_current_device_index(reader):
    for index in range(torch.cuda.device_count()):
        tensor = torch.empty(4, device=f"cuda:{index}")
        assert reader.read_tensor(tensor)[1] == index


def _rebinding_grid(x, replacement):
    def grid(meta):
        x.data = replacement  # the storage behind `x` changes after the arguments were read
        return (triton.cdiv(meta["n"], meta["BLOCK"]),)

    return grid


@pytest.mark.parametrize("runner", ["fast", "jit"])
@pytest.mark.parametrize("offset", [0, 4], ids=["same base", "16 bytes in"])
def test_addresses_are_read_after_a_callable_grid(runner, offset):
    # Alignment is kept: Triton would launch the kernel specialized for the first address with the
    # second one, and an aligned kernel on an unaligned address can fault the context.
    n = 3000
    y = torch.randn(n, device="cuda")

    def launch(kernel_like, rebind=True):
        x = torch.randn(n, device="cuda")
        replacement = torch.randn(n + offset, device="cuda")[offset:]
        out = torch.empty(n, device="cuda")
        grid = _rebinding_grid(x, replacement) if rebind else (triton.cdiv(n, 1024),)
        kernel_like[grid](out, x, y, n, BLOCK=1024)
        return out, replacement if rebind else x

    expected, replacement = launch(zoo.add_kernel)
    assert_same(expected, replacement + y, "Triton uses the address read at launch")
    kernel_like = swiftlaunch.fast(zoo.add_kernel) if runner == "fast" else swiftlaunch.jit(zoo.add_kernel.fn)
    launch(kernel_like, rebind=False)  # a miss: Triton runs it, the core caches the kernel
    before = counters()
    got, replacement = launch(kernel_like)
    assert counters()[0] == before[0] + 1, swiftlaunch.stats()
    assert_same(got, replacement + y, f"{runner} after the grid rebound x")


@pytest.mark.parametrize("runner", ["fast", "jit"])
def test_grid_that_moves_a_tensor_to_the_host_raises_tritons_error(runner):
    n = 1024
    y = torch.randn(n, device="cuda")

    def launch(kernel_like, move):
        x = torch.randn(n, device="cuda")
        out = torch.empty(n, device="cuda")
        grid = _rebinding_grid(x, torch.randn(n)) if move else (1,)
        try:
            kernel_like[grid](out, x, y, n, BLOCK=1024)
        except Exception as exc:  # noqa: BLE001 - compared with Triton's
            return exc
        return None

    expected = launch(zoo.add_kernel, True)
    assert isinstance(expected, ValueError), expected
    kernel_like = swiftlaunch.fast(zoo.add_kernel) if runner == "fast" else swiftlaunch.jit(zoo.add_kernel.fn)
    assert launch(kernel_like, False) is None  # cache the kernel first
    assert_same_error(launch(kernel_like, True), expected, runner)


def test_helion_launcher_entry_matches_fast():
    launcher = swiftlaunch.Launcher()
    n = 4096
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    grid = (triton.cdiv(n, 1024),)
    outs = []
    for _ in range(3):
        out = torch.empty(n, device="cuda")
        launcher(zoo.add_kernel, grid, out, x, y, n, BLOCK=1024, num_warps=4, num_stages=1)
        outs.append(out)
    before = counters()
    out = torch.empty(n, device="cuda")
    launcher(zoo.add_kernel, grid, out, x, y, n, BLOCK=1024, num_warps=4, num_stages=1)
    assert counters()[0] == before[0] + 1, swiftlaunch.stats()
    for got in outs + [out]:
        assert_same(got, x + y, "Launcher")
    # Helion's extras still go to Helion's own launcher, every time, with the call cached per name tuple.
    fallbacks = swiftlaunch.stats()["fallbacks"].get("helion launcher extras", 0)
    for _ in range(2):
        try:  # whatever Helion's launcher makes of the extra, it is Helion's call
            launcher(zoo.add_kernel, grid, out, x, y, n, BLOCK=1024, num_warps=4, num_stages=1, _remote_copy=1)
        except Exception:  # noqa: BLE001
            pass
    assert swiftlaunch.stats()["fallbacks"]["helion launcher extras"] == fallbacks + 2


def test_captured_constexpr_globals_are_compared_natively():
    """Helion's block sizes are `tl.constexpr` globals that Triton compares on every launch; on the
    tested stacks the core compares them without running constexpr's Python `__ne__`."""
    from swiftlaunch import _runtime

    assert _runtime.ensure_configured()
    assert swiftlaunch.stats()["captured_globals"].startswith("native for constexprs"), swiftlaunch.stats()
