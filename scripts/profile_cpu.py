"""The per-call host path of a cache hit, on a machine with no GPU: for instruction counts
(callgrind) and rough timings of swiftlaunch's own code, not of the driver.

Runs against the stand-in libcuda (scripts/fake_libcuda.c), which launches nothing; CPU tensors stand
in for device memory, configured as the fake-driver tests configure the core
(tests/fake_driver/harness.py). Never use this for correctness: it launches nothing.

    mkdir -p /tmp/fakecuda && cc -O2 -shared -fPIC -o /tmp/fakecuda/libcuda.so.1 scripts/fake_libcuda.c
    LD_LIBRARY_PATH=/tmp/fakecuda python scripts/profile_cpu.py [calls]
    LD_LIBRARY_PATH=/tmp/fakecuda valgrind --tool=callgrind python scripts/profile_cpu.py 20000
"""

import sys
import time
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_driver import harness  # noqa: E402

from swiftlaunch.bench import kernels  # noqa: E402
from swiftlaunch import _triton  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
# A builtin for the stream query, as torch's own is: a Python lambda would add its frame to every call.
native, reader_status = harness.configure_core(current_stream=abs)
fake = harness.FakeDriver.of(native)
# torch reports device -1 for CPU memory: the fake's context must be on that device, whatever
# FAKE_CUDA_DEVICE says.
device = torch.empty(0).get_device()
fake.set_device(device)

fast = _triton.fast(kernels.add_kernel)
N = 4096
x, y, out = (torch.randn(N) for _ in range(3))
grid = (triton.cdiv(N, 1024),)
harness.insert_stand_in(fast, (out, x, y, N), {"BLOCK": 1024}, object(), device=device, function=1234)


def run(calls):
    bound = fast[grid]
    for _ in range(calls):
        fast[grid](out, x, y, N, BLOCK=1024)
    return bound


run(1000)
stats = native.stats(True)
assert stats["hits"] == 1000 and fake.launch_count() == 1000, (stats, fake.launch_count())
start = time.perf_counter()
run(CALLS)
elapsed = time.perf_counter() - start
print(f"{elapsed / CALLS * 1e9:.0f} ns per fast[grid](out, x, y, N, BLOCK=1024) (fake driver; "
      f"tensor reader: {reader_status})")
print(native.stats(False))
