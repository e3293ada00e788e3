"""The bodies of the Helion kernels both test zoos use, written once: tests/gpu/helion_kernels.py and
tests/interpreted/helion_cpu_kernels.py wrap them with `helion.kernel(...)` at configs of their own
(GPU-sized blocks there, one interpreted program here). Helion reads a kernel's source from its
file, so they are plain functions of a real module."""

import torch

import helion.language as hl


def scaled_add(x: torch.Tensor, y: torch.Tensor, alpha: float, scale: hl.constexpr) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = (x[tile] + y[tile] * alpha) * scale
    return out


def add_into(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for tile in hl.tile(x.size()):
        x[tile] = x[tile] + y[tile]
    return x


def sum_and_difference(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    total = torch.empty_like(x)
    difference = torch.empty_like(x)
    for tile in hl.tile(x.size()):
        total[tile] = x[tile] + y[tile]
        difference[tile] = x[tile] - y[tile]
    return total, difference


def broadcast_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = torch.broadcast_tensors(x, y)
    out = torch.empty_like(x)
    for tile_m, tile_n in hl.tile(out.size()):
        out[tile_m, tile_n] = x[tile_m, tile_n] + y[tile_m, tile_n]
    return out


def specialized_scale(x: torch.Tensor, factor: int) -> torch.Tensor:
    f = hl.specialize(factor)
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] * f
    return out


def dynamic_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    for tile in hl.tile(out.size()):
        out[tile] = x[tile] + y[tile]
    return out
