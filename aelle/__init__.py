"""AeLLE: Lyapunov spectra of recurrent networks, and what they say about performance."""

from aelle.adapters import cell_for
from aelle.cells import Cell, LayeredCell, StepCell, stack_cells
from aelle.spectra import Divergence, SpectrumDivergedError, SpectrumResult, lyapunov_spectrum

# The model and the pruners pull in scikit-learn and Optuna: loaded on first use, so that the
# spectrum engine alone imports quickly.
_LAZY = {
    "aelle.model": ("AeLLE", "AeLLEConfig", "interpolate"),
    "aelle.pruners": ("AeLLEPruner", "ByStep", "Decision", "LEThresholdPruner", "ShadowPruner",
                      "SpectrumStore", "StudyMedianPruner", "TrialAttrStore", "report_spectrum"),
    # a trial's stored network, rebuilt by its task (the task zoo imports torch's data stack)
    "tasks.artifacts": ("TrialModel", "load_trial_model", "load_trial_run"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'aelle' has no attribute {name!r}")


__all__ = [
    "AeLLE",
    "AeLLEConfig",
    "AeLLEPruner",
    "ByStep",
    "Cell",
    "Decision",
    "Divergence",
    "LEThresholdPruner",
    "LayeredCell",
    "ShadowPruner",
    "SpectrumDivergedError",
    "SpectrumResult",
    "SpectrumStore",
    "StepCell",
    "StudyMedianPruner",
    "TrialAttrStore",
    "TrialModel",
    "cell_for",
    "interpolate",
    "load_trial_model",
    "load_trial_run",
    "lyapunov_spectrum",
    "report_spectrum",
    "stack_cells",
]
__version__ = "0.1.0"
