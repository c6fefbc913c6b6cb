"""The n-bit flip-flop (Sussillo and Barak 2013; seed 003's memory task), n = ``bits`` = 3.

Each of n input channels carries sparse pulses of +1 or -1 (probability ``pulse_prob`` a step,
and one pulse on every channel at step 0, so that every target is defined); the target on
channel k is the sign of its last pulse. A network that solves it holds 2^n stable fixed points
(one per memory word) with pulse-driven transitions between them, which
:func:`aelle.explain.attractor_graph` should find. Loss: mean squared error.

Parameters: ``arch`` (lstm, gru, rnn), ``p`` (recurrent init scale), ``lr``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aelle.cells import registry as cells
from aelle.cells.base import TwoStateCell
from tasks import sequences
from tasks.base import Settings, Task, positive
from tasks.registry import register


@dataclass(frozen=True)
class FlipFlopSettings(Settings):
    epochs: int = 30
    hidden: int = 32
    bits: int = 3
    seq_len: int = 100
    pulse_prob: float = 0.05
    train_sequences: int = 512
    val_sequences: int = 128
    batch_size: int = 32
    grad_clip: float | None = 1.0
    data_seed: int = 0
    spectrum_sequences: int = 16
    spectrum_steps: int = 100
    spectrum_warmup: int = 20

    def __post_init__(self):
        super().__post_init__()
        positive(self, "hidden", "bits", "seq_len", "train_sequences", "val_sequences",
                 "batch_size", "grad_clip")
        if not 0 < self.pulse_prob < 1:
            raise ValueError(f"pulse_prob must lie in (0, 1), got {self.pulse_prob}")
        if self.data_seed < 0:
            raise ValueError(f"data_seed must be >= 0, got {self.data_seed}")


def flipflop_data(n: int, steps: int, bits: int, pulse_prob: float, rng: np.random.Generator):
    """(inputs, targets), each (n, steps, bits) float32."""
    sign = rng.choice([-1.0, 1.0], size=(n, steps, bits))
    pulse = rng.random((n, steps, bits)) < pulse_prob
    pulse[:, 0] = True
    u = np.where(pulse, sign, 0.0)
    last = np.where(pulse, np.arange(steps)[None, :, None], -1)
    last = np.maximum.accumulate(last, axis=1)
    y = np.take_along_axis(u, last, axis=1)
    return u.astype(np.float32), y.astype(np.float32)


@register
class FlipFlop(Task):
    name = "flipflop"
    settings_class = FlipFlopSettings
    loss_name = "mse"

    def search_space(self):
        return sequences.search_space()

    def check_params(self, params, settings) -> None:
        super().check_params(params, settings)
        sequences.check(params)

    def state_size(self, params, settings: FlipFlopSettings) -> int:
        two = issubclass(cells.get(params["arch"]), TwoStateCell)
        return settings.hidden * (2 if two and settings.spectrum_state == "full" else 1)

    def build(self, params, settings: FlipFlopSettings, seed, device):
        rng = np.random.default_rng(settings.data_seed)
        s = settings
        ut, yt = flipflop_data(s.train_sequences, s.seq_len, s.bits, s.pulse_prob, rng)
        uv, yv = flipflop_data(s.val_sequences, s.seq_len, s.bits, s.pulse_prob, rng)
        g = torch.Generator().manual_seed(seed)
        model = sequences.regressor(params["arch"], s.bits, s.hidden, s.bits, float(params["p"]),
                                    g)
        to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        probe = sequences.probe(to(uv), s.spectrum_sequences, s.spectrum_warmup,
                                s.spectrum_steps)
        return sequences.RegressionRun(model, (to(ut), to(yt)), (to(uv), to(yv)), probe,
                                       lr=float(params["lr"]), batch_size=s.batch_size,
                                       grad_clip=s.grad_clip, generator=g, device=device)
