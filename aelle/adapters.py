"""``cell_for``: the analysable cell of a torch recurrent module, with its current weights.

Supported: torch.nn.RNN / LSTM / GRU (any num_layers, batch_first or not; the cell always takes
inputs as (B, T, I)), torch.nn.RNNCell / LSTMCell / GRUCell, any module that provides
``lyapunov_cell(state=...)`` returning a Cell (every recurrent module of ``tasks/`` does), any
module that declares its step (``aelle_step`` and ``aelle_state_size``: a StepCell, Jacobians
by autograd), and a plain step function with its sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from aelle.cells.base import Cell
from aelle.cells.gru import GRUCell
from aelle.cells.layered import LayeredCell
from aelle.cells.lstm import LSTMCell
from aelle.cells.rnn import RNNCell
from aelle.cells.step import DECLARES, StepCell, declares_step
from aelle.validate import check_type


def cell_for(module: nn.Module | Callable, state: str = "full", *,
             dtype: torch.dtype | None = None, state_size: int | None = None,
             input_size: int | None = None, hidden_size: int | None = None,
             params: Mapping[str, Tensor] | None = None) -> Cell:
    """The Cell of ``module`` (weights copied, detached, as one network: M = 1).

    dtype: the cell's (default: the module's). A torch module's weights are each converted
    before any are combined (an LSTM's and an RNN's two biases are summed), so a float32 module
    analysed in float64 is exactly the float64 map; converting the cell afterwards would sum
    the biases in float32. A module's own ``lyapunov_cell`` builds its cell, converted after.

    A module that declares its step (``aelle_step(state, input)`` for one sequence and
    ``aelle_state_size``) gets a :class:`~aelle.cells.step.StepCell`; so does a plain function
    ``fn(state, input, **params)`` given with ``state_size`` and ``input_size`` (and
    optionally ``hidden_size``, the output's size, and ``params``, its tensors by name).
    """
    if state not in ("full", "hidden"):
        raise ValueError(f"state must be 'full' or 'hidden', got {state!r}")
    check_type("dtype", dtype, torch.dtype, optional=True)
    for_functions = {"state_size": state_size, "input_size": input_size,
                     "hidden_size": hidden_size, "params": params}
    if isinstance(module, type):
        raise TypeError(f"cell_for takes a module or a step function, not the class "
                        f"{module.__name__}: give it an instance")
    if not isinstance(module, nn.Module):
        if not callable(module):
            raise TypeError(f"cell_for takes a torch module or a step function, got "
                            f"{type(module).__name__}")
        missing = [name for name in ("state_size", "input_size") if for_functions[name] is None]
        if missing:
            raise TypeError(f"cell_for of a step function needs {' and '.join(missing)}")
        return StepCell.from_function(module, state=state, dtype=dtype, **for_functions)
    given = [name for name, value in for_functions.items() if value is not None]
    if given:
        raise TypeError(f"{', '.join(given)}: only for a step function; a module declares its "
                        "sizes itself (aelle_state_size, aelle_input_size, aelle_hidden_size)")
    if hasattr(module, "lyapunov_cell"):
        cell = module.lyapunov_cell(state=state)
        if not isinstance(cell, Cell):
            raise TypeError(f"{type(module).__name__}.lyapunov_cell returned "
                            f"{type(cell).__name__}, not an aelle Cell")
        return cell if dtype is None else cell.to(dtype)
    if declares_step(module):
        return StepCell.from_module(module, state, dtype=dtype)
    if isinstance(module, nn.RNNBase):
        return _from_rnn_base(module, state, dtype)
    if isinstance(module, nn.RNNCellBase):
        return _layer(module, "", state, dtype)
    raise TypeError(f"cell_for does not know {type(module).__name__}: give it a torch RNN, LSTM "
                    "or GRU, a module with a lyapunov_cell(state=...) method, or declare the "
                    f"module's step: {DECLARES} (and aelle_input_size unless it has "
                    "input_size; see docs/engine.md)")


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
