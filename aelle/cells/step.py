"""Any recurrent map, given only its step: Jacobians by automatic differentiation.

A ``StepCell`` runs a step written for one sequence, ``(state (S,), input (I,)) -> state (S,)``,
through the engine: ``torch.func.vmap`` batches it over sequences and networks and
``torch.func.jacrev`` (or ``jacfwd``) differentiates it. The output h of the map is the first N
state coordinates; ``state="hidden"`` analyses them alone, the rest of the state held fixed (the
convention of :class:`~aelle.cells.base.TwoStateCell`).

Its tensors are a mapping of named parameters, each with the leading network dimension M, so
that dtype and device moves and stacking work as for the analytic cells. A plain function
receives them as keyword arguments; a module's declared step runs on them in place of the
module's own parameters and buffers (``torch.func.functional_call``). Either way every tensor
is converted to the analysis dtype before the step combines any two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacfwd, jacrev, vmap

from aelle.cells.base import Cell
from aelle.validate import check_choice, check_int, check_type

# Reverse mode by default, whatever the state size. The Jacobians are square, so both modes
# push D tangent vectors through the step; on this project's CPU a spectrum with jacrev took
# 0.5x to 0.9x the time of one with jacfwd for every registered architecture at N = 16 and 64
# (bench/spectrum_speed.py --generic-only). jacrev also gives the input Jacobian from the same
# D passes, where jacfwd needs I more, and jacfwd's forward-AD level is process-wide.
JACOBIANS = ("reverse", "forward")

# The declared-step protocol of a torch module (see docs/engine.md#any-recurrent-cell).
DECLARES = "aelle_step(state, input) -> state and aelle_state_size"


@dataclasses.dataclass(frozen=True)
class StepCell(Cell):
    """A recurrent map from its one-sequence step; build one with :meth:`from_function` or
    :meth:`from_module` (or ``aelle.cell_for``)."""

    fn: Callable[[Mapping[str, Tensor], Tensor, Tensor], Tensor]  # (params, s (S,), x (I,))
    params: Mapping[str, Tensor]  # each (M, ...): the tensors of M networks
    networks: Tensor  # (M,) zeros: M, the dtype and the device, also when there are no params
    n_state: int
    n_input: int
    n_hidden: int
    state: str = dataclasses.field(default="full", kw_only=True)
    jacobian: str = dataclasses.field(default="reverse", kw_only=True)
    label: str = dataclasses.field(default="step", kw_only=True)

    def __post_init__(self):
        check_choice("state", self.state, ("full", "hidden"))
        check_choice("jacobian", self.jacobian, JACOBIANS)
        check_int("state_size", self.n_state, low=1)
        check_int("input_size", self.n_input, low=0)
        check_int("hidden_size", self.n_hidden, low=1, high=self.n_state)
        m = self.networks.shape[0]
        for name, t in self.params.items():
            if not isinstance(t, Tensor) or t.ndim == 0 or t.shape[0] != m:
                raise ValueError(f"parameter {name!r} must be a tensor with the leading network "
                                 f"dimension M = {m}, got {getattr(t, 'shape', type(t).__name__)}")

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_function(cls, fn: Callable, *, state_size: int, input_size: int,
                      hidden_size: int | None = None, params: Mapping[str, Tensor] | None = None,
                      state: str = "full", dtype: torch.dtype | None = None,
                      jacobian: str = "reverse") -> StepCell:
        """The cell of ``fn(state, input, **params) -> state`` for one sequence and one network.

        params: the tensors the step uses, by name (copied, detached; converted to ``dtype``,
        by default their common floating dtype). A tensor the function closes over instead
        follows neither the analysis dtype nor the device.
        """
        if not callable(fn):
            raise TypeError(f"a step function must be callable, got {type(fn).__name__}")
        params = {} if params is None else check_type("params", params, Mapping)
        for name, t in params.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"params names are keyword arguments of the step: {name!r} is "
                                 "not an identifier")
            if not isinstance(t, Tensor):
                raise ValueError(f"params[{name!r}] must be a tensor, got {type(t).__name__}")
        label = getattr(fn, "__qualname__", type(fn).__name__)
        return cls._built(_Keywords(fn), params, state_size, input_size, hidden_size, state,
                          dtype, jacobian, f"step:{label}", f"step function {label}")

    @classmethod
    def from_module(cls, module: nn.Module, state: str = "full", *,
                    dtype: torch.dtype | None = None, jacobian: str = "reverse") -> StepCell:
        """The cell of a module that declares its step (see :func:`declares_step`): its
        parameters and buffers copied, detached, and converted to ``dtype`` (default: theirs)."""
        what = f"{type(module).__name__}.aelle_step"
        if not callable(getattr(module, "aelle_step", None)):
            raise TypeError(f"{type(module).__name__} declares no step: give it a method "
                            f"{DECLARES}")
        state_size = _declared(module, "aelle_state_size")
        if state_size is None:
            raise TypeError(f"{type(module).__name__} declares aelle_step but not "
                            "aelle_state_size, the size of the state it carries")
        input_size = _declared(module, "aelle_input_size")
        if input_size is None:
            input_size = _declared(module, "input_size")
        if input_size is None:
            raise TypeError(f"{type(module).__name__} declares aelle_step but not its input "
                            "size: give it aelle_input_size (or input_size)")
        hidden_size = _declared(module, "aelle_hidden_size")
        tensors = dict(module.named_parameters())
        tensors.update(module.named_buffers())
        return cls._built(_ModuleStep(module), tensors, state_size, input_size, hidden_size,
                          state, dtype, jacobian, f"step:{type(module).__name__}", what)

    @classmethod
    def from_cell(cls, cell: Cell, *, jacobian: str = "reverse") -> StepCell:
        """The generic cell of an analytic cell's own step: the same map and networks, its
        Jacobians by autograd instead of the analytic formulas (to check or time them)."""
        tensors = cell.tensors()
        if not tensors:
            raise ValueError(f"{type(cell).__name__} holds its tensors in nested cells: build "
                             "the generic cell of each layer")
        networks = torch.zeros(cell.n_networks, dtype=cell.dtype, device=cell.device)
        generic = cls(_OwnStep(cell), tensors, networks, cell.state_size, cell.input_size,
                      cell.hidden_size, state=getattr(cell, "state", "full"), jacobian=jacobian,
                      label=cell.name)
        generic.check_step(f"{cell.name}.step")
        return generic

    @classmethod
    def _built(cls, fn, tensors, state_size, input_size, hidden_size, state, dtype, jacobian,
               label, what) -> StepCell:
        check_type("dtype", dtype, torch.dtype, optional=True)
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
        floating = [t.dtype for t in tensors.values() if t.is_floating_point()]
        if dtype is None:
            dtype = torch.get_default_dtype()
            if floating:
                dtype = floating[0]
                for other in floating[1:]:
                    dtype = torch.promote_types(dtype, other)
        device = next((t.device for t in tensors.values()), None)
        params = {name: _as(t.detach(), dtype, device, copy=True)[None]
                  for name, t in tensors.items()}
        cell = cls(fn, params, torch.zeros(1, dtype=dtype, device=device), state_size,
                   input_size, state_size if hidden_size is None else hidden_size, state=state,
                   jacobian=jacobian, label=label)
        cell.check_step(what)
        return cell

    def check_step(self, what: str = "the step") -> None:
        """Run the step once, on a zero state and input, and refuse what the engine cannot use."""
        s = torch.zeros(self.n_state, dtype=self.dtype, device=self.device)
        x = torch.zeros(self.n_input, dtype=self.dtype, device=self.device)
        try:
            with torch.no_grad():
                out = self.fn({name: t[0] for name, t in self.params.items()}, s, x)
        except Exception as err:
            raise ValueError(f"{what} failed on one sequence's zero state of shape "
                             f"({self.n_state},) and zero input of shape ({self.n_input},): "
                             f"{type(err).__name__}: {err}") from err
        if not isinstance(out, Tensor):
            raise TypeError(f"{what} returned {type(out).__name__}, not the next state")
        if tuple(out.shape) != (self.n_state,):
            raise ValueError(f"{what} returned shape {tuple(out.shape)} for a state of shape "
                             f"({self.n_state},): it must return the next state of one "
                             "sequence, of the same shape")
        if out.dtype != s.dtype:
            raise ValueError(f"{what} returned {out.dtype} for a {s.dtype} state: every tensor "
                             "it uses must be a parameter or buffer of the module (or an entry "
                             "of params for a function), so that the analysis dtype reaches it")

    # ---- the Cell interface ----------------------------------------------------------------
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    @property
    def hidden_size(self) -> int:
        return self.n_hidden

    @property
    def input_size(self) -> int:
        return self.n_input

    @property
    def state_size(self) -> int:
        return self.n_state

    @property
    def dim(self) -> int:
        return self.n_state if self.state == "full" else self.n_hidden

    def tangent_index(self):
        return None if self.dim == self.n_state else torch.arange(self.n_hidden)

    @property
    def thread_safe(self) -> bool:
        # A module's step runs by swapping tensors into the one module (functional_call), and
        # jacfwd's forward-AD level is process-wide: neither may run in two threads at once.
        return False

    @property
    def n_networks(self) -> int:
        return self.networks.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.networks.dtype

    @property
    def device(self) -> torch.device:
        return self.networks.device

    def to(self, dtype: torch.dtype | None = None, device=None) -> StepCell:
        """A copy on ``device`` with its floating tensors in ``dtype`` (integer buffers keep
        theirs)."""
        return self.map_tensors(lambda t: _as(t, dtype, device))

    def step(self, s, x):
        return self._over_networks(self.fn, x)(self.params, s, x)

    def jacobians(self, s, x, wrt_input=False):
        fn, d = self.fn, self.dim
        transform = jacrev if self.jacobian == "reverse" else jacfwd
        argnums = (0, 1) if wrt_input else 0

        def one(p, s1, x1):  # one network, one sequence
            def moved(v, x2):
                s_new = fn(p, v if d == s1.shape[-1] else torch.cat([v, s1[d:]]), x2)
                return s_new[:d], s_new

            jac, s_new = transform(moved, argnums=argnums, has_aux=True)(s1[:d], x1)
            return (s_new, *jac) if wrt_input else (s_new, jac)

        out = self._over_networks(one, x)(self.params, s, x)
        return out if wrt_input else (*out, None)

    def _over_networks(self, per_sequence, x: Tensor):
        """``per_sequence(params, s (S,), x (I,))`` over (M, B) states and (M | 1, B) inputs."""
        over_b = vmap(per_sequence, in_dims=(None, 0, 0))
        if x.shape[0] == self.n_networks:
            return vmap(over_b, in_dims=(0, 0, 0))
        over_m = vmap(over_b, in_dims=(0, 0, None))  # one input batch shared by every network
        return lambda p, s, x: over_m(p, s, x[0])


@dataclasses.dataclass(frozen=True)
class _Keywords:
    """A plain step ``fn(state, input, **params)`` as the cell calls it."""

    fn: Callable

    def __call__(self, params, s, x):
        return self.fn(s, x, **params)


@dataclasses.dataclass(frozen=True, eq=False)  # the template's tensors have no truth value
class _OwnStep:
    """An analytic cell's batched step as a step of one network and one sequence."""

    template: Cell

    def __call__(self, params, s, x):
        one = dataclasses.replace(self.template, **{k: v[None] for k, v in params.items()})
        return one.step(s[None, None], x[None, None])[0, 0]


class _Declared(nn.Module):
    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = module

    def forward(self, s, x):
        return self.inner.aelle_step(s, x)


@dataclasses.dataclass(frozen=True)
class _ModuleStep:
    """A module's declared step run on the cell's tensors instead of the module's own."""

    module: nn.Module
    wrapper: _Declared = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "wrapper", _Declared(self.module))

    def __call__(self, params, s, x):
        return functional_call(self.wrapper, {f"inner.{k}": v for k, v in params.items()},
                               (s, x))


def declares_step(module: nn.Module) -> bool:
    """Whether ``module`` declares a step for :meth:`StepCell.from_module`."""
    return hasattr(module, "aelle_step")


def _declared(module: nn.Module, attr: str) -> int | None:
    value = getattr(module, attr, None)
    if value is None:
        return None
    low = 0 if attr.endswith("input_size") else 1
    return check_int(f"{type(module).__name__}.{attr}", value, low=low)


def _as(t: Tensor, dtype: torch.dtype | None, device, copy: bool = False) -> Tensor:
    return t.to(device=device, dtype=dtype if t.is_floating_point() else None, copy=copy)
