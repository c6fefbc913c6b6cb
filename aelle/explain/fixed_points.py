"""Stable fixed points of the autonomous network and the input-driven transitions between them:
an excitable network attractor (seed 003, Ceni, Ashwin and Livi).

The autonomous map is ``F(s) = f(s, u0)`` with the input held at u0 (default 0). Candidates come
from iterating F from many initial states (the stable points attract them), each then polished
by Newton steps on ``F(s) - s = 0``, which also makes the speed ``q(s) = |F(s) - s|^2 / 2``
vanish to rounding; optional Newton runs from the raw initial states find saddles too.
Points closer than ``merge_tol`` are one. Each is classified by the eigenvalues of dF/ds:
stable (all |lambda| < 1), saddle, or unstable.

Transitions: from each stable point, a pulse of amplitude a on input channel k for
``pulse_steps`` steps, then the input back at u0 for ``relax_steps``; where the state ends
(within ``merge_tol`` of a stable point, or "none") gives a directed edge, kept at the smallest
|a| that causes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from aelle.explain.jacobians import state_input_jacobians
from aelle.explain.network import Network


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    state: np.ndarray        # (S,)
    residual: float          # |F(s) - s|
    eigenvalues: np.ndarray  # of dF/ds, by decreasing modulus
    kind: str                # "stable", "saddle" or "unstable"
    hits: int                # initial states that converged to it
    output: np.ndarray       # the readout at the point, (O,)

    @property
    def unstable_dimensions(self) -> int:
        return int((np.abs(self.eigenvalues) > 1.0).sum())


@dataclasses.dataclass(frozen=True)
class Transition:
    source: int              # index into AttractorGraph.points
    target: int              # index, or -1: the state settled on no stable point found
    channel: int
    amplitude: float         # the smallest |amplitude| tried that causes it, with its sign


@dataclasses.dataclass(frozen=True)
class AttractorGraph:
    points: tuple[FixedPoint, ...]
    transitions: tuple[Transition, ...]
    input: np.ndarray        # u0

    @property
    def stable(self) -> list[int]:
        return [i for i, p in enumerate(self.points) if p.kind == "stable"]

    def to_dict(self) -> dict:
        return {
            "points": [{"kind": p.kind, "residual": p.residual, "hits": p.hits,
                        "spectral_radius": float(np.abs(p.eigenvalues).max()),
                        "output": p.output.tolist()} for p in self.points],
            "transitions": [dataclasses.asdict(t) for t in self.transitions],
            "n_stable": len(self.stable),
        }


def fixed_points(network: Network, starts: Tensor, u0: Tensor | None = None,
                 iterate_steps: int = 300, newton_steps: int = 30, tol: float = 1e-8,
                 merge_tol: float = 1e-3, include_unstable: bool = False) -> list[FixedPoint]:
    """Fixed points of F reached from ``starts`` (K, S), deduplicated, most visited first."""
    starts = _states(network, starts)
    u = _input(network, u0)
    with torch.no_grad():
        s = starts
        for _ in range(iterate_steps):
            s = network.step(s, u.expand(len(s), -1))
    candidates = [_newton(network, s, u, newton_steps)]
    if include_unstable:
        candidates.append(_newton(network, starts, u, newton_steps))
    s = torch.cat(candidates)
    residual = (network.step(s, u.expand(len(s), -1)) - s).norm(dim=-1)
    s = s[torch.isfinite(residual) & (residual < tol)]
    return _classify(network, _dedupe(s, merge_tol), u)


def attractor_graph(network: Network, starts: Tensor, amplitudes: Sequence[float],
                    u0: Tensor | None = None, pulse_steps: int = 1, relax_steps: int = 200,
                    merge_tol: float = 1e-3, channels: Sequence[int] | None = None,
                    **kwargs) -> AttractorGraph:
    """The stable fixed points and the pulse-driven transitions between them."""
    if not amplitudes:
        raise ValueError("amplitudes must name at least one pulse amplitude")
    if pulse_steps < 1 or relax_steps < 1:
        raise ValueError("pulse_steps and relax_steps must be >= 1")
    u = _input(network, u0)
    channels = list(range(network.input_size)) if channels is None else list(channels)
    bad = [k for k in channels if not 0 <= k < network.input_size]
    if bad:
        raise ValueError(f"channels {bad} out of range for {network.input_size} inputs")
    points = fixed_points(network, starts, u, merge_tol=merge_tol, **kwargs)
    stable = [i for i, p in enumerate(points) if p.kind == "stable"]
    if not stable:
        return AttractorGraph(tuple(points), (), u.numpy())
    anchors = torch.as_tensor(np.stack([points[i].state for i in stable]), dtype=network.dtype)
    amps = sorted({float(a) for a in amplitudes}, key=abs)
    # every (source, channel, amplitude) at once: one batch of pulses
    combos = [(i, k, a) for i in range(len(stable)) for k in channels for a in amps]
    s = anchors[[c[0] for c in combos]]
    pulse = u.repeat(len(combos), 1)
    for row, (_, k, a) in enumerate(combos):
        pulse[row, k] += a
    with torch.no_grad():
        for _ in range(pulse_steps):
            s = network.step(s, pulse)
        for _ in range(relax_steps):
            s = network.step(s, u.expand(len(s), -1))
    dist = torch.cdist(s, anchors)
    nearest = dist.argmin(-1)
    landed = torch.where(dist.min(-1).values < merge_tol * 10, nearest, -1)
    edges: dict[tuple[int, int, int, bool], Transition] = {}
    for (i, k, a), j in zip(combos, landed.tolist(), strict=True):
        if j == i:
            continue
        key = (stable[i], -1 if j < 0 else stable[j], k, a > 0)
        if key not in edges:  # amplitudes are sorted by |a|: the first is the smallest
            edges[key] = Transition(key[0], key[1], k, a)
    order = sorted(edges.values(), key=lambda t: (t.source, t.channel, t.amplitude))
    return AttractorGraph(tuple(points), tuple(order), u.numpy())


def _newton(network: Network, s: Tensor, u: Tensor, steps: int) -> Tensor:
    eye = torch.eye(network.state_size, dtype=network.dtype)
    for _ in range(steps):
        f, a, _ = state_input_jacobians(network, s, u.expand(len(s), -1))
        r = f - s
        if not torch.isfinite(r).all():
            keep = torch.isfinite(r).all(-1)
            s, f, a, r = s[keep], f[keep], a[keep], r[keep]
        delta = torch.linalg.lstsq(a - eye, -r[..., None]).solution[..., 0]
        s = s + delta
        if len(delta) == 0 or float(delta.abs().max()) < 1e-14:
            break
    return s


def _dedupe(s: Tensor, merge_tol: float) -> list[tuple[Tensor, int]]:
    found: list[list] = []
    for x in s:
        for entry in found:
            if float((entry[0] - x).norm()) < merge_tol:
                entry[1] += 1
                break
        else:
            found.append([x, 1])
    return sorted(((x, n) for x, n in found), key=lambda e: -e[1])


def _classify(network: Network, points, u: Tensor) -> list[FixedPoint]:
    out = []
    for x, hits in points:
        f, a, _ = state_input_jacobians(network, x[None], u[None])
        eig = np.linalg.eigvals(a[0].numpy())
        eig = eig[np.argsort(-np.abs(eig), kind="stable")]
        above = int((np.abs(eig) > 1.0).sum())
        kind = "stable" if above == 0 else ("unstable" if above == len(eig) else "saddle")
        out.append(FixedPoint(x.numpy(), float((f[0] - x).norm()), eig, kind, hits,
                              network.readout(x).numpy()))
    return out


def _states(network: Network, starts: Tensor) -> Tensor:
    starts = torch.as_tensor(starts, dtype=network.dtype)
    if starts.ndim != 2 or starts.shape[1] != network.state_size or len(starts) == 0:
        raise ValueError(f"starts must be (K >= 1, {network.state_size}), "
                         f"got {tuple(starts.shape)}")
    return starts


def _input(network: Network, u0) -> Tensor:
    if u0 is None:
        return torch.zeros(network.input_size, dtype=network.dtype)
    u = torch.as_tensor(u0, dtype=network.dtype).reshape(-1)
    if u.numel() != network.input_size:
        raise ValueError(f"u0 must have {network.input_size} values, got {u.numel()}")
    return u
