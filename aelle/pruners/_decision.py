"""What a pruner decided about one report, as a value, and the small pure helpers it needs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial


class Kind(StrEnum):
    """Why a decision came out the way it did."""

    PRUNE = "prune"          # the model (or fitted rule) says the trial ends on the worse side
    CONTINUE = "continue"    # ... on the better side
    EXPLORE = "explore"      # the model would prune, but the trial is kept to calibrate it
    FALLBACK = "fallback"    # no model yet, no spectrum, or startup: the fallback pruner decided
    DIVERGED = "diverged"    # a non-finite value or spectrum
    CURVE = "curve"          # a learning-curve pruner decided (after the spectrum's steps)


@dataclass(frozen=True)
class Decision:
    """One decision about one reported step.

    ``prediction``: the final value the model predicts; ``model``: the version of the model or
    rule that decided; ``cut``: the value the prediction was compared with; ``explore``: the
    trial is one the model never prunes; ``shadow``: what a pruner run in shadow mode would
    have done (the decision itself never prunes then).
    """

    prune: bool
    kind: Kind
    step: int | None
    reason: str | None = None
    prediction: float | None = None
    model: str | None = None
    cut: float | None = None
    explore: bool = False
    shadow: bool | None = None

    def describe(self) -> str | None:
        """One line for people: the kind, and the detail behind it."""
        detail = self.reason
        if detail is None and self.prediction is not None and self.cut is not None:
            side = "worse than" if self.kind == Kind.PRUNE else "within"
            detail = f"predicted final {self.prediction:.4g} {side} the cut {self.cut:.4g}"
        if detail is None:
            return None if self.kind == Kind.CONTINUE else str(self.kind)
        return f"{self.kind}: {detail}"

    def attrs(self) -> dict:
        """The decision as JSON-able fields, the ones that are set."""
        out = {k: v for k, v in asdict(self).items()
               if v is not None and k not in ("prune", "explore", "shadow")}
        out["decision"] = str(out.pop("kind"))
        if self.explore:
            out["explore"] = True
        return out


def cut_of(values: np.ndarray, quantile: float, direction: StudyDirection) -> float:
    """The value a trial must beat: the ``quantile`` best fraction of ``values`` lies on its
    better side."""
    q = quantile if direction == StudyDirection.MINIMIZE else 1.0 - quantile
    return float(np.quantile(values, q))


def worse(value: float, cut: float, direction: StudyDirection) -> bool:
    return value > cut if direction == StudyDirection.MINIMIZE else value < cut


def better(values: np.ndarray, cut: float, direction: StudyDirection) -> np.ndarray:
    return values < cut if direction == StudyDirection.MINIMIZE else values > cut


def finite_values(trials: list[FrozenTrial]) -> np.ndarray:
    """The finite final values of ``trials``."""
    return np.array([t.value for t in trials if t.value is not None and math.isfinite(t.value)],
                    dtype=np.float64)
