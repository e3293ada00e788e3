"""Helion kernels for tests/gpu/test_helion_dispatch.py: one of each kind of generated host wrapper
(see /work/shared/notes/helion-call-path.md, "What the generated wrappers do"). Each has a fixed
config (no autotuning) except `autotuned_add`, and is made once per session: Helion compiles per
bound kernel, and the tests reuse them."""

import torch

import helion
import helion.language as hl

import helion_bodies as bodies
from swiftlaunch.bench import kernels


kernels.load_helion()  # binds `hl` for the benchmark's Helion functions


def made(body, *block_sizes, static_shapes=True):
    """A body from tests/helion_bodies.py (or the benchmark's) as a kernel of this zoo."""
    return helion.kernel(body, config=helion.Config(block_sizes=list(block_sizes)), static_shapes=static_shapes)


add = made(kernels.helion_add, 256)
scaled_add = made(bodies.scaled_add, 256)
add_into = made(bodies.add_into, 256)
sum_and_difference = made(bodies.sum_and_difference, 256)
broadcast_add = made(bodies.broadcast_add, 32, 32)
specialized_scale = made(bodies.specialized_scale, 256)
dynamic_add = made(bodies.dynamic_add, 256, static_shapes=False)


@helion.kernel(config=helion.Config(block_sizes=[256]), static_shapes=True)
def add_out(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


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


@helion.kernel(config=helion.Config(block_sizes=[16]), static_shapes=False)
def specialized_rows(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    n = hl.specialize(n)
    out = torch.empty([m], dtype=x.dtype, device=x.device)
    for tile_m in hl.tile(m):
        out[tile_m] = x[tile_m, :].sum(-1)
    return out


@helion.kernel(configs=[helion.Config(block_sizes=[128]), helion.Config(block_sizes=[512])], static_shapes=True)
def autotuned_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out
