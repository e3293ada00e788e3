"""The kernel suite: which kernels run, and each one's inputs, eager reference and tolerances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

#: Kernel name -> title. Order is table order.
KERNELS: dict[str, str] = {
    "vec_add": "vector add, N = 4096, fp32",
    "add2d": "2-D add, 1024 x 1024, bf16",
    "many_args_4": "sum of tensors, 4 tensor arguments, N = 1024, fp32",
    "many_args_16": "sum of tensors, 16 tensor arguments, N = 1024, fp32",
    "many_args_64": "sum of tensors, 64 tensor arguments, N = 1024, fp32",
    "scalar_args": "x + alpha * beta if flag (float, int, bool arguments), N = 4096, fp32",
    "softmax": "row softmax, 128 x 256, fp32",
    "matmul": "matmul (tl.dot), 128 x 128 x 128, fp16",
}
KERNEL_ALIASES = {"many_args": ("many_args_4", "many_args_16", "many_args_64")}
QUICK_KERNELS = ("vec_add", "scalar_args")


@dataclass
class BenchKernel:
    """One kernel of the suite, with its inputs on one device.

    Every launching stack calls ``jit_fn[grid](out, *args, **constexprs)`` with a fresh
    ``out = torch.empty_like(like)``: the output is the first kernel argument by convention.
    """

    name: str
    jit_fn: Any
    grid: tuple[int, ...]
    args: tuple
    constexprs: dict[str, Any]
    like: torch.Tensor
    eager: Callable[[], torch.Tensor]
    eager_label: str
    helion_fn: Callable | None
    helion_args: tuple
    helion_config: dict[str, Any]
    rtol: float
    atol: float


def make_kernel(name: str, device: str) -> BenchKernel:
    """Build kernel ``name`` of the suite with fresh inputs on ``device`` (seeded, so reproducible)."""
    from . import kernels as K  # here, not at the top: `--help` needs no Triton

    torch.manual_seed(0)
    dev = torch.device(device)
    if name == "vec_add":
        x, y = torch.randn(4096, device=dev), torch.randn(4096, device=dev)
        return BenchKernel(
            name, K.add_kernel, (4,), (x, y, 4096), {"BLOCK": 1024}, like=x,
            eager=lambda: torch.add(x, y), eager_label="torch.add(x, y)",
            helion_fn=K.helion_add, helion_args=(x, y),
            helion_config={"block_sizes": [1024], "num_warps": 4, "num_stages": 1},
            rtol=1.3e-6, atol=1e-5,
        )
    if name == "add2d":
        x = torch.randn(1024, 1024, device=dev, dtype=torch.bfloat16)
        y = torch.randn(1024, 1024, device=dev, dtype=torch.bfloat16)
        return BenchKernel(
            name, K.add2d_kernel, (1024 // 32, 1024 // 128),
            (x, y, 1024, 1024, x.stride(0), x.stride(0), y.stride(0)), {"BLOCK_M": 32, "BLOCK_N": 128},
            like=x, eager=lambda: torch.add(x, y), eager_label="torch.add(x, y)",
            helion_fn=K.helion_add, helion_args=(x, y),
            helion_config={"block_sizes": [32, 128], "num_warps": 4, "num_stages": 1},
            rtol=1.6e-2, atol=1e-5,
        )
    if name in ("many_args_4", "many_args_16", "many_args_64"):
        n_tensors = int(name.rsplit("_", 1)[1])
        xs = [torch.randn(1024, device=dev) for _ in range(n_tensors - 1)]  # + the output
        jit_fn = K.SUM_KERNELS[n_tensors]
        return BenchKernel(
            name, jit_fn, (1,), (*xs, 1024), {"BLOCK": 1024}, like=xs[0],
            # No single torch op sums k tensors: stack + sum is what PyTorch code would write.
            eager=lambda: torch.stack(xs).sum(0), eager_label="torch.stack(xs).sum(0)",
            helion_fn=K.helion_sum, helion_args=(xs,),
            helion_config={"block_sizes": [1024], "num_warps": 4, "num_stages": 1},
            # The kernels add in order; torch.sum may not: allow for fp32 reassociation.
            rtol=1e-5, atol=1e-4,
        )
    if name == "scalar_args":
        x = torch.randn(4096, device=dev)
        # beta = 3: neither 1 (Triton would make it a constexpr) nor a multiple of 16.
        alpha, beta, flag = 0.5, 3, True
        return BenchKernel(
            name, K.scalar_args_kernel, (4,), (x, 4096, alpha, beta, flag), {"BLOCK": 1024}, like=x,
            eager=lambda: torch.add(x, beta, alpha=alpha), eager_label="torch.add(x, beta, alpha=alpha)",
            helion_fn=K.helion_scalar_args, helion_args=(x, alpha, beta, flag),
            helion_config={"block_sizes": [1024], "num_warps": 4, "num_stages": 1},
            rtol=1.3e-6, atol=1e-5,
        )
    if name == "softmax":
        x = torch.randn(128, 256, device=dev)
        return BenchKernel(
            name, K.softmax_kernel, (128,), (x, 256, x.stride(0), x.stride(0)), {"BLOCK": 256}, like=x,
            eager=lambda: torch.softmax(x, dim=-1), eager_label="torch.softmax(x, dim=-1)",
            helion_fn=K.helion_softmax, helion_args=(x,),
            helion_config={"block_sizes": [1], "num_warps": 4, "num_stages": 1},
            rtol=1e-4, atol=1e-6,
        )
    if name == "matmul":
        a = torch.randn(128, 128, device=dev, dtype=torch.float16)
        b = torch.randn(128, 128, device=dev, dtype=torch.float16)
        c = torch.empty(128, 128, device=dev, dtype=torch.float16)
        return BenchKernel(
            name, K.matmul_kernel, (128 // 64, 128 // 64),
            (a, b, 128, 128, 128, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1)),
            {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, like=c,
            eager=lambda: torch.matmul(a, b), eager_label="torch.matmul(a, b)",
            helion_fn=K.helion_matmul, helion_args=(a, b),
            helion_config={"block_sizes": [64, 64, 32], "num_warps": 4, "num_stages": 3},
            # fp16 output (values ~ +-11) of a 128-term accumulation whose order, and for cuBLAS
            # possibly precision, differs: a few fp16 ulps. A wrong kernel is off by whole units.
            rtol=2e-2, atol=5e-2,
        )
    raise ValueError(f"unknown kernel {name!r}")
