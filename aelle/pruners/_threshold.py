"""The baseline spectrum pruner: a threshold on the max or mean Lyapunov exponent."""

from __future__ import annotations

import math

import numpy as np

from aelle.classifiers import Threshold, le_statistics
from aelle.pruners._base import Scorer, SpectrumPruner
from aelle.validate import check_choice, check_number


class _ThresholdScorer(Scorer):
    needs_cut = False

    def __init__(self, statistic: str, rule: Threshold):
        self.statistic, self.rule = statistic, rule
        self.version = f"{statistic} {'<' if rule.below else '>'} {rule.threshold:.6g}"

    def decide(self, spectrum, cut, direction):
        value = le_statistics([spectrum])[self.statistic]
        return not bool(self.rule.predict(value)[0]), None


class LEThresholdPruner(SpectrumPruner):
    """Prune when the max (or mean) Lyapunov exponent is on the wrong side of a threshold:
    fitted for best F1 of "final value beats the cut" on the completed trials' spectra, or
    fixed (``threshold``, with ``below``: good when the statistic is below it). The other
    options are :class:`SpectrumPruner`'s."""

    def __init__(self, statistic: str = "max_le", *, threshold: float | None = None,
                 below: bool = True, **options):
        self._statistic = check_choice("statistic", statistic, ("max_le", "mean_le"))
        check_number("threshold", threshold, optional=True)
        super().__init__(**options)
        if threshold is not None:
            self._refitter.install(_ThresholdScorer(statistic, Threshold(threshold, below)),
                                   hold=True)

    def _fit(self, data, good, direction):
        stat = le_statistics(data.spectra)[self._statistic]
        if good.all() or not good.any():  # one class only: nothing to separate yet
            return _ThresholdScorer(self._statistic, Threshold(math.inf, below=True))
        return _ThresholdScorer(self._statistic, Threshold.best_f1(np.asarray(stat), good))
