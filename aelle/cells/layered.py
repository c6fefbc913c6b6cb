"""Stacked recurrent layers: the block lower-triangular Jacobian of eq. (2.6), Fig. 2.1.

Layer l reads the output h of layer l-1 at the same time step. Block (k, j), j < k, is the chain
of input-Jacobians from layer k down to layer j+1 times layer j's own recurrent Jacobian; it is
built one layer at a time by multiplying with the block row above.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from aelle.cells.base import Cell


@dataclasses.dataclass(frozen=True)
class LayeredCell(Cell):
    layers: tuple[Cell, ...]

    def __post_init__(self):
        if not self.layers:
            raise ValueError("a layered cell needs at least one layer")
        for below, above in zip(self.layers, self.layers[1:], strict=False):
            if above.input_size != below.hidden_size:
                raise ValueError(f"layer input size {above.input_size} does not match the "
                                 f"hidden size {below.hidden_size} of the layer below")

    @property
    def name(self) -> str:  # type: ignore[override]
        return "layered:" + "+".join(layer.name for layer in self.layers)

    @property
    def hidden_size(self) -> int:
        return self.layers[-1].hidden_size

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def state_size(self) -> int:
        return sum(layer.state_size for layer in self.layers)

    @property
    def dim(self) -> int:
        return sum(layer.dim for layer in self.layers)

    @property
    def thread_safe(self) -> bool:
        return all(layer.thread_safe for layer in self.layers)

    def output(self, s: Tensor) -> Tensor:
        return self.layers[-1].output(self._split(s)[-1])

    def tangent_index(self):
        if all(layer.tangent_index() is None for layer in self.layers):
            return None
        parts, offset = [], 0
        for layer in self.layers:
            idx = layer.tangent_index()
            idx = torch.arange(layer.state_size) if idx is None else idx
            parts.append(idx + offset)
            offset += layer.state_size
        return torch.cat(parts)

    def _split(self, s: Tensor) -> list[Tensor]:
        return list(s.split([layer.state_size for layer in self.layers], -1))

    def step(self, s, x):
        out = []
        for layer, s_l in zip(self.layers, self._split(s), strict=True):
            s_new = layer.step(s_l, x)
            out.append(s_new)
            x = layer.output(s_new)
        return torch.cat(out, -1)

    def jacobians(self, s, x, wrt_input=False):
        states, block_rows, input_cols = [], [], []
        row = jx = None  # block row of the layer below, and d(its tangent)/d(external input)
        for depth, (layer, s_l) in enumerate(zip(self.layers, self._split(s), strict=True)):
            need_input = depth > 0 or wrt_input
            s_new, a, b = layer.jacobians(s_l, x, wrt_input=need_input)
            states.append(s_new)
            if depth == 0:
                new_row = a
                jx = b
            else:
                n_below = self.layers[depth - 1].hidden_size  # its output: first N tangent coords
                new_row = b @ row[..., :n_below, :]
                new_row = torch.cat([new_row, a], -1)
                if wrt_input:
                    jx = b @ jx[..., :n_below, :]
            block_rows.append(new_row)
            input_cols.append(jx)
            row = new_row
            x = layer.output(s_new)
        d = self.dim
        j = torch.cat([torch.nn.functional.pad(r, (0, d - r.shape[-1])) for r in block_rows], -2)
        return torch.cat(states, -1), j, torch.cat(input_cols, -2) if wrt_input else None
