"""Predictors of a trial's final value from something other than its spectrum, used through the
same pruning rule as AeLLE: so that the spectrum is compared with what a model of AeLLE's
capacity makes of the loss curve, or of the hyperparameters alone.

- :class:`CapacityMLP`: AeLLE's encoder widths (``AeLLEConfig.hidden`` then ``latent``, tanh,
  dropout) and its linear head, trained as AeLLE's prediction head is (Adam, the same epochs
  and batch size, L1 on targets normalised and clipped as AeLLE normalises them); there is no
  decoder, since there is no spectrum to reconstruct. Input columns are standardised; a
  constant column (an architecture the training set never had) is left in its own units.
- :class:`CurveStore`: at step ``e`` a trial's "spectrum" is its loss curve up to ``e``, the
  last value carried to the end, and ``e / epochs``: every prefix of every completed trial is a
  training row, as every epoch's spectrum is one for AeLLE.
- :class:`ParamStore`: at step 0 only, the hyperparameters as :func:`hp_features` encodes them
  (architecture one-hot and the initialisation scale, in one space shared by the tasks so that
  a model can be carried from one task to another): the rule decides at epoch 0, as the spectrum
  does, and defers to its fallback after.
- :class:`PredictorPruner`: a :class:`aelle.pruners.SpectrumPruner` (startup, explore, the cut
  with its stand-ins, refits) that reads its features from one of those stores and predicts with
  a :class:`CapacityMLP` fitted in the study, or with any carried model. With
  ``calibrate=True`` a carried model's prediction is compared with the ``quantile`` of its own
  predictions for the study's completed trials instead of with their final values: a model
  carried from another task predicts in that task's units.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from optuna.study import StudyDirection
from torch import nn

from aelle.model import AeLLEConfig, _mlp, _Normalisation
from aelle.pruners import PrunerHooks, SpectrumPruner, SpectrumStore, TrainingData
from aelle.pruners._base import Scorer
from aelle.pruners._decision import cut_of, worse
from tasks.hyperparameters import (  # noqa: F401  (the benchmarks' names for them)
    ARCHITECTURES,
    HP_FEATURES,
    INIT_SCALE,
    TASK_ARCH,
    hp_features,
)


def curve_features(values, step: int, epochs: int) -> np.ndarray:
    """The loss curve up to ``step`` (values[0..step]), its last value carried to ``epochs``,
    and ``step / epochs``: one fixed-length row whatever the step."""
    v = [float(x) for x in values[: step + 1]]
    return np.array(v + [v[-1]] * (epochs - step) + [step / epochs])


class CurveStore(SpectrumStore):
    """A trial's loss curve as its "spectrum" (:func:`curve_features`), read from the values
    it reported (a step with an earlier step missing has none)."""

    def __init__(self, epochs: int):
        self.epochs = int(epochs)

    def _at(self, trial, step: int) -> np.ndarray | None:
        iv = trial.intermediate_values
        if any(s not in iv for s in range(step + 1)):
            return None
        return curve_features([iv[s] for s in range(step + 1)], step, self.epochs)

    def spectrum(self, study, trial, step):
        return self._at(trial, step) if step <= self.epochs else None

    def spectra(self, study, trials):
        out = {}
        for t in trials:
            steps = {s: self._at(t, s) for s in t.intermediate_values if s <= self.epochs}
            steps = {s: z for s, z in steps.items() if z is not None}
            if steps:
                out[t.number] = steps
        return out


class ParamStore(SpectrumStore):
    """A trial's hyperparameters (:func:`hp_features` of its params) as its "spectrum", at step
    0 only."""

    def __init__(self, task: str, settings: dict | None = None):
        self.task, self.settings = task, dict(settings or {})

    def spectrum(self, study, trial, step):
        return hp_features(self.task, trial.params, self.settings) if step == 0 else None

    def spectra(self, study, trials):
        return {t.number: {0: hp_features(self.task, t.params, self.settings)}
                for t in trials if 0 in t.intermediate_values}


class _Regressor(nn.Module):
    def __init__(self, width: int, cfg: AeLLEConfig):
        super().__init__()
        self.encoder = _mlp([width, *cfg.hidden, cfg.latent], cfg.dropout)
        self.head = nn.Linear(cfg.latent, 1)

    def forward(self, x):
        return self.head(self.encoder(x)).squeeze(-1)


class CapacityMLP:
    """See the module docstring: AeLLE's encoder and head on feature rows of any fixed width."""

    def __init__(self, config: AeLLEConfig | None = None):
        self.config = config or AeLLEConfig()
        self.net: _Regressor | None = None
        self._mean = self._scale = None
        self._targets: _Normalisation | None = None

    def fit(self, x, t) -> CapacityMLP:
        cfg = self.config
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or x.shape[0] != t.shape[0] or x.shape[0] < 2:
            raise ValueError(f"need (n, d) features and n targets, n >= 2; got {x.shape}, "
                             f"{t.shape}")
        if not (np.isfinite(x).all() and np.isfinite(t).all()):
            raise ValueError("features and targets must be finite")
        if cfg.max_spectra is not None and x.shape[0] > cfg.max_spectra:
            keep = np.sort(np.random.default_rng(cfg.seed).choice(x.shape[0], cfg.max_spectra,
                                                                  replace=False))
            x, t = x[keep], t[keep]
        spread = x.std(0)
        self._mean, self._scale = x.mean(0), np.where(spread > 1e-12, spread, 1.0)
        self._targets = _Normalisation.fit(x, t, cfg)  # only its target half is used
        xn = torch.from_numpy(((x - self._mean) / self._scale).astype(np.float32))
        tn = torch.from_numpy(self._targets.targets(t, cfg.target_clip).astype(np.float32))
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            self.net = _Regressor(x.shape[1], cfg)
            opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr,
                                   weight_decay=cfg.weight_decay, foreach=True)
            self.net.train()
            n = xn.shape[0]
            for _ in range(cfg.epochs):
                order = torch.randperm(n)
                for i in range(0, n, cfg.batch_size):
                    idx = order[i:i + cfg.batch_size]
                    err = tn[idx] - self.net(xn[idx])
                    loss = err.abs().mean() if cfg.target_norm == "l1" else (err ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            self.net.eval()
        return self

    def predict(self, x) -> np.ndarray:
        """(n,) predicted final values, in the targets' units."""
        if self.net is None:
            raise RuntimeError("this CapacityMLP has not been fitted")
        xn = (np.asarray(x, dtype=np.float64) - self._mean) / self._scale
        with torch.no_grad():
            out = self.net(torch.from_numpy(np.atleast_2d(xn).astype(np.float32)))
        return self._targets.targets_back(out.double().numpy())

    @property
    def version(self) -> str:
        h = hashlib.sha256()
        for tensor in self.net.state_dict().values():
            h.update(tensor.detach().numpy().tobytes())
        return "mlp-" + h.hexdigest()[:12]


class _ModelScorer(Scorer):
    """Prune when the model's prediction is worse than the cut: the study's (``threshold``
    None), or a fixed one in the model's own units."""

    def __init__(self, model, threshold: float | None = None):
        self.model, self.threshold = model, threshold
        self.needs_cut = threshold is None
        base = getattr(model, "version", type(model).__name__)
        self.version = base if threshold is None else f"{base} < {threshold:.6g}"

    def predict(self, spectrum):
        return float(np.asarray(self.model.predict([spectrum])).ravel()[0])

    def decide(self, spectrum, cut, direction: StudyDirection):
        predicted = self.predict(spectrum)
        return worse(predicted, cut if self.threshold is None else self.threshold,
                     direction), predicted


class PredictorPruner(SpectrumPruner):
    """See the module docstring. ``store``: where the features come from (:class:`CurveStore`,
    :class:`ParamStore`, or the spectra themselves); ``model``: a carried fitted model with
    ``predict(rows) -> (n,)`` (a :class:`CapacityMLP` or an AeLLE), held for good unless
    ``calibrate``; ``config``: the :class:`CapacityMLP` settings for models fitted here. The
    other options are :class:`SpectrumPruner`'s."""

    def __init__(self, *, store: SpectrumStore, model=None, calibrate: bool = False,
                 config: AeLLEConfig | None = None, **options):
        if calibrate and model is None:
            raise ValueError("calibrate needs a carried model")
        if calibrate and options.get("reference_values") is not None:
            raise ValueError("a calibrated model's cut comes from its own predictions, not "
                             "from reference_values")
        self._config = config or AeLLEConfig()
        self._model, self._calibrate = model, bool(calibrate)
        if calibrate:  # the cut is not in final values: no stand-ins in it
            options.setdefault("cut_from", "completed")
        super().__init__(hooks=PrunerHooks(store), **options)
        if model is not None and not calibrate:
            self._refitter.install(_ModelScorer(model), hold=True)

    def _fit(self, data: TrainingData, good: np.ndarray, direction: StudyDirection):
        if self._calibrate:
            predicted = np.asarray(self._model.predict(data.spectra), dtype=np.float64)
            return _ModelScorer(self._model, cut_of(predicted, self._quantile, direction))
        return _ModelScorer(CapacityMLP(self._config).fit(np.stack(data.spectra), data.finals))
