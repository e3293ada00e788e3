"""Tiny Helion kernels for the interpreted CPU tests (Helion reads kernel source from a real file).
They run on CPU tensors under TRITON_INTERPRET=1 (set before Triton is imported: `tl.cdiv` and
Helion's reduction helpers are `triton.jit` functions made at import), one program each, so keep
sizes at most BLOCK."""

import torch

import helion
import helion.language as hl

import helion_bodies as bodies

BLOCK = 16


def made(body, *block_sizes, static_shapes=True):
    """A body from tests/helion_bodies.py as a kernel of this zoo."""
    return helion.kernel(body, config=helion.Config(block_sizes=list(block_sizes)), static_shapes=static_shapes)


scaled_add = made(bodies.scaled_add, BLOCK)
add_into = made(bodies.add_into, BLOCK)
sum_and_difference = made(bodies.sum_and_difference, BLOCK)
broadcast_add = made(bodies.broadcast_add, 4, 4)
specialized_scale = made(bodies.specialized_scale, BLOCK)
dynamic_add = made(bodies.dynamic_add, BLOCK, static_shapes=False)


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True)
def cast_to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty_like(x, dtype=dtype)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile].to(dtype)
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


@helion.kernel(config=helion.Config(block_sizes=[BLOCK]), static_shapes=True, key=lambda x, y: x.size(0) % 2)
def keyed_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
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
