"""Response characterisation of single LSTM units (seed 000, Hasani et al.): each unit is
decoupled from the others (its own gate rows, its own recurrent weight only) and fed a step and
a sinusoid; the metrics rank the units, and ablating them checks the ranking.

Step ``x_t = [t >= T/2]``: the initial response (just before the step), the final response (at
T), their difference (delta), and the settling time: the steps after the input change until the
output stays within the 90 % window, |y_t - y_final| <= 0.1 |y_final - y_initial|. Sinusoid
``x_t = sin(2 pi f t)``: over the second half, the amplitude (max - min), the dominant frequency
(argmax of the periodogram, DC excluded) and the correlation with the input, the dot product of
the centred signals (and its normalised form, Pearson's r). The input signal drives every input
channel along ``direction`` (default: all ones).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import scipy.signal
import torch

from aelle.cells.lstm import LSTMCell
from aelle.explain.network import Network

METRICS = ("initial", "final", "delta", "settling_time", "amplitude", "frequency",
           "correlation", "pearson")


@dataclasses.dataclass(frozen=True)
class UnitResponse:
    unit: int
    initial: float
    final: float
    delta: float
    settling_time: int       # steps; -1 where the step changes nothing (delta = 0)
    amplitude: float
    frequency: float         # cycles per step
    correlation: float
    pearson: float


@dataclasses.dataclass(frozen=True)
class Responses:
    units: tuple[UnitResponse, ...]
    step: np.ndarray         # (N, T) responses to the step
    sine: np.ndarray         # (N, T) responses to the sinusoid
    step_input: np.ndarray   # (T,)
    sine_input: np.ndarray   # (T,)
    sine_frequency: float

    def metric(self, name: str) -> np.ndarray:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
        return np.array([getattr(u, name) for u in self.units], dtype=float)

    def ranking(self, metric: str = "delta") -> np.ndarray:
        """Units by decreasing |metric| (the seed's predicted contributors first)."""
        return np.argsort(-np.abs(self.metric(metric)), kind="stable")

    def to_dict(self) -> dict:
        return {"units": [dataclasses.asdict(u) for u in self.units],
                "sine_frequency": self.sine_frequency,
                "ranking_delta": self.ranking("delta").tolist(),
                "ranking_amplitude": self.ranking("amplitude").tolist()}


def require_lstm(network: Network, method: str) -> LSTMCell:
    if not isinstance(network.cell, LSTMCell):
        raise TypeError(f"{method} decouples single LSTM units (gated cells with a cell state); "
                        f"this network's cell is {type(network.cell).__name__} "
                        f"({network.cell.name})")
    return network.cell


def unit_cell(cell: LSTMCell, unit: int) -> LSTMCell:
    """Unit ``unit`` alone: its four gate rows of the input weights, its own recurrent weight."""
    n = cell.hidden_size
    if not 0 <= unit < n:
        raise ValueError(f"unit must lie in 0..{n - 1}, got {unit}")
    rows = [g * n + unit for g in range(4)]
    return LSTMCell(cell.weight_ih[:, rows], cell.weight_hh[:, rows][:, :, [unit]],
                    cell.bias[:, rows])


def responses(network: Network, steps: int = 200, frequency: float = 0.05,
              amplitude: float = 1.0, direction: Sequence[float] | None = None,
              window: float = 0.9) -> Responses:
    """The step and sinusoid responses of every decoupled LSTM unit of ``network``."""
    cell = require_lstm(network, "response characterisation")
    if steps < 8:
        raise ValueError(f"steps must be >= 8, got {steps}")
    if not 0.0 < frequency < 0.5:
        raise ValueError(f"frequency must lie in (0, 0.5) cycles per step, got {frequency}")
    if not 0.0 < window < 1.0:
        raise ValueError(f"window must lie in (0, 1), got {window}")
    d = _direction(direction, network.input_size, network.dtype)
    t = np.arange(steps)
    step_in = amplitude * (t >= steps // 2).astype(float)
    sine_in = amplitude * np.sin(2 * np.pi * frequency * t)
    n = cell.hidden_size
    # all N decoupled units at once: a block-diagonal recurrent matrix
    whh = torch.zeros_like(cell.weight_hh)
    for g in range(4):
        rows = torch.arange(n) + g * n
        whh[0, rows, torch.arange(n)] = cell.weight_hh[0, rows, torch.arange(n)]
    decoupled = LSTMCell(cell.weight_ih, whh, cell.bias)
    runs = []
    for signal in (step_in, sine_in):
        x = torch.as_tensor(signal, dtype=network.dtype)[:, None] * d  # (T, I)
        s = torch.zeros(1, 1, decoupled.state_size, dtype=network.dtype)
        out = []
        with torch.no_grad():
            for k in range(steps):
                s = decoupled.step(s, x[k][None, None])
                out.append(decoupled.output(s)[0, 0])
        runs.append(torch.stack(out, 1).numpy())   # (N, T)
    step_out, sine_out = runs
    units = tuple(_unit(u, step_out[u], sine_out[u], sine_in, steps // 2, 1.0 - window)
                  for u in range(n))
    return Responses(units, step_out, sine_out, step_in, sine_in, frequency)


def settling_time(y: np.ndarray, start: int, tolerance: float = 0.1) -> int:
    """Steps after the input change at ``start`` until y stays within ``tolerance`` |delta| of
    its final value (1: already there at the first step after the change); -1 if delta = 0."""
    initial, final = y[start - 1], y[-1]
    band = tolerance * abs(final - initial)
    if band == 0:
        return -1
    outside = np.nonzero(np.abs(y[start:] - final) > band)[0]
    return 1 if len(outside) == 0 else int(outside[-1]) + 2


def _unit(u, step_y, sine_y, sine_in, start, tolerance) -> UnitResponse:
    half = len(sine_y) // 2
    ys, xs = sine_y[half:], sine_in[half:]
    freqs, psd = scipy.signal.periodogram(ys - ys.mean())
    freq = float(freqs[1:][np.argmax(psd[1:])]) if len(freqs) > 1 else 0.0
    xc, yc = xs - xs.mean(), ys - ys.mean()
    denom = np.sqrt((xc ** 2).sum() * (yc ** 2).sum())
    return UnitResponse(
        unit=u, initial=float(step_y[start - 1]), final=float(step_y[-1]),
        delta=float(step_y[-1] - step_y[start - 1]),
        settling_time=settling_time(step_y, start, tolerance),
        amplitude=float(ys.max() - ys.min()), frequency=freq,
        correlation=float(xc @ yc), pearson=float(xc @ yc / denom) if denom > 0 else 0.0)


@dataclasses.dataclass(frozen=True)
class Ablation:
    counts: tuple[int, ...]
    baseline: float
    ranked: tuple[float, ...]            # loss with the top-k ranked units ablated
    random: tuple[float, ...]            # mean loss over random draws of k units
    random_std: tuple[float, ...]
    metric: str
    loss: str = "relative output change on the probe"   # what the loss values measure

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def ablate(network: Network, units: Sequence[int]) -> Network:
    """The network with ``units`` silenced: nothing reads their output h (their columns of the
    recurrent weights and of the readout are zero), which is the network with h_u held at 0."""
    cell = network.cell
    if not hasattr(cell, "weight_hh"):
        raise TypeError(f"ablation silences columns of weight_hh; {type(cell).__name__} has none")
    units = list(units)
    bad = [u for u in units if not 0 <= u < network.hidden_size]
    if bad:
        raise ValueError(f"units {bad} out of range 0..{network.hidden_size - 1}")
    whh = cell.weight_hh.clone()
    whh[..., units] = 0.0
    w = network.readout_weight.clone()
    w[:, units] = 0.0
    return Network(dataclasses.replace(cell, weight_hh=whh), w, network.readout_bias)


def ablation(network: Network, ranking: Sequence[int], loss: Callable[[Network], float],
             counts: Sequence[int], draws: int = 10, seed: int = 0,
             metric: str = "delta", loss_name: str = Ablation.loss) -> Ablation:
    """Loss with the top-k units of ``ranking`` ablated against k random units, per k;
    ``loss_name`` says what ``loss`` measures."""
    rng = np.random.default_rng(seed)
    n = network.hidden_size
    ranked, rand, rand_std = [], [], []
    for k in counts:
        if not 1 <= k <= n:
            raise ValueError(f"ablation counts must lie in 1..{n}, got {k}")
        ranked.append(float(loss(ablate(network, ranking[:k]))))
        vals = [float(loss(ablate(network, rng.choice(n, k, replace=False).tolist())))
                for _ in range(draws)]
        rand.append(float(np.mean(vals)))
        rand_std.append(float(np.std(vals)))
    return Ablation(tuple(counts), float(loss(network)), tuple(ranked), tuple(rand),
                    tuple(rand_std), metric, loss_name)


def _direction(direction, size, dtype) -> torch.Tensor:
    if direction is None:
        return torch.ones(size, dtype=dtype)
    d = torch.as_tensor(direction, dtype=dtype).reshape(-1)
    if d.numel() != size:
        raise ValueError(f"direction must have {size} values, got {d.numel()}")
    return d
