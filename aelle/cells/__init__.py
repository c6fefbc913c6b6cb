"""Recurrent architectures as maps with analytic Jacobians, registered by name."""

from aelle.cells import asrnn, cornn, gru, lem, lipschitz, lstm, noisy, rnn  # noqa: F401  (register)
from aelle.cells.base import Cell, stack_cells
from aelle.cells.layered import LayeredCell
from aelle.cells.registry import get, names, register

__all__ = ["Cell", "LayeredCell", "get", "names", "register", "stack_cells"]
