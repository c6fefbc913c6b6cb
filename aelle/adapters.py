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
from aelle.validate import check_type


def cell_for(module: nn.Module, state: str = "full", *, dtype: torch.dtype | None = None) -> Cell:
    """The Cell of ``module`` (weights copied, detached, as one network: M = 1).

    dtype: the cell's (default: the module's). A torch module's weights are each converted
    before any are combined (an LSTM's and an RNN's two biases are summed), so a float32 module
    analysed in float64 is exactly the float64 map; converting the cell afterwards would sum
    the biases in float32. A module's own ``lyapunov_cell`` builds its cell, converted after.
    """
    if state not in ("full", "hidden"):
        raise ValueError(f"state must be 'full' or 'hidden', got {state!r}")
    check_type("dtype", dtype, torch.dtype, optional=True)
    if hasattr(module, "lyapunov_cell"):
        cell = module.lyapunov_cell(state=state)
        if not isinstance(cell, Cell):
            raise TypeError(f"{type(module).__name__}.lyapunov_cell returned "
                            f"{type(cell).__name__}, not an aelle Cell")
        return cell if dtype is None else cell.to(dtype)
    if isinstance(module, nn.RNNBase):
        return _from_rnn_base(module, state, dtype)
    if isinstance(module, nn.RNNCellBase):
        return _layer(module, "", state, dtype)
    raise TypeError(f"cell_for does not know {type(module).__name__}: give it a torch RNN, LSTM "
                    "or GRU, or a module with a lyapunov_cell(state=...) method")


def _from_rnn_base(module: nn.RNNBase, state: str, dtype: torch.dtype | None) -> Cell:
    if module.bidirectional:
        raise ValueError("a bidirectional RNN is not a causal map; its Lyapunov spectrum is "
                         "undefined (analyse each direction as its own module)")
    if getattr(module, "proj_size", 0):
        raise ValueError("LSTM with proj_size > 0 is not supported")
    layers = tuple(_layer(module, f"_l{i}", state, dtype) for i in range(module.num_layers))
    return layers[0] if len(layers) == 1 else LayeredCell(layers)


def _layer(module: nn.Module, suffix: str, state: str, dtype: torch.dtype | None) -> Cell:
    def param(name):  # converted here, before any two are combined
        p = getattr(module, name + suffix, None)
        return None if p is None else p.detach().to(dtype=dtype, copy=True)[None]

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
