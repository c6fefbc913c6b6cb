"""The AeLLE pruner: prune on the final value an AeLLE model predicts from the spectrum.

The model is trained on the study's completed trials (the spectra of every step, each labelled
with its trial's final value: the "pre-trained AeLLE across epochs" of the dissertation's
Table 3.1), or carried in from elsewhere.
"""

from __future__ import annotations

import numpy as np
from optuna.study import StudyDirection

from aelle.model import AeLLE, AeLLEConfig
from aelle.pruners._base import Scorer, SpectrumPruner, TrainingData
from aelle.pruners._decision import worse
from aelle.validate import check_type


class _AeLLEScorer(Scorer):
    def __init__(self, model: AeLLE, region: str | None):
        self.model, self.region = model, region
        self.version = model.version
        self.needs_cut = region is None

    def predict(self, spectrum):
        return float(self.model.predict([spectrum])[0])

    def decide(self, spectrum, cut, direction: StudyDirection):
        predicted = self.predict(spectrum)
        if self.region is not None:
            return not bool(self.model.classify([spectrum], self.region)[0]), predicted
        return worse(predicted, cut, direction), predicted


def _check_region(region: str | None) -> str | None:
    if region is None or region in ("pc1", "pc1_f1") or (
            region.startswith("orthant") and region[7:].isdigit()):
        return region
    raise ValueError(f"region must be None, 'pc1', 'pc1_f1' or 'orthant<d>', but got "
                     f"region={region!r}")


class AeLLEPruner(SpectrumPruner):
    """Prune on the final value an AeLLE model predicts from the current spectrum.

    model: a fitted :class:`AeLLE` (or its bytes from ``AeLLE.to_bytes``) to decide with from
    the first report; it is then not retrained unless ``retrain`` is True. region: None
    compares the prediction with the study's ``quantile``; a classifier name ("pc1",
    "pc1_f1", "orthant<d>") prunes on the region instead. config: the AeLLE settings for
    models fitted here. The other options are :class:`SpectrumPruner`'s; ``background``
    defaults to True here (a fit takes seconds). With a carried model, ``reference_values``
    are the final values of the study it was trained on: the cut and the startup count use
    them until this study has its own.
    """

    def __init__(self, *, model: AeLLE | bytes | None = None, retrain: bool | None = None,
                 region: str | None = None, config: AeLLEConfig | None = None,
                 background: bool = True, **options):
        if isinstance(model, bytes | bytearray):
            model = AeLLE.from_bytes(model)
        if model is not None and not (isinstance(model, AeLLE) and model.fitted):
            raise ValueError("model must be a fitted AeLLE (or its bytes)")
        self._region = _check_region(region)
        if model is not None and region is not None and region not in model.classifiers:
            raise ValueError(f"the given model has no {region!r} classifier; it has "
                             f"{sorted(model.classifiers)}")
        self._config = check_type("config", config, AeLLEConfig, optional=True) \
            or AeLLEConfig()
        super().__init__(background=background, **options)
        self.retrain = model is None if retrain is None else bool(retrain)
        if model is not None:
            self._refitter.install(_AeLLEScorer(model, region), hold=not self.retrain)

    @property
    def model(self) -> AeLLE | None:
        """The AeLLE model deciding now (None before the first fit)."""
        scorer = self._refitter.scorer
        return None if scorer is None else scorer.model

    def _fit(self, data: TrainingData, good: np.ndarray, direction: StudyDirection):
        model = AeLLE(self._config).fit(data.spectra, data.finals)
        if self._region is not None:
            model.calibrate(data.spectra, good)
        return _AeLLEScorer(model, self._region)
