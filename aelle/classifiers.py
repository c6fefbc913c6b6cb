"""Classifiers of "will this network end in the better half?" on one or a few scores per network
(Chapter 3, Tables 3.1-3.3): a threshold chosen for best F1, the median split of a score, and the
orthant classifier of d principal components. Networks are "good" (the positive class) when
their final loss is below the split (the median by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from aelle.validate import check_int


def good_mask(final_losses, split: float | None = None) -> np.ndarray:
    """True where the final loss is below ``split`` (default: the median of ``final_losses``)."""
    t = np.asarray(final_losses, dtype=np.float64)
    return t < (np.median(t) if split is None else split)


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def scores(predicted_good, good) -> Scores:
    """Precision, recall and F1 of the positive ("good") class."""
    p, r, f, _ = precision_recall_fscore_support(np.asarray(good, bool),
                                                 np.asarray(predicted_good, bool),
                                                 average="binary", zero_division=0)
    return Scores(float(p), float(r), float(f))


def _as_1d(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] >= 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{what} must be one score per network, got shape {a.shape}")
    return a


def _check(x: np.ndarray, good: np.ndarray) -> np.ndarray:
    good = np.asarray(good, dtype=bool)
    if x.shape[0] != good.shape[0]:
        raise ValueError(f"{x.shape[0]} networks but {good.shape[0]} labels")
    if x.shape[0] < 2:
        raise ValueError("a classifier needs at least 2 labelled networks")
    if not np.isfinite(x).all():
        raise ValueError("scores must be finite")
    return good


class Classifier:
    kind = ""

    def predict(self, x) -> np.ndarray:  # (n,) or (n, d) -> (n,) bool: predicted good
        raise NotImplementedError

    def state(self) -> dict:
        raise NotImplementedError


class Threshold(Classifier):
    """Good on one side of a threshold on a single score: below it when ``below`` else above."""

    kind = "threshold"

    def __init__(self, threshold: float, below: bool):
        self.threshold, self.below = float(threshold), bool(below)

    @classmethod
    def best_f1(cls, x, good) -> Threshold:
        """The threshold and side with the best F1 on these networks (ties: the middle one)."""
        x = _as_1d(x, "x")
        good = _check(x, good)
        values = np.unique(x)
        cuts = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2,
                               [values[-1] + 1.0]])
        best = (-1.0, 0.0, True)
        for below in (True, False):
            pred = (x[None, :] < cuts[:, None]) if below else (x[None, :] > cuts[:, None])
            tp = (pred & good).sum(1)
            fp = (pred & ~good).sum(1)
            fn = (~pred & good).sum(1)
            f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
            top = np.flatnonzero(f1 == f1.max())
            if f1.max() > best[0]:
                best = (float(f1.max()), float(cuts[top[len(top) // 2]]), below)
        return cls(best[1], best[2])

    @classmethod
    def median(cls, x, good) -> Threshold:
        """Split at the median; the good side is the one holding more good networks."""
        x = _as_1d(x, "x")
        good = _check(x, good)
        m = float(np.median(x))
        low = x < m
        below = True if low.all() or not low.any() else good[low].mean() >= good[~low].mean()
        return cls(m, below)

    def predict(self, x) -> np.ndarray:
        x = _as_1d(x, "x")
        return x < self.threshold if self.below else x > self.threshold

    def state(self) -> dict:
        return {"kind": self.kind, "threshold": self.threshold, "below": self.below}


class Orthant(Classifier):
    """Table 3.3: the medians of d components cut space into 2^d cells; a cell is good when it
    holds more good than bad training networks; cells no training network fell in are bad."""

    kind = "orthant"

    def __init__(self, medians, good_cells):
        self.medians = np.asarray(medians, dtype=np.float64)
        self.good_cells = {int(c) for c in good_cells}

    @property
    def d(self) -> int:
        return len(self.medians)

    @classmethod
    def fit(cls, x, good, d: int) -> Orthant:
        check_int("d", d, low=1, high=30)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or d > x.shape[1]:
            raise ValueError(f"need (n, >= {d}) coordinates, got shape {x.shape}")
        x = x[:, :d]
        good = _check(x, good)
        medians = np.median(x, axis=0)
        cells = _cells(x, medians)
        good_cells = [c for c in np.unique(cells)
                      if good[cells == c].sum() > (~good[cells == c]).sum()]
        return cls(medians, good_cells)

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] < self.d:
            raise ValueError(f"need (n, >= {self.d}) coordinates, got shape {x.shape}")
        cells = _cells(x[:, :self.d], self.medians)
        return np.isin(cells, list(self.good_cells))

    def state(self) -> dict:
        return {"kind": self.kind, "medians": self.medians.tolist(),
                "good_cells": sorted(self.good_cells)}


def _cells(x: np.ndarray, medians: np.ndarray) -> np.ndarray:
    bits = (x > medians).astype(np.int64)
    return bits @ (1 << np.arange(x.shape[1], dtype=np.int64))


def classifier_from_state(state: dict) -> Classifier:
    kind = state.get("kind")
    if kind == Threshold.kind:
        return Threshold(state["threshold"], state["below"])
    if kind == Orthant.kind:
        return Orthant(state["medians"], state["good_cells"])
    raise ValueError(f"unknown classifier kind {kind!r}")


def le_statistics(spectra) -> dict[str, np.ndarray]:
    """Per network: the mean and the maximum Lyapunov exponent."""
    rows = [np.asarray(s, dtype=np.float64) for s in spectra]
    return {"mean_le": np.array([r.mean() for r in rows]),
            "max_le": np.array([r.max() for r in rows])}
