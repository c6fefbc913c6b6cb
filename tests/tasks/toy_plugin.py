"""A task module as a user would write one, for ``--task-module tests.tasks.toy_plugin``: a
tanh RNN that learns to echo a delayed input, from tensors made in memory."""

import torch
from optuna.distributions import FloatDistribution, IntDistribution
from torch import nn

from tasks import Data, NetworkTask


class Echo(nn.Module):
    def __init__(self, hidden: int, arch: str = "rnn"):
        super().__init__()
        self.core = {"rnn": nn.RNN, "lstm": nn.LSTM}[arch](1, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.core(x)
        return self.readout(out[:, -1])


class ToyEcho(NetworkTask):
    name = "toy_echo"
    version = "3"

    def search_space(self):
        return {"hidden": IntDistribution(4, 12), "lr": FloatDistribution(1e-3, 1e-2, log=True)}

    def data(self, settings):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(96, 10, 1, generator=g)
        y = x[:, -3]  # the input three steps back
        return Data(x[:64], y[:64], x[64:], y[64:])

    def model(self, params, settings):
        return Echo(params["hidden"])
