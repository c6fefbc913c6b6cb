"""AeLLE: Lyapunov spectra of recurrent networks, and what they say about performance."""

from aelle.adapters import cell_for
from aelle.cells import Cell, LayeredCell, stack_cells
from aelle.spectra import Divergence, SpectrumDivergedError, SpectrumResult, lyapunov_spectrum

__all__ = [
    "Cell",
    "Divergence",
    "LayeredCell",
    "SpectrumDivergedError",
    "SpectrumResult",
    "cell_for",
    "lyapunov_spectrum",
    "stack_cells",
]
__version__ = "0.1.0"
