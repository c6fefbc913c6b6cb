"""AeLLE: Lyapunov spectra of recurrent networks, and what they say about performance."""

from aelle.adapters import cell_for
from aelle.cells import Cell, LayeredCell, stack_cells
from aelle.spectra import Divergence, SpectrumDivergedError, SpectrumResult, lyapunov_spectrum

# The model and the pruners pull in scikit-learn and Optuna: loaded on first use, so that the
# spectrum engine alone imports quickly.
_LAZY = {
    "AeLLE": "aelle.model", "AeLLEConfig": "aelle.model", "interpolate": "aelle.model",
    "AeLLEPruner": "aelle.pruner", "LEThresholdPruner": "aelle.pruner",
    "ShadowPruner": "aelle.pruner", "StudyMedianPruner": "aelle.curves",
    "SpectrumStore": "aelle.store", "TrialAttrStore": "aelle.store",
    "report_spectrum": "aelle.store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aelle' has no attribute {name!r}")


__all__ = [
    "AeLLE",
    "AeLLEConfig",
    "AeLLEPruner",
    "Cell",
    "Divergence",
    "LEThresholdPruner",
    "LayeredCell",
    "ShadowPruner",
    "SpectrumDivergedError",
    "SpectrumResult",
    "SpectrumStore",
    "StudyMedianPruner",
    "TrialAttrStore",
    "cell_for",
    "interpolate",
    "lyapunov_spectrum",
    "report_spectrum",
    "stack_cells",
]
__version__ = "0.1.0"
