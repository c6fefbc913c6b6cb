"""The joint predictor (:mod:`aelle.pruners._joint`) fitted on recorded networks: every recorded
step of every network is a row, labelled with the network's log final (a network that never
finished, or finished above the cap, with the cap: the ``cap_quantile`` of the completed
networks' log finals, so that the trees spend no capacity on how badly a hopeless network ends).

The spectrum column is always the network's epoch-0 spectrum: the rule pays for one probe per
trial, on the untrained network.
"""

from __future__ import annotations

import numpy as np

from aelle.pruners._joint import JointModel, log_loss
from bench.predictors import hp_features


def hp_of(net) -> np.ndarray:
    return hp_features(net.task, net.params, net.settings)


def rows(model: JointModel, nets, cap: float):
    x, y, g, s = [], [], [], []
    for n in nets:
        if not n.values:
            continue
        target = min(log_loss(n.final), cap) if n.complete else cap
        hp = hp_of(n) if model.use_hp else None
        for e in range(min(len(n.values), model.epochs + 1)):
            x.append(model.features(n.spectra[0], n.values, e, hp))
            y.append(target)
            g.append(f"{n.task}:{n.index}")
            s.append(e)
    return np.stack(x), np.array(y), np.array(g), np.array(s)


def fit(nets, epochs: int, *, use_spectrum: bool = True, use_hp: bool = False,
        alpha: float = 0.1, cap_quantile: float = 0.9, seed: int = 0) -> JointModel:
    """A :class:`JointModel` cross-fitted on ``nets`` (``bench.anytime.Net``)."""
    finals = [log_loss(n.final) for n in nets if n.complete]
    if len(finals) < 10:
        raise ValueError(f"need at least 10 completed networks to fit, got {len(finals)}")
    cap = float(np.quantile(finals, cap_quantile))
    model = JointModel(epochs, use_spectrum=use_spectrum, use_hp=use_hp, alpha=alpha,
                       seed=seed, tasks=tuple(sorted({n.task for n in nets})), cap=cap)
    return model.fit(*rows(model, nets, cap))
