"""``cell_for``: the analysable cell of a torch recurrent module, with its current weights.

Supported: torch.nn.RNN / LSTM / GRU (any num_layers, batch_first or not; the cell always takes
inputs as (B, T, I)), torch.nn.RNNCell / LSTMCell / GRUCell, and any module that provides
``lyapunov_cell(state=...)`` returning a Cell (every recurrent module of ``tasks/`` does).
"""

from __future__ import annotations

import torch
from torch import nn

from aelle.cells.base import Cell
from aelle.cells.gru import GRUCell
from aelle.cells.layered import LayeredCell
from aelle.cells.lstm import LSTMCell
from aelle.cells.rnn import RNNCell


def cell_for(module: nn.Module, state: str = "full") -> Cell:
    """The Cell of ``module`` (weights copied, detached, as one network: M = 1)."""
    if state not in ("full", "hidden"):
        raise ValueError(f"state must be 'full' or 'hidden', got {state!r}")
    if hasattr(module, "lyapunov_cell"):
        cell = module.lyapunov_cell(state=state)
        if not isinstance(cell, Cell):
            raise TypeError(f"{type(module).__name__}.lyapunov_cell returned "
                            f"{type(cell).__name__}, not an aelle Cell")
        return cell
    if isinstance(module, nn.RNNBase):
        return _from_rnn_base(module, state)
    if isinstance(module, nn.RNNCellBase):
        return _layer(module, "", state)
    raise TypeError(f"cell_for does not know {type(module).__name__}: give it a torch RNN, LSTM "
                    "or GRU, or a module with a lyapunov_cell(state=...) method")


def _from_rnn_base(module: nn.RNNBase, state: str) -> Cell:
    if module.bidirectional:
        raise ValueError("a bidirectional RNN is not a causal map; its Lyapunov spectrum is "
                         "undefined (analyse each direction as its own module)")
    if getattr(module, "proj_size", 0):
        raise ValueError("LSTM with proj_size > 0 is not supported")
    layers = tuple(_layer(module, f"_l{i}", state) for i in range(module.num_layers))
    return layers[0] if len(layers) == 1 else LayeredCell(layers)


def _layer(module: nn.Module, suffix: str, state: str) -> Cell:
    def param(name):
        p = getattr(module, name + suffix, None)
        return None if p is None else p.detach().clone()[None]

    w_ih, w_hh = param("weight_ih"), param("weight_hh")
    b_ih, b_hh = param("bias_ih"), param("bias_hh")
    if b_ih is None:
        b_ih = torch.zeros(w_ih.shape[:2], dtype=w_ih.dtype, device=w_ih.device)
        b_hh = torch.zeros_like(b_ih)
    mode = getattr(module, "mode", None) or _cell_mode(module)
    if mode == "LSTM":
        return LSTMCell(w_ih, w_hh, b_ih + b_hh, state=state)
    if mode == "GRU":
        return GRUCell(w_ih, w_hh, b_ih, b_hh)
    if mode in ("RNN_TANH", "RNN_RELU"):
        return RNNCell(w_ih, w_hh, b_ih + b_hh, nonlinearity=mode[4:].lower())
    raise TypeError(f"unsupported recurrent mode {mode!r}")


def _cell_mode(module: nn.Module) -> str:
    if isinstance(module, nn.LSTMCell):
        return "LSTM"
    if isinstance(module, nn.GRUCell):
        return "GRU"
    return "RNN_" + module.nonlinearity.upper()
