import torch

from aelle.cells import get, names
from aelle.cells.base import TwoStateCell
from aelle.cells.layered import LayeredCell


def random_cell(name, input_size=3, hidden=5, layers=1, n_networks=2, seed=0, **kw):
    """A registered architecture with random weights, stacked as ``n_networks`` networks."""
    g = torch.Generator().manual_seed(seed)
    cls = get(name)
    cells = []
    for layer in range(layers):
        cells.append(cls.random(input_size if layer == 0 else hidden, hidden, p=0.6,
                                n_networks=n_networks, generator=g, **kw))
    return cells[0] if layers == 1 else LayeredCell(tuple(cells))


def cases():
    """Every registered architecture, with each state convention and layer count it allows."""
    out = []
    for name in names():
        extra = [{}] if name != "rnn" else [{"nonlinearity": "tanh"}, {"nonlinearity": "relu"}]
        for kw in extra:
            two_state = issubclass(get(name), TwoStateCell)
            for state in ("full", "hidden") if two_state else (None,):
                k = dict(kw, **({"state": state} if state else {}))
                for layers in (1, 3) if get(name).layerable else (1,):
                    out.append((name, layers, k))
    return out
