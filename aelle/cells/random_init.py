"""Random parameters for cells, uniform on [-p, p] as in the dissertation's populations."""

from __future__ import annotations

import torch


def uniform(p: float, n_networks: int, generator: torch.Generator | None, dtype: torch.dtype):
    """Return ``draw(*shape)`` giving (n_networks, *shape) tensors uniform on [-p, p], on the
    generator's device (a CUDA generator draws on its GPU; without one, on the CPU)."""
    device = None if generator is None else generator.device

    def draw(*shape: int) -> torch.Tensor:
        t = torch.rand(n_networks, *shape, generator=generator, dtype=dtype, device=device)
        return (2 * t - 1) * p

    return draw
