"""Recurrent architectures as maps with analytic Jacobians, registered by name."""

from aelle.cells import (  # noqa: F401  (register)
    asrnn,
    cornn,
    force,
    gru,
    lem,
    lipschitz,
    lstm,
    noisy,
    rnn,
)
from aelle.cells.base import Cell, stack_cells
from aelle.cells.layered import LayeredCell
from aelle.cells.registry import get, names, register
from aelle.cells.step import StepCell

__all__ = ["Cell", "LayeredCell", "StepCell", "get", "names", "register", "stack_cells"]
