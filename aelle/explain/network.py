"""What every method of :mod:`aelle.explain` analyses: a recurrent cell (M = 1) with its
linear readout, ``y_t = W out(s_t) + b`` where ``s_t = f(s_{t-1}, u_t)``."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from aelle.adapters import cell_for
from aelle.cells.base import Cell


@dataclasses.dataclass(frozen=True)
class Network:
    """cell: one network (M = 1); readout_weight (O, N), readout_bias (O,), in the cell's dtype."""

    cell: Cell
    readout_weight: Tensor
    readout_bias: Tensor

    def __post_init__(self):
        if not isinstance(self.cell, Cell):
            raise TypeError(f"cell must be an aelle Cell, got {type(self.cell).__name__}")
        if self.cell.n_networks != 1:
            raise ValueError(f"explain analyses one network at a time; the cell holds "
                             f"{self.cell.n_networks}")
        n = self.cell.hidden_size
        if self.readout_weight.ndim != 2 or self.readout_weight.shape[1] != n:
            raise ValueError(f"readout_weight must be (outputs, {n}), "
                             f"got {tuple(self.readout_weight.shape)}")
        if self.readout_bias.shape != (self.readout_weight.shape[0],):
            raise ValueError(f"readout_bias must be ({self.readout_weight.shape[0]},), "
                             f"got {tuple(self.readout_bias.shape)}")

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    @property
    def state_size(self) -> int:
        return self.cell.state_size

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def output_size(self) -> int:
        return self.readout_weight.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.cell.dtype

    def step(self, s: Tensor, u: Tensor) -> Tensor:
        """One step on unbatched-network tensors: s (B, S), u (B, I) -> (B, S)."""
        return self.cell.step(s[None], u[None])[0]

    def readout(self, s: Tensor) -> Tensor:
        """(..., S) -> (..., O)."""
        return self.cell.output(s) @ self.readout_weight.T + self.readout_bias

    @torch.no_grad()
    def run(self, inputs: Tensor, s0: Tensor | None = None) -> Tensor:
        """States (B, T, S) driven by inputs (B, T, I) from s0 (B, S) (default zero)."""
        inputs = check_inputs(self, inputs)
        s = (torch.zeros(inputs.shape[0], self.state_size, dtype=self.dtype)
             if s0 is None else s0.to(self.dtype))
        out = []
        for t in range(inputs.shape[1]):
            s = self.step(s, inputs[:, t])
            out.append(s)
        return torch.stack(out, 1)

    def with_cell(self, cell: Cell) -> Network:
        return dataclasses.replace(self, cell=cell)


def check_inputs(network: Network, inputs: Tensor) -> Tensor:
    """Probe inputs as (B, T, I) in the network's dtype; ValueError naming a wrong shape."""
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.ndim != 3 or inputs.shape[-1] != network.input_size:
        raise ValueError(f"inputs must be (batch, steps, {network.input_size}), "
                         f"got {tuple(inputs.shape)}")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs hold NaN or infinite values")
    return inputs.to(network.dtype)


def network_of(module: nn.Module, readout: nn.Linear | None = None,
               dtype: torch.dtype = torch.float64) -> Network:
    """The Network of a trained module: its recurrent part through :func:`aelle.cell_for` (full
    state) and ``readout`` (default: the module's ``readout`` attribute, an nn.Linear)."""
    readout = getattr(module, "readout", None) if readout is None else readout
    if not isinstance(readout, nn.Linear):
        raise TypeError(f"{type(module).__name__} has no nn.Linear 'readout'; pass readout=")
    cell = cell_for(module, "full", dtype=dtype)
    w = readout.weight.detach().to(dtype, copy=True)
    b = (torch.zeros(w.shape[0], dtype=dtype) if readout.bias is None
         else readout.bias.detach().to(dtype, copy=True))
    return Network(cell, w, b)
