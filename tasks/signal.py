"""Signal reconstruction by a FORCE-trained random rate network (Chapter 3, Appendix A.1).

The network x' = x + dt(-x + W r + w_fb z), r = tanh(x), z = w_out . r (``aelle`` cell
"force") generates a four-sine target with no input. W is sparse random connectivity of gain g
(Sussillo & Abbott 2009: density 0.1, entries N(0, g^2 / (0.1 N))), w_fb fixed uniform on
[-1, 1]; FORCE trains w_out by recursive least squares every ``learn_every`` steps while the
network runs, its output fed back through w_fb.

Target: four sines, frequencies integers in [1, 6] cycles per 120 s epoch and amplitudes
integers in [1, 11], drawn from ``target_seed`` (one target per study, so trials compare), then
scaled so that the sum of amplitudes is ``target_scale``: the feedback stays in the range the
network can produce. An epoch is 1,200 steps of dt = 0.1 s (one period of the target). The
validation loss is the MAE of the network running freely (no learning) for one more epoch.

The spectrum is that of the autonomous trained network, from ``spectrum_sequences`` points of
its free-running validation trajectory (random times), ``spectrum_steps`` steps each, with a QR
every ``spectrum_t_on`` = 10 steps (see SignalSettings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from torch import Tensor, nn

from aelle.cells.base import Cell
from aelle.cells.force import ForceCell
from tasks.base import Settings, SpectrumProbe, Task, TrialRun, positive, require
from tasks.registry import register


@dataclass(frozen=True)
class SignalSettings(Settings):
    epochs: int = 15
    hidden: int = 512
    steps: int = 1200
    dt: float = 0.1
    density: float = 0.1
    rls_alpha: float = 1.0
    learn_every: int = 2
    target_seed: int = 0
    target_scale: float = 1.5
    spectrum_sequences: int = 10
    spectrum_steps: int = 200
    spectrum_warmup: int = 0
    # The map is (1 - dt) I plus a small term: ten steps stay well conditioned, and QR every
    # 10 steps matched every step to 4e-8 on all 512 exponents at g = 1.4, 2.8x faster.
    spectrum_t_on: int = 10

    def __post_init__(self):
        super().__post_init__()
        positive(self, "hidden", "steps", "dt", "rls_alpha", "learn_every", "target_scale")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if self.target_seed < 0:
            raise ValueError(f"target_seed must be >= 0, got {self.target_seed}")


def four_sine(settings: SignalSettings) -> Tensor:
    """The target of one epoch, float64 (steps,)."""
    rng = np.random.default_rng(settings.target_seed)
    freqs = rng.integers(1, 7, size=4)
    amps = rng.integers(1, 12, size=4)
    t = np.arange(settings.steps) * settings.dt
    period = settings.steps * settings.dt
    f = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t / period)).sum(0)
    return torch.as_tensor(f * settings.target_scale / amps.sum())


class SignalRun(TrialRun):
    def __init__(self, g: float, connectivity: int, settings: SignalSettings, seed: int,
                 device: torch.device):
        n, dtype = settings.hidden, torch.float64
        self.settings, self.device = settings, device
        net = torch.Generator().manual_seed(connectivity)
        mask = torch.rand(n, n, generator=net, dtype=dtype) < settings.density
        scale = g / math.sqrt(settings.density * n)
        w = torch.randn(n, n, generator=net, dtype=dtype) * mask * scale
        w_fb = 2 * torch.rand(n, generator=net, dtype=dtype) - 1
        run = torch.Generator().manual_seed(seed)
        x0 = 0.5 * torch.randn(n, generator=run, dtype=dtype)
        zeros = lambda *shape: torch.zeros(*shape, dtype=dtype)  # noqa: E731
        self.cell = ForceCell(zeros(1, n, 0), w[None], zeros(1, n), w_fb[None],
                              torch.tensor([settings.dt], dtype=dtype)).to(device=device)
        self.x = x0.to(device)[None, None]                 # (1, 1, N): the running state
        self.p = torch.eye(n, dtype=dtype, device=device) / settings.rls_alpha
        self.target = four_sine(settings).to(device)
        self.no_input = torch.zeros(1, 1, 0, dtype=dtype, device=device)
        self.probe_rng = np.random.default_rng(seed)
        self.probe_states: Tensor | None = None

    def train_epoch(self) -> float:
        """One period of the target with FORCE (RLS on w_out) running; the MAE while learning."""
        cell, p = self.cell, self.p
        w = cell.w_out[0]  # a view: updated in place, the cell's feedback follows
        errors = torch.empty(self.settings.steps, dtype=torch.float64, device=self.device)
        x = self.x
        for t in range(self.settings.steps):
            x = cell.step(x, self.no_input)
            r = torch.tanh(x[0, 0])
            e = torch.dot(w, r) - self.target[t]
            errors[t] = e
            if t % self.settings.learn_every == 0:
                pr = p @ r
                c = 1.0 / (1.0 + torch.dot(r, pr))
                p.sub_(c * torch.outer(pr, pr))
                w.sub_((c * e) * pr)
        self.x = x
        return float(errors.abs().mean())

    def validate(self) -> float:
        """MAE of one free-running period from the current state; keeps states for the probe."""
        x, cell = self.x.clone(), self.cell
        states = torch.empty(self.settings.steps, cell.hidden_size, dtype=x.dtype,
                             device=self.device)
        for t in range(self.settings.steps):
            x = cell.step(x, self.no_input)
            states[t] = x[0, 0]
        z = cell.readout(states[None])[0]
        self.probe_states = states
        return float((z - self.target).abs().mean())

    def lyapunov_cell(self, state: str, dtype: torch.dtype | None = None) -> Cell:
        # nothing is combined: converting the copy is exact
        return self.cell.map_tensors(
            lambda t: t.to(dtype, copy=True) if dtype is not None and t.is_floating_point()
            else t.clone())

    def network(self) -> nn.Module:
        """The reservoir's tensors and its running state as buffers of one module, sharing
        their storage: loading a state dict into it loads this run."""
        net = nn.Module()
        for name in ("weight_ih", "weight_hh", "w_out", "w_fb", "dt"):
            net.register_buffer(name, getattr(self.cell, name))
        net.register_buffer("state", self.x)
        return net

    def spectrum_probe(self) -> SpectrumProbe:
        if self.probe_states is None:
            self.validate()
        s = self.settings
        times = np.sort(self.probe_rng.choice(s.steps, s.spectrum_sequences,
                                              replace=s.spectrum_sequences > s.steps))
        h0 = self.probe_states[torch.as_tensor(times, device=self.device)]
        inputs = torch.zeros(s.spectrum_sequences, s.spectrum_warmup + s.spectrum_steps, 0,
                             device=self.device)
        return SpectrumProbe(inputs, s.spectrum_warmup, h0.float())


@register
class Signal(Task):
    name = "signal"
    settings_class = SignalSettings
    loss_name = "MAE"

    def search_space(self) -> dict[str, BaseDistribution]:
        return {"g": FloatDistribution(1.0, 2.0), "connectivity": IntDistribution(0, 999_999)}

    def check_params(self, params, settings) -> None:
        super().check_params(params, settings)
        if require(params, "g", (int, float)) <= 0:
            raise ValueError(f"parameter g must be positive, got {params['g']}")
        if require(params, "connectivity", int) < 0:
            raise ValueError(f"parameter connectivity must be >= 0, got {params['connectivity']}")

    def state_size(self, params, settings: SignalSettings) -> int:
        return settings.hidden  # the rate network has one state vector

    def build(self, params, settings: SignalSettings, seed, device) -> SignalRun:
        return SignalRun(float(params["g"]), params["connectivity"], settings, seed, device)
