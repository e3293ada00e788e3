"""Tiny Helion kernels for the interpreted CPU tests (Helion reads kernel source from a real file).
They run on CPU tensors under TRITON_INTERPRET=1 (set before Triton is imported: `tl.cdiv` and
Helion's reduction helpers are `triton.jit` functions made at import), one program each, so keep
sizes at most BLOCK."""

import torch

import helion
import helion.language as hl

BLOCK = 16


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def scaled_add(x: torch.Tensor, y: torch.Tensor, alpha: float, scale: hl.constexpr) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = (x[tile] + y[tile] * alpha) * scale
    return out


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def cast_to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty_like(x, dtype=dtype)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile].to(dtype)
    return out


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def add_into(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for tile in hl.tile(x.size()):
        x[tile] = x[tile] + y[tile]
    return x


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def sum_and_difference(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    total = torch.empty_like(x)
    difference = torch.empty_like(x)
    for tile in hl.tile(x.size()):
        total[tile] = x[tile] + y[tile]
        difference[tile] = x[tile] - y[tile]
    return total, difference


@helion.kernel(config=helion.Config(block_sizes=[4, 4]), static_shapes=True)
def broadcast_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = torch.broadcast_tensors(x, y)
    out = torch.empty_like(x)
    for tile_m, tile_n in hl.tile(out.size()):
        out[tile_m, tile_n] = x[tile_m, tile_n] + y[tile_m, tile_n]
    return out


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def sum_and_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.size(0)
    total = torch.empty([n], dtype=x.dtype, device=x.device)
    largest = torch.empty([n], dtype=x.dtype, device=x.device)
    for tile in hl.tile(n):
        row = x[tile, :]
        total[tile] = row.sum(-1)
        largest[tile] = row.amax(-1)
    return total, largest


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    m, n = x.size()
    out = torch.empty_like(x)
    for tile in hl.tile(m):
        row = x[tile, :].to(torch.float32)
        scale = 1.0 / torch.sqrt(torch.mean(row * row, dim=-1, keepdim=True) + eps)
        out[tile, :] = (row * scale).to(out.dtype)
    return out


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def specialized_scale(x: torch.Tensor, factor: int) -> torch.Tensor:
    f = hl.specialize(factor)
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] * f
    return out


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True, key=lambda x, y: x.size(0) % 2)
def keyed_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=False)
def dynamic_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out


@helion.kernel(config=helion.Config(block_sizes=[4, 4]), static_shapes=True)
def transpose(x: torch.Tensor) -> torch.Tensor:
    m, n = x.size()
    out = x.new_empty([n, m])
    for tile_m, tile_n in hl.tile([m, n]):
        out[tile_n, tile_m] = x[tile_m, tile_n].T
    return out
