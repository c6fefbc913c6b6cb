"""Character prediction with a one-layer LSTM (CharRNN; Chapter 3, Appendix A.2).

The text is cut into sequences of ``seq_len`` + 1 characters; the network reads one-hot
characters and predicts the next at every position (cross-entropy). Sequences are split 80/20
into training and validation once per text (the same split for every trial); each trial trains
on its own random ``subset`` (30 %) of the training sequences, as in the dissertation, and is
validated on the whole validation split (or on its own 30 % with ``subset_validation``), so that
trials of a study are ranked on the same data.

Default text: the reference manual that ships with CPython; ``text_path`` takes any UTF-8 file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from torch import Tensor, nn

import aelle
from aelle.cells.base import Cell
from tasks import data
from tasks.base import Settings, SpectrumProbe, Task, positive, require
from tasks.models import uniform_
from tasks.registry import register
from tasks.supervised import SupervisedRun

SPLIT_SEED = 0


@dataclass(frozen=True)
class CharRNNSettings(Settings):
    """text_path: a UTF-8 text (default: CPython's reference manual). max_chars: use only the
    first n characters. subset: the share of training sequences each trial trains on."""

    epochs: int = 15
    text_path: str | None = None
    max_chars: int | None = None
    seq_len: int = 100
    subset: float = 0.3
    subset_validation: bool = False
    batch_size: int = 64
    grad_clip: float | None = 5.0
    spectrum_sequences: int = 10
    spectrum_steps: int = 100
    spectrum_warmup: int = 20

    def __post_init__(self):
        super().__post_init__()
        positive(self, "max_chars", "seq_len", "batch_size", "grad_clip")
        if not 0 < self.subset <= 1:
            raise ValueError(f"subset must be in (0, 1], got {self.subset}")


@dataclass(frozen=True)
class Corpus:
    vocab: str                 # sorted distinct characters
    train: np.ndarray          # (n, seq_len + 1) character indices
    val: np.ndarray
    val_stream: np.ndarray     # the validation text, contiguous, for the spectrum probe


def corpus(text_path: str | None, max_chars: int | None, seq_len: int) -> Corpus:
    """The text cut into sequences and split; cached per file version (path, size, mtime)."""
    version = None
    if text_path is not None:
        try:
            st = Path(text_path).stat()
            version = (st.st_size, st.st_mtime_ns)
        except OSError:
            pass  # read_text names the problem
    return _corpus(text_path, version, max_chars, seq_len)


@functools.lru_cache(maxsize=4)
def _corpus(text_path: str | None, version, max_chars: int | None, seq_len: int) -> Corpus:
    text = data.reference_manual() if text_path is None else data.read_text(text_path)
    if max_chars is not None:
        text = text[:max_chars]
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    points, ids = np.unique(codes, return_inverse=True)
    vocab = "".join(map(chr, points.tolist()))
    n = len(ids) // (seq_len + 1)
    if n < 5:
        where = text_path or "the reference manual"
        raise data.DataError(f"{where}: {len(ids)} characters make {n} sequences of "
                             f"{seq_len + 1}; at least 5 are needed")
    seqs = ids[: n * (seq_len + 1)].reshape(n, seq_len + 1)
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cut = max(1, round(0.8 * n))
    val = seqs[np.sort(order[cut:])]
    return Corpus(vocab, seqs[np.sort(order[:cut])], val, val.reshape(-1))


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int, dropout: float):
        super().__init__()
        self.vocab = vocab
        self.lstm = nn.LSTM(vocab, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, ids: Tensor) -> Tensor:  # (B, T) -> (B, T, vocab) logits
        out, _ = self.lstm(nn.functional.one_hot(ids, self.vocab).float())
        return self.decoder(self.dropout(out))

    def lyapunov_cell(self, state: str = "full", dtype: torch.dtype | None = None) -> Cell:
        return aelle.cell_for(self.lstm, state, dtype=dtype)


class CharRNNRun(SupervisedRun):
    """Examples are sequences of seq_len + 1 characters: inputs all but the last, targets all
    but the first."""

    val_batch_size = 256

    def __init__(self, model: CharLSTM, corpus: Corpus, settings: CharRNNSettings, lr: float,
                 generator, device):
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        train = _sample(corpus.train, settings.subset, rng)
        val = _sample(corpus.val, settings.subset, rng) if settings.subset_validation \
            else corpus.val
        super().__init__(model, (torch.as_tensor(train, device=device),),
                         (torch.as_tensor(val, device=device),),
                         _text_probe(corpus, settings, device), lr=lr,
                         batch_size=settings.batch_size, grad_clip=settings.grad_clip,
                         generator=generator, device=device)

    def example(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        return seq[:, :-1], seq[:, 1:]


def _sample(seqs: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    n = max(1, round(share * len(seqs)))
    return seqs[np.sort(rng.choice(len(seqs), n, replace=False))]


def _text_probe(corpus: Corpus, settings: CharRNNSettings, device) -> SpectrumProbe:
    """B stretches of the validation text, evenly spaced, one-hot: (B, W + T, vocab)."""
    length = settings.spectrum_warmup + settings.spectrum_steps
    b, stream = settings.spectrum_sequences, corpus.val_stream
    if len(stream) < length:
        raise ValueError(f"the validation text has {len(stream)} characters; the spectrum "
                         f"needs {length} (spectrum_warmup + spectrum_steps)")
    starts = np.linspace(0, len(stream) - length, b).astype(np.int64)
    ids = torch.as_tensor(np.stack([stream[s:s + length] for s in starts]), device=device)
    return SpectrumProbe(nn.functional.one_hot(ids, len(corpus.vocab)).float(),
                         settings.spectrum_warmup)


@register
class CharRNN(Task):
    name = "charrnn"
    settings_class = CharRNNSettings
    loss_name = "cross-entropy"

    def search_space(self) -> dict[str, BaseDistribution]:
        return {
            "hidden": CategoricalDistribution((64, 128, 256, 512)),
            "p": FloatDistribution(0.04, 0.40),
            "lr": FloatDistribution(1e-4, 1e-2, log=True),
            "dropout": FloatDistribution(0.0, 0.5),
        }

    def check_params(self, params, settings) -> None:
        super().check_params(params, settings)
        if require(params, "hidden", int) < 1:
            raise ValueError(f"parameter hidden must be positive, got {params['hidden']}")
        require(params, "p", (int, float))
        if not 0 <= require(params, "dropout", (int, float)) < 1:
            raise ValueError(f"parameter dropout must be in [0, 1), got {params['dropout']}")
        if require(params, "lr", (int, float)) <= 0:
            raise ValueError(f"parameter lr must be positive, got {params['lr']}")

    def state_size(self, params, settings: CharRNNSettings) -> int:
        return params["hidden"] * (2 if settings.spectrum_state == "full" else 1)  # LSTM (h, c)

    def build(self, params, settings: CharRNNSettings, seed, device) -> CharRNNRun:
        text = corpus(settings.text_path, settings.max_chars, settings.seq_len)
        g = torch.Generator().manual_seed(seed)
        model = CharLSTM(len(text.vocab), params["hidden"], float(params["dropout"]))
        uniform_(model, float(params["p"]), g)
        return CharRNNRun(model, text, settings, float(params["lr"]), g, device)
