"""Minibatch training by backpropagation through time, shared by the classification tasks."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

import aelle
from aelle.cells.base import Cell
from tasks.base import SpectrumProbe, TrialRun


class SupervisedRun(TrialRun):
    """Adam on cross-entropy, gradient norm clipped, over a training and a validation set of
    examples on the device; a subclass says how a batch of examples becomes (inputs, targets)."""

    val_batch_size = 1024

    def __init__(self, model: nn.Module, train: tuple[Tensor, ...], val: tuple[Tensor, ...],
                 probe: SpectrumProbe, *, lr: float, batch_size: int, grad_clip: float | None,
                 generator: torch.Generator, device: torch.device):
        self.model = model.to(device)
        self.train_set, self.val_set, self.probe = train, val, probe
        self.device = device
        self.generator = generator
        self.batch_size = batch_size
        self.grad_clip = grad_clip
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def example(self, *batch: Tensor) -> tuple[Tensor, Tensor]:
        """(inputs, targets) from a batch of examples; default: they are stored as such."""
        return batch

    def batches(self, train: bool) -> Iterator[tuple[Tensor, Tensor]]:
        """The training set in a seeded shuffled order, or the validation set in order."""
        data = self.train_set if train else self.val_set
        n = len(data[0])
        if train:
            # drawn on the CPU (the seeded generator), moved once: a blocking copy per batch
            # would wait for the GPU to finish the previous batch every time
            order = torch.randperm(n, generator=self.generator).to(self.device)
            for idx in order.split(self.batch_size):
                yield self.example(*(t[idx] for t in data))
        else:
            for i in range(0, n, self.val_batch_size):
                yield self.example(*(t[i:i + self.val_batch_size] for t in data))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.cross_entropy(output.flatten(0, -2), target.flatten())

    def train_epoch(self) -> float:
        self.model.train()
        total, count = torch.zeros((), device=self.device), 0
        for x, y in self.batches(train=True):
            loss = self.loss(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            total += loss.detach() * len(y)
            count += len(y)
        return float(total) / count

    @torch.no_grad()
    def validate(self) -> float:
        self.model.eval()
        total, count = torch.zeros((), device=self.device, dtype=torch.float64), 0
        for x, y in self.batches(train=False):
            total += self.loss(self.model(x), y).double() * len(y)
            count += len(y)
        return float(total) / count

    def lyapunov_cell(self, state: str, dtype: torch.dtype | None = None) -> Cell:
        return aelle.cell_for(self.model, state, dtype=dtype)

    def spectrum_probe(self) -> SpectrumProbe:
        return self.probe
