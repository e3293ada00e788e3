"""A first look on a GPU: one kernel through Triton and through swiftlaunch, compared, timed."""

import sys
import time

import torch

sys.path.insert(0, "tests/gpu")
sys.path.insert(0, "src/swiftlaunch")
import swiftlaunch  # noqa: E402
from swiftlaunch import _bench_kernels as bk  # noqa: E402

print("native:", swiftlaunch.native_available(), swiftlaunch.native_error())
add = getattr(bk, "add_kernel", None) or getattr(bk, "vector_add_kernel")
print("kernel:", add)
n = 4096
x = torch.randn(n, device="cuda")
y = torch.randn(n, device="cuda")
out_ref = torch.empty_like(x)
out = torch.empty_like(x)
fast = swiftlaunch.fast(add)
import inspect
params = list(inspect.signature(add.fn).parameters)
print("params:", params)
block = 1024
grid = (triton_cdiv := (n + block - 1) // block,)
kw = {params[-1]: block}
add[grid](out_ref, x, y, n, **kw)
for i in range(3):
    fast[grid](out, x, y, n, **kw)
torch.cuda.synchronize()
print("equal:", torch.equal(out, out_ref), swiftlaunch.stats())
for label, fn in [("triton", lambda: add[grid](out, x, y, n, **kw)), ("swiftlaunch", lambda: fast[grid](out, x, y, n, **kw))]:
    for _ in range(500):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20000):
        fn()
    torch.cuda.synchronize()
    print(label, (time.perf_counter() - t) / 20000 * 1e6, "us")
print(swiftlaunch.stats())
