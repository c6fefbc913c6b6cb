"""Sequential MNIST, row by row, over eight recurrent architectures (Chapter 3, Appendix A.3).

Each image is a sequence of its rows (28 steps of 28 pixels for MNIST; 8 of 8 for the digits
that ship with scikit-learn, the default). The last hidden state is read out into ten classes.

Parameters: ``arch`` and the init scale ``p_<arch>`` of that architecture (conditional: a trial
draws only the range of its architecture), the dissertation's per-architecture ranges.

The spectrum is driven by a stream of consecutive validation images (image after image, the
network never reset), so that T can exceed one image: the digits are only 8 rows long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from torch import Tensor, nn

from aelle.cells import registry as cells
from aelle.cells.base import Cell, TwoStateCell
from tasks import data
from tasks.base import Settings, SpectrumProbe, Task, positive, require, suggest
from tasks.models import recurrent
from tasks.registry import register
from tasks.supervised import SupervisedRun

# Chapter 3, Appendix A.3 (Table A1 gives ASRNN 0.1-30; the text 0.1-50: the text is used).
P_RANGES = {
    "lstm": (0.1, 3.0), "gru": (0.1, 3.0), "rnn": (0.1, 3.0), "asrnn": (0.1, 50.0),
    "cornn": (0.1, 30.0), "lipschitz": (0.1, 20.0), "noisy": (0.1, 5.0), "lem": (0.1, 10.0),
}
ARCHS = tuple(P_RANGES)
# The state convention "auto" stands for. coRNN and LEM: the full (y, z) map; their hidden
# convention (dy/dy with z held) is I + O(dt^2) for the coRNN, so its spectrum barely moves with
# the weights. LSTM: the dissertation's hidden convention. One-state cells: the only one.
AUTO_STATE = {"cornn": "full", "lem": "full"}
SPLIT_SEED = 0  # train/validation split of a single-file data set: the same for every trial


@dataclass(frozen=True)
class SMNISTSettings(Settings):
    """data_dir: a directory of MNIST IDX files (default: scikit-learn's digits).
    train_size / val_size: use only the first n examples (None: all)."""

    epochs: int = 10
    hidden: int = 64
    data_dir: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    grad_clip: float | None = 1.0
    spectrum_sequences: int = 32
    spectrum_steps: int = 112
    spectrum_warmup: int = 28

    def __post_init__(self):
        super().__post_init__()
        positive(self, "hidden", "train_size", "val_size", "batch_size", "lr", "grad_clip")


class SequenceClassifier(nn.Module):
    def __init__(self, core: nn.Module, hidden: int, n_classes: int = 10):
        super().__init__()
        self.core = core
        self.readout = nn.Linear(hidden, n_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, I) -> (B, classes)
        return self.readout(self.core(x))

    def lyapunov_cell(self, state: str = "full", dtype: torch.dtype | None = None) -> Cell:
        return self.core.lyapunov_cell(state=state, dtype=dtype)


def load(settings: SMNISTSettings) -> tuple[data.Images, data.Images]:
    """(train, validation) images."""
    if settings.data_dir is None:
        train, val = _split(data.digits())
    else:
        found = data.mnist(settings.data_dir)
        if "train" in found and "test" in found:
            train, val = found["train"], found["test"]
        else:
            train, val = _split(next(iter(found.values())))
    return (_head(train, settings.train_size), _head(val, settings.val_size))


def _split(images: data.Images, train_fraction: float = 0.8):
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images.labels))
    cut = round(train_fraction * len(order))
    return images.take(order[:cut]), images.take(order[cut:])


def _head(images: data.Images, n: int | None) -> data.Images:
    return images if n is None else images.take(np.arange(min(n, len(images.labels))))


class SMNISTRun(SupervisedRun):
    def __init__(self, model, train, val, settings: SMNISTSettings, generator, device):
        to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        val_x = to(val.images)
        super().__init__(model, (to(train.images), to(train.labels)), (val_x, to(val.labels)),
                         _image_stream(val_x, settings), lr=settings.lr,
                         batch_size=settings.batch_size, grad_clip=settings.grad_clip,
                         generator=generator, device=device)


def _image_stream(images: Tensor, settings: SMNISTSettings) -> SpectrumProbe:
    """B streams of consecutive validation images, rows as steps: (B, W + T, cols).

    Streams start at evenly spaced images and wrap around the validation set when it is too
    small to give every stream its own images (the 359 validation digits, for instance)."""
    n, rows, cols = images.shape
    length = settings.spectrum_warmup + settings.spectrum_steps
    per_seq = -(-length // rows)
    b = settings.spectrum_sequences
    starts = torch.arange(b, device=images.device) * max(n // b, 1)
    index = (starts[:, None] + torch.arange(per_seq, device=images.device)) % n
    stream = images[index].reshape(b, per_seq * rows, cols)[:, :length]
    return SpectrumProbe(stream.contiguous(), settings.spectrum_warmup)


@register
class SMNIST(Task):
    name = "smnist"
    settings_class = SMNISTSettings
    loss_name = "cross-entropy"

    def search_space(self) -> dict[str, BaseDistribution]:
        space: dict[str, BaseDistribution] = {"arch": CategoricalDistribution(ARCHS)}
        space.update({f"p_{a}": FloatDistribution(lo, hi) for a, (lo, hi) in P_RANGES.items()})
        return space

    def suggest(self, trial: optuna.Trial, space=None, fixed=None) -> dict:
        """The architecture first, then only that architecture's init range."""
        space = self.search_space() if space is None else space
        fixed = dict(fixed or {})
        arch = fixed["arch"] if "arch" in fixed else suggest(trial, "arch", space["arch"])
        rest = {name: dist for name, dist in space.items()
                if name != "arch" and (not name.startswith("p_") or name == f"p_{arch}")}
        return {"arch": arch, **super().suggest(trial, rest, fixed)}

    def check_params(self, params, settings) -> None:
        super().check_params(params, settings)
        arch = require(params, "arch", str)
        if arch not in P_RANGES:
            raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
        require(params, f"p_{arch}", (int, float))

    def auto_state(self, params) -> str:
        return AUTO_STATE.get(params.get("arch"), "hidden")

    def state_size(self, params, settings: SMNISTSettings) -> int:
        two = issubclass(cells.get(params["arch"]), TwoStateCell)
        return settings.hidden * (2 if two and settings.spectrum_state == "full" else 1)

    def build(self, params, settings: SMNISTSettings, seed, device) -> SMNISTRun:
        arch = params["arch"]
        train, val = load(settings)
        g = torch.Generator().manual_seed(seed)
        core = recurrent(arch, train.images.shape[2], settings.hidden,
                         float(params[f"p_{arch}"]), g)
        model = SequenceClassifier(core, settings.hidden)
        return SMNISTRun(model, train, val, settings, g, device)
