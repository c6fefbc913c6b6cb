"""The JSON of a report (:func:`aelle.explain.report.report_json`) as a pydantic model: what the
coordinator accepts and stores as a trial's explanation. A number the report could not give
(a non-finite one) is null."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Num = float | None
TEXT = 4096  # the longest title, meta value or reason accepted


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def _same_length(self, *names: str) -> None:
        lengths = {n: len(getattr(self, n)) for n in names}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{' and '.join(names)} must have the same length, got "
                             + ", ".join(f"{n}: {k}" for n, k in lengths.items()))


class UnitDoc(_Doc):
    unit: int = Field(ge=0)
    initial: Num
    final: Num
    delta: Num
    settling_time: int = Field(ge=-1)
    amplitude: Num
    frequency: Num
    correlation: Num
    pearson: Num


class ResponsesDoc(_Doc):
    units: list[UnitDoc]
    sine_frequency: Num
    ranking_delta: list[int]
    ranking_amplitude: list[int]

    @model_validator(mode="after")
    def _lengths(self):
        self._same_length("units", "ranking_delta", "ranking_amplitude")
        return self


class AblationDoc(_Doc):
    counts: list[int]
    baseline: Num
    ranked: list[Num]
    random: list[Num]
    random_std: list[Num]
    metric: str = Field(max_length=64)
    loss: str = Field("relative output change on the probe", max_length=TEXT)

    @model_validator(mode="after")
    def _lengths(self):
        self._same_length("counts", "ranked", "random", "random_std")
        return self


class ComplexDoc(_Doc):
    re: list[Num]
    im: list[Num]

    @model_validator(mode="after")
    def _lengths(self):
        self._same_length("re", "im")
        return self


class LinearisationDoc(_Doc):
    poles_re: list[Num]
    poles_im: list[Num]
    zeros: list[list[ComplexDoc]]
    static_gain: list[list[Num]]
    dc_gain: list[list[Num]]
    spectral_radius: Num
    operating_residual: Num

    @model_validator(mode="after")
    def _lengths(self):
        self._same_length("poles_re", "poles_im")
        return self


class PointDoc(_Doc):
    kind: Literal["stable", "saddle", "unstable"]
    residual: Num
    hits: int = Field(ge=0)
    spectral_radius: Num
    output: list[Num]


class TransitionDoc(_Doc):
    source: int = Field(ge=0)
    target: int = Field(ge=-1)
    channel: int = Field(ge=0)
    amplitude: Num


class AttractorsDoc(_Doc):
    points: list[PointDoc]
    transitions: list[TransitionDoc]
    n_stable: int = Field(ge=0)

    @model_validator(mode="after")
    def _indices(self):
        n = len(self.points)
        bad = [t for t in self.transitions if t.source >= n or t.target >= n]
        if bad:
            raise ValueError(f"a transition names a point beyond the {n} points: {bad[0]}")
        stable = sum(p.kind == "stable" for p in self.points)
        if self.n_stable != stable:
            raise ValueError(f"n_stable is {self.n_stable} but {stable} points are stable")
        return self


class KoopmanDoc(_Doc):
    rank: int = Field(ge=0)
    eigenvalues_re: list[Num]
    eigenvalues_im: list[Num]
    memory_horizons: list[Num]
    epsilon: Num
    relative_error: Num
    accuracy_error: Num
    output_error: Num

    @model_validator(mode="after")
    def _lengths(self):
        self._same_length("eigenvalues_re", "eigenvalues_im", "memory_horizons")
        return self


class LyapunovDoc(_Doc):
    exponents: list[Num]
    max_exponent: Num
    alignment: list[list[Num]]
    ftle_final: list[Num]
    epochs: list[int]
    across_epochs: list[list[Num]]

    @model_validator(mode="after")
    def _lengths(self):
        self._same_length("epochs", "across_epochs")
        return self


class TruePolesDoc(ComplexDoc):
    distance: Num


class ReportDoc(_Doc):
    """A report's JSON, every method's section; ``true_poles`` where the task knows them."""

    title: str = Field(max_length=TEXT)
    meta: dict[str, str | int | float | bool | None]
    seconds: dict[str, Num]
    skipped: dict[str, str]
    responses: ResponsesDoc | None
    ablation: AblationDoc | None
    linearisation: LinearisationDoc
    attractors: AttractorsDoc
    koopman: KoopmanDoc
    lyapunov: LyapunovDoc
    true_poles: TruePolesDoc | None = None

    @model_validator(mode="after")
    def _texts(self):
        for where, d in (("meta", self.meta), ("skipped", self.skipped)):
            long = [k for k, v in d.items() if len(k) > TEXT or len(str(v)) > TEXT]
            if long:
                raise ValueError(f"{where}.{long[0][:64]} is longer than {TEXT} characters")
        return self
