"""Minibatch training by backpropagation through time, shared by the classification tasks."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from tasks.base import TrialRun


class SupervisedRun(TrialRun):
    """Adam on cross-entropy, gradient norm clipped; subclasses say how to batch their data."""

    def __init__(self, model: nn.Module, lr: float, grad_clip: float | None,
                 generator: torch.Generator, device: torch.device):
        self.model = model.to(device)
        self.device = device
        self.generator = generator
        self.grad_clip = grad_clip
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    @abstractmethod
    def batches(self, train: bool) -> Iterator[tuple[Tensor, Tensor]]:
        """(inputs, targets) on the device: the training set shuffled, or the validation set."""

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

    def shuffled(self, n: int, batch_size: int) -> Iterator[Tensor]:
        """Index batches of a seeded permutation of range(n)."""
        order = torch.randperm(n, generator=self.generator)
        yield from order.split(batch_size)
