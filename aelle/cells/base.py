"""The cell protocol: one recurrent map, its analytic Jacobians, and batching over networks.

Shapes used throughout (column-vector convention, ``J[i, j] = d s'_i / d s_j``):

    M  networks of one shape analysed together (stacked weights)
    B  input sequences
    S  size of the carried state (an LSTM carries h and c: S = 2N)
    D  dimension of the tangent space, i.e. the number of exponents
    I  input size

Weights are stored as ``(M, out, in)``, biases ``(M, out)``, scalar hyperparameters ``(M,)``.
States are ``(M, B, S)``, inputs ``(M or 1, B, I)``, Jacobians ``(M, B, D, D)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor


def affine(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` for stacked networks: x (M|1, B, in), weight (M, out, in)."""
    y = x @ weight.mT  # (M, B, out)
    return y if bias is None else y + bias[:, None, :]


def rows(d: Tensor, mat: Tensor) -> Tensor:
    """Scale the rows of a per-network matrix by per-sequence factors: diag(d) @ mat.

    d (M, B, out), mat (M, out, in) -> (M, B, out, in).
    """
    return d[..., :, None] * mat[:, None]


def rows_sum(*terms: tuple[Tensor, Tensor], diagonal: Tensor | None = None) -> Tensor:
    """``sum_g diag(d_g) @ mat_g (+ diag(diagonal))`` accumulated in one output buffer.

    Gated cells' Jacobians are such sums; building each term and adding them writes the
    (M, B, out, in) array once per term, which costs more than the QR at small N.
    """
    (d, mat), *rest = terms
    out = rows(d, mat)
    for d, mat in rest:
        out.addcmul_(d[..., :, None], mat[:, None])
    if diagonal is not None:
        out.diagonal(dim1=-2, dim2=-1).add_(diagonal)
    return out


def per_net(x: Tensor, ndim: int) -> Tensor:
    """View a per-network scalar (M,) so that it broadcasts against a tensor of ``ndim`` dims."""
    return x.reshape(x.shape[0], *([1] * (ndim - 1)))


def scalar(value, n_networks: int = 1, like: Tensor | None = None) -> Tensor:
    """A per-network hyperparameter as a (M,) tensor."""
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    t = torch.as_tensor(value, dtype=dtype, device=device)
    return t.expand(n_networks).clone() if t.ndim == 0 else t


@dataclasses.dataclass(frozen=True)
class Cell:
    """A recurrent map ``s_t = f(s_{t-1}, x_t)`` with its analytic Jacobians.

    Subclasses are frozen dataclasses whose tensor fields hold the parameters with a leading
    network dimension M. They implement :meth:`step` and :meth:`jacobians`; everything else
    (stacking, dtype moves, tangent projections) is generic.
    """

    name: ClassVar[str] = "cell"
    # Whether layers of this architecture may be stacked into a LayeredCell: the architectures
    # that torch runs as multi-layer modules (nn.RNN, nn.LSTM, nn.GRU).
    layerable: ClassVar[bool] = False

    # ---- what a subclass provides -------------------------------------------------------
    @property
    def hidden_size(self) -> int:  # N: size of the output vector h
        raise NotImplementedError

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[-1]

    @property
    def state_size(self) -> int:
        """S: size of the carried state."""
        return self.hidden_size

    @property
    def dim(self) -> int:
        """D: tangent dimension (number of exponents); the first N tangent coordinates are h."""
        return self.state_size

    def step(self, s: Tensor, x: Tensor) -> Tensor:
        """(M, B, S), (M|1, B, I) -> (M, B, S)."""
        raise NotImplementedError

    def jacobians(self, s: Tensor, x: Tensor, wrt_input: bool = False):
        """Return ``(s_next, J, Jx)``: J = d tangent(s_next) / d tangent(s), (M, B, D, D);
        Jx = d tangent(s_next) / d x, (M, B, D, I), or None unless ``wrt_input``."""
        raise NotImplementedError

    # ---- generic ---------------------------------------------------------------------------
    def tangent_index(self) -> Tensor | None:
        """State coordinates that form the tangent space (None: all of them, in order)."""
        return None

    @property
    def thread_safe(self) -> bool:
        """Whether the engine may run this map from several threads at once (its split of the
        sequences over CPU threads)."""
        return True

    @property
    def n_networks(self) -> int:
        return self._first_tensor().shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self._first_tensor().dtype

    @property
    def device(self) -> torch.device:
        return self._first_tensor().device

    def zero_state(self, batch: int) -> Tensor:
        return torch.zeros(self.n_networks, batch, self.state_size, dtype=self.dtype,
                           device=self.device)

    def output(self, s: Tensor) -> Tensor:
        """The layer's output h: the first N coordinates of the state."""
        return s[..., : self.hidden_size]

    def tangent(self, s: Tensor) -> Tensor:
        idx = self.tangent_index()
        return s if idx is None else s[..., idx.to(s.device)]

    def with_tangent(self, s: Tensor, v: Tensor) -> Tensor:
        """The state s with its tangent coordinates replaced by v (used by autograd checks)."""
        idx = self.tangent_index()
        if idx is None:
            return v
        idx = idx.to(s.device)  # the index is built on the CPU; s may be on a GPU
        rest = torch.ones(s.shape[-1], dtype=torch.bool, device=s.device)
        rest[idx] = False
        out = s.masked_fill(~rest, 0.0)
        return out.index_add(-1, idx, v)

    def tensors(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), Tensor)}

    def _first_tensor(self) -> Tensor:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                return v
            if isinstance(v, Mapping) and v:
                return next(iter(v.values()))
            if isinstance(v, Cell):
                return v._first_tensor()
            if isinstance(v, tuple) and v and isinstance(v[0], Cell):
                return v[0]._first_tensor()
        raise TypeError(f"{type(self).__name__} holds no tensors")

    def map_tensors(self, fn) -> Cell:
        """A copy with ``fn`` applied to every parameter tensor (also inside nested cells and
        in a mapping of named tensors)."""
        changes = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                changes[f.name] = fn(v)
            elif isinstance(v, Mapping):
                changes[f.name] = {name: fn(t) for name, t in v.items()}
            elif isinstance(v, Cell):
                changes[f.name] = v.map_tensors(fn)
            elif isinstance(v, tuple) and v and isinstance(v[0], Cell):
                changes[f.name] = tuple(c.map_tensors(fn) for c in v)
        return dataclasses.replace(self, **changes)

    def to(self, dtype: torch.dtype | None = None, device=None) -> Cell:
        return self.map_tensors(lambda t: t.to(device=device, dtype=dtype))


