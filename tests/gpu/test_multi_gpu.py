"""Two or more GPUs: each launch goes to the device of the current CUDA context, with memory of that
device, and is cached per device; memory of another device goes to Triton. Skipped with fewer than
two CUDA devices (run with the device tool's 2-GPU kind)."""

import threading

import pytest
import torch
import triton

import swiftlaunch

from . import kernels as zoo
from .helpers import SWIFT_RUNNERS, Out, assert_same, assert_same_error, counters, launcher, run

pytestmark = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")

N, BLOCK = 1000, 256
GRID = (triton.cdiv(N, BLOCK),)


def add_args(device):
    g = torch.Generator(device=device).manual_seed(device)
    x = torch.randn(N, generator=g, device=device)
    y = torch.randn(N, generator=g, device=device)
    return [Out(N, torch.float32), x, y, N], {"BLOCK": BLOCK}  # zoo.add_kernel takes the output first


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_each_device_launches_its_own_memory_and_hits_its_own_cache(runner):
    fn = launcher(zoo.add_kernel, runner)
    for round_ in range(2):  # the second round must be all hits
        for device in (0, 1, 0, 1):
            with torch.cuda.device(device):
                args, kwargs = add_args(device)
                (expected,), _, _ = run(zoo.add_kernel, GRID, args, kwargs)
                before = counters()
                (out,), exc, _ = run(fn, GRID, args, kwargs)
                after = counters()
                assert exc is None, exc
                assert out.device.index == device
                assert_same(out, expected, f"{runner} on device {device}")
                if round_ == 1:
                    assert after[0] - before[0] == 1, f"device {device}: not a hit: {swiftlaunch.stats()}"


@pytest.mark.parametrize("runner", SWIFT_RUNNERS)
def test_memory_of_another_device_goes_to_triton(runner):
    # Device-1 tensors while device 0 is current. Triton would launch them on device 0, which faults
    # without peer access; an empty grid keeps the argument checks and launches nothing, so the test
    # cannot break the context the other tests share.
    fn = launcher(zoo.add_kernel, runner)
    with torch.cuda.device(0):
        run(fn, GRID, *add_args(0))  # cached for device 0
        args, kwargs = add_args(1)
        _, expected_exc, _ = run(zoo.add_kernel, (0,), args, kwargs)
        before = swiftlaunch.stats()["fallbacks"].get("pointer on another device", 0)
        _, exc, _ = run(fn, (0,), args, kwargs)
        assert_same_error(exc, expected_exc, f"{runner} with another device's memory")
        after = swiftlaunch.stats()["fallbacks"].get("pointer on another device", 0)
        assert after - before == 1, swiftlaunch.stats()


def test_threads_on_different_devices():
    fn = launcher(zoo.add_kernel, "fast")
    errors = []

    def work(device):
        try:
            torch.cuda.set_device(device)
            args, kwargs = add_args(device)
            (expected,), _, _ = run(zoo.add_kernel, GRID, args, kwargs)
            for _ in range(50):
                (out,), exc, _ = run(fn, GRID, args, kwargs)
                assert exc is None, exc
                assert_same(out, expected, f"thread on device {device}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in (0, 1, 0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
