"""All methods on one network, timed, with a progress bar: what the report shows."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from aelle.cells.lstm import LSTMCell
from aelle.explain.fixed_points import AttractorGraph, attractor_graph
from aelle.explain.koopman import KoopmanResult, koopman
from aelle.explain.linearise import Linearisation, linearise, pole_distance
from aelle.explain.lyapunov import LyapunovViews, lyapunov_views
from aelle.explain.network import Network, check_inputs
from aelle.explain.responses import Ablation, Responses, ablation, responses

METHODS = ("responses", "linearise", "attractors", "koopman", "lyapunov")


@dataclasses.dataclass(frozen=True)
class Explanation:
    title: str
    meta: dict
    responses: Responses | None
    ablation: Ablation | None
    linearisation: Linearisation
    attractors: AttractorGraph
    koopman: KoopmanResult
    lyapunov: LyapunovViews
    seconds: dict[str, float]
    skipped: dict[str, str]
    true_poles: np.ndarray | None = None

    def to_dict(self) -> dict:
        out = {"title": self.title, "meta": self.meta, "seconds": self.seconds,
               "skipped": self.skipped,
               "responses": None if self.responses is None else self.responses.to_dict(),
               "ablation": None if self.ablation is None else self.ablation.to_dict(),
               "linearisation": self.linearisation.to_dict(),
               "attractors": self.attractors.to_dict(), "koopman": self.koopman.to_dict(),
               "lyapunov": self.lyapunov.to_dict()}
        if self.true_poles is not None:
            out["true_poles"] = {"re": self.true_poles.real.tolist(),
                                 "im": self.true_poles.imag.tolist(),
                                 "distance": pole_distance(self.linearisation.poles,
                                                           self.true_poles)}
        return out


def output_deviation(network: Network, inputs: Tensor) -> Callable[[Network], float]:
    """A task-free ablation loss: the mean squared change of the outputs on ``inputs`` from the
    intact ``network``'s, relative to its output power."""
    ref = network.readout(network.run(inputs))
    power = ref.pow(2).mean().clamp_min(1e-300)

    def loss(net: Network) -> float:
        return float((net.readout(net.run(inputs)) - ref).pow(2).mean() / power)

    return loss


def explain(network: Network, inputs: Tensor, warmup: int = 0, *, title: str = "network",
            meta: dict | None = None, amplitudes: Sequence[float] | None = None,
            n_starts: int = 64, loss: Callable[[Network], float] | None = None,
            loss_name: str | None = None,
            ablation_counts: Sequence[int] | None = None, epochs: Sequence[int] = (),
            spectra: Sequence[Sequence[float]] = (), true_poles: np.ndarray | None = None,
            decision: str = "argmax", seed: int = 0, progress: bool = True) -> Explanation:
    """Every method on ``network`` driven by the probe ``inputs`` (B, W + T, I).

    amplitudes: pulse amplitudes for the transitions (default +-0.5 and +-1 times the largest
    |probe input|); n_starts: initial states for the fixed points (points of the probe's
    trajectory, half of them perturbed); loss: the ablation loss of a network (default: the
    relative change of its outputs on the probe), loss_name: what it measures; decision: what
    the outputs decide, for the Koopman accuracy error ("argmax" or "sign")."""
    inputs = check_inputs(network, inputs)
    if not 0 <= warmup < inputs.shape[1] - 1:
        raise ValueError(f"warmup must leave at least 2 of the {inputs.shape[1]} probe steps, "
                         f"got {warmup}")
    seconds, skipped = {}, {}
    bar = Progress(TextColumn("[bold]{task.description:<22}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   disable=not progress, transient=False)
    with bar:
        task = bar.add_task("explain", total=len(METHODS))

        def timed(name, fn):
            bar.update(task, description=name)
            t0 = time.perf_counter()
            out = fn()
            seconds[name] = time.perf_counter() - t0
            bar.advance(task)
            return out

        resp = abl = None
        if isinstance(network.cell, LSTMCell):
            def run_responses():
                r = responses(network)
                n = network.hidden_size
                counts = ablation_counts or sorted({max(1, n // 8), max(1, n // 4)})
                if loss is None:
                    f, name = output_deviation(network, inputs), Ablation.loss
                else:
                    f, name = loss, loss_name or "the given loss"
                return r, ablation(network, r.ranking("delta").tolist(), f, counts, draws=5,
                                   seed=seed, loss_name=name)
            resp, abl = timed("responses", run_responses)
        else:
            skipped["responses"] = (f"response characterisation decouples single LSTM units; "
                                    f"this cell is {type(network.cell).__name__}")
            bar.advance(task)
        lin = timed("linearise", lambda: linearise(network))
        states = network.run(inputs)[:, warmup:].reshape(-1, network.state_size)
        g = torch.Generator().manual_seed(seed)
        pick = states[torch.randperm(len(states), generator=g)[:n_starts]]
        noise = 0.1 * pick.std() * torch.randn(pick.shape, generator=g, dtype=pick.dtype)
        starts = torch.cat([pick, pick[: len(pick) // 2] + noise[: len(pick) // 2]])
        top = float(inputs.abs().max()) or 1.0
        amps = amplitudes or (-top, -0.5 * top, 0.5 * top, top)
        graph = timed("attractors", lambda: attractor_graph(network, starts, amps))
        kann = timed("koopman", lambda: koopman(network, inputs, warmup, decision=decision))
        views = timed("lyapunov", lambda: lyapunov_views(network, inputs, warmup,
                                                         epochs=epochs, spectra=spectra))
    return Explanation(title, dict(meta or {}), resp, abl, lin, graph, kann, views, seconds,
                       skipped, None if true_poles is None else np.asarray(true_poles))