@dataclasses.dataclass(frozen=True)
class TwoStateCell(Cell):
    """A cell carrying two state vectors (h, c) or (y, z), each of size N, the first the output.

    ``state="full"`` analyses the complete 2N-dimensional map; ``state="hidden"`` the derivative
    of the first vector with respect to itself, the second held fixed (N exponents).
    """

    state: str = dataclasses.field(default="full", kw_only=True)

    def __post_init__(self):
        if self.state not in ("full", "hidden"):
            raise ValueError(f"state must be 'full' or 'hidden', got {self.state!r}")

    @property
    def state_size(self) -> int:
        return 2 * self.hidden_size

    @property
    def dim(self) -> int:
        return self.state_size if self.state == "full" else self.hidden_size

    def tangent_index(self):
        return None if self.state == "full" else torch.arange(self.hidden_size)


def stack_cells(cells: list[Cell]) -> Cell:
    """Stack M networks of one architecture and shape into one cell analysed in one call."""
    if not cells:
        raise ValueError("stack_cells needs at least one cell")
    first = cells[0]
    for c in cells[1:]:
        if type(c) is not type(first):
            raise ValueError(f"cannot stack {type(c).__name__} with {type(first).__name__}")
    return _stack(cells)


def _stack(cells: list[Cell]) -> Cell:
    first = cells[0]
    changes = {}
    for f in dataclasses.fields(first):
        vals = [getattr(c, f.name) for c in cells]
        v0 = vals[0]
        if isinstance(v0, Tensor):
            changes[f.name] = _stack_tensors(f"'{f.name}'", vals)
        elif isinstance(v0, Mapping):
            if len({tuple(v) for v in vals}) != 1:
                raise ValueError(f"cannot stack cells whose '{f.name}' name different tensors")
            changes[f.name] = {
                name: _stack_tensors(f"'{f.name}[{name!r}]'", [v[name] for v in vals])
                for name in v0}
        elif isinstance(v0, Cell):
            changes[f.name] = _stack(vals)
        elif isinstance(v0, tuple) and v0 and isinstance(v0[0], Cell):
            if len({len(v) for v in vals}) != 1:
                raise ValueError("cannot stack networks with different numbers of layers")
            changes[f.name] = tuple(_stack(list(layer)) for layer in zip(*vals, strict=True))
        elif any(v != v0 for v in vals):
            raise ValueError(f"cannot stack cells whose '{f.name}' differ: {vals}")
    return dataclasses.replace(first, **changes)


def _stack_tensors(what: str, vals: list[Tensor]) -> Tensor:
    shapes = {tuple(v.shape[1:]) for v in vals}
    if len(shapes) != 1:
        raise ValueError(f"cannot stack cells whose {what} shapes differ: {shapes}")
    return torch.cat(vals, 0)
