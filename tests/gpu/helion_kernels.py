"""Helion kernels for tests/gpu/test_helion_dispatch.py: one of each kind of generated host wrapper
(see /work/shared/notes/helion-call-path.md, "What the generated wrappers do"). Each has a fixed
config (no autotuning) except `autotuned_add`, and is made once per session: Helion compiles per
bound kernel, and the tests reuse them."""

import torch

import helion
import helion.language as hl

from swiftlaunch.bench import kernels


kernels.load_helion()  # binds `hl` for the benchmark's Helion functions
add = helion.kernel(kernels.helion_add, config=helion.Config(block_sizes=[256]), static_shapes=True)


@helion.kernel(config=helion.Config(block_sizes=[32, 32]), static_shapes=True)
def broadcast_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = torch.broadcast_tensors(x, y)
    out = torch.empty_like(x)
    for tile_m, tile_n in hl.tile(out.size()):
        out[tile_m, tile_n] = x[tile_m, tile_n] + y[tile_m, tile_n]
    return out


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=True)
def scaled_add(x: torch.Tensor, y: torch.Tensor, alpha: float, scale: hl.constexpr) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = (x[tile] + y[tile] * alpha) * scale
    return out


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=True)
def add_out(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=True)
def add_into(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for tile in hl.tile(x.size()):
        x[tile] = x[tile] + y[tile]
    return x


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=True)
def sum_and_difference(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    total = torch.empty_like(x)
    difference = torch.empty_like(x)
    for tile in hl.tile(x.size()):
        total[tile] = x[tile] + y[tile]
        difference[tile] = x[tile] - y[tile]
    return total, difference


@helion.kernel(config=helion.Config(block_sizes=[1]), static_shapes=True)
def softmax(x: torch.Tensor) -> torch.Tensor:
    n, _m = x.size()
    out = torch.empty_like(x)
    for tile_n in hl.tile(n):
        out[tile_n, :] = torch.nn.functional.softmax(x[tile_n, :], dim=1)
    return out


@helion.kernel(config=helion.Config(block_sizes=[16]), static_shapes=True)
def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        acc = x[tile_m, :].to(torch.float32)
        mean = torch.mean(acc, dim=-1, keepdim=True)
        centered = acc - mean
        var = torch.mean(centered * centered, dim=-1, keepdim=True)
        normalized = centered * torch.rsqrt(var + eps)
        out[tile_m, :] = (normalized * weight[:].to(torch.float32) + bias[:].to(torch.float32)).to(out.dtype)
    return out


@helion.kernel(config=helion.Config(block_sizes=[16]), static_shapes=True)
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        scale = torch.rsqrt(torch.mean(row * row, dim=-1, keepdim=True) + eps)
        out[tile_m, :] = (row * scale * weight[:].to(torch.float32)).to(out.dtype)
    return out


@helion.kernel(config=helion.Config(block_sizes=[32, 32, 32]), static_shapes=True)
def matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    m, k = x.size()
    k2, n = y.size()
    assert k == k2, f"size mismatch {k} != {k2}"
    out = torch.empty([m, n], dtype=torch.promote_types(x.dtype, y.dtype), device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = torch.addmm(acc, x[tile_m, tile_k], y[tile_k, tile_n])
        out[tile_m, tile_n] = acc.to(out.dtype)
    return out


@helion.kernel(config=helion.Config(block_sizes=[8]), static_shapes=True)
def row_sum_scaled(x: torch.Tensor, factor: float) -> torch.Tensor:
    m, _n = x.size()
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        out[tile_m] = x[tile_m, :].sum(-1) * factor
    return out


@helion.kernel(config=helion.Config(block_sizes=[32, 32], pid_type="persistent_blocked"), static_shapes=True)
def persistent_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile_m, tile_n in hl.tile(out.size()):
        out[tile_m, tile_n] = x[tile_m, tile_n] + y[tile_m, tile_n]
    return out


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=False)
def dynamic_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


@helion.kernel(config=helion.Config(block_sizes=[16]), static_shapes=False)
def specialized_rows(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    n = hl.specialize(n)
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        out[tile_m] = x[tile_m, :].sum(-1)
    return out


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=True)
def specialized_scale(x: torch.Tensor, factor: int) -> torch.Tensor:
    f = hl.specialize(factor)
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] * f
    return out


@helion.kernel(configs=[helion.Config(block_sizes=[128]), helion.Config(block_sizes=[512])], static_shapes=True)
def autotuned_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out
