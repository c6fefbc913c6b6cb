"""The ``aelle`` command line: a root parser whose subcommands are plugged in by packages.

Each subcommand is an entry point of the group ``aelle.commands`` (declared in
``pyproject.toml``): ``NAME = "module:function"``, where ``function(subparsers)`` adds the
subcommand ``NAME`` and sets ``func`` on it. A command says "exit with status 2 and this
message" by raising :class:`CommandError` or ``ValueError``; anything else is a bug and keeps
its traceback. The science package provides ``aelle spectrum`` here and the helpers the
commands share (:func:`positive`, :func:`assignment`, :func:`table`); it imports nothing of
the task, worker or service packages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import EntryPoint, entry_points

import torch

from aelle.cells import LayeredCell, get, names
from aelle.cells.base import TwoStateCell
from aelle.spectra import SpectrumDivergedError, lyapunov_spectrum

GROUP = "aelle.commands"


class CommandError(Exception):
    """A command cannot do what it was asked; ``aelle`` prints the message and exits with 2."""


def positive(kind):
    """An argparse type: ``kind(text)``, refused unless it is > 0."""

    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def assignment(text: str) -> tuple[str, object]:
    """An argparse type: NAME=VALUE, VALUE read as JSON when it parses (numbers, true, null),
    else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name, value


def table(rows: list[list[str]]) -> str:
    """Rows of strings as left-aligned columns, the first row a header underlined by dashes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def build_cell(arch: str, input_size: int, hidden: int, layers: int, p: float, state: str,
               nonlinearity: str, seed: int):
    """A network of ``arch`` with weights uniform on [-p, p], as an analysable cell."""
    cls = get(arch)
    if layers > 1 and not get(arch).layerable:
        layerable = ", ".join(n for n in names() if get(n).layerable)
        raise ValueError(f"--layers > 1 is supported for {layerable}, not {arch}")
    g = torch.Generator().manual_seed(seed)
    kw = {}
    if issubclass(cls, TwoStateCell):
        kw["state"] = state
    if arch == "rnn":
        kw["nonlinearity"] = nonlinearity
    cells = [cls.random(input_size if i == 0 else hidden, hidden, p=p, generator=g,
                        dtype=torch.float32, **kw) for i in range(layers)]
    return cells[0] if layers == 1 else LayeredCell(tuple(cells))


def add_spectrum_parser(sub) -> None:
    p = sub.add_parser("spectrum", help="print the Lyapunov spectrum of a random network",
                       description="The Lyapunov spectrum of a freshly initialised network of any "
                       "registered architecture, driven by Gaussian inputs, printed as a table "
                       "(or JSON).")
    p.add_argument("--arch", default="lstm", choices=names())
    p.add_argument("--hidden", type=positive(int), default=64)
    p.add_argument("--layers", type=positive(int), default=1)
    p.add_argument("--input-size", type=positive(int), default=10)
    p.add_argument("--init", type=positive(float), default=0.2, dest="p",
                   help="weights uniform on [-p, p]")
    p.add_argument("--state", choices=("full", "hidden"), default="full",
                   help="complete state, or dh/dh with the second state held (LSTM, coRNN, LEM)")
    p.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh")
    p.add_argument("--batch", type=positive(int), default=10, help="input sequences")
    p.add_argument("--steps", type=positive(int), default=100, help="T, after the warm-up")
    p.add_argument("--warmup", type=_non_negative_int, default=10)
    p.add_argument("--t-on", type=positive(int), default=1)
    p.add_argument("--k", type=positive(int), default=None, help="leading exponents only")
    p.add_argument("--float64", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_spectrum)


def run_spectrum(args) -> int:
    cell = build_cell(args.arch, args.input_size, args.hidden, args.layers, args.p, args.state,
                      args.nonlinearity, args.seed)
    if args.k is not None and args.k > cell.dim:
        raise ValueError(f"--k {args.k} exceeds the {cell.dim} exponents of this network")
    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(args.batch, args.warmup + args.steps, args.input_size, generator=g)
    dtype = torch.float64 if args.float64 else torch.float32
    start = time.perf_counter()
    try:
        res = lyapunov_spectrum(cell, x, warmup=args.warmup, t_on=args.t_on, k=args.k,
                                dtype=dtype)
    except SpectrumDivergedError as e:
        raise CommandError(str(e)) from e
    seconds = time.perf_counter() - start
    lam = res.exponents
    summary = {"arch": args.arch, "hidden": args.hidden, "layers": args.layers,
               "state": args.state, "exponents": lam.tolist(), "std": res.std.tolist(),
               "max": lam.max().item(), "mean": lam.mean().item(), "seconds": seconds}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{args.arch} x{args.layers}, N = {args.hidden}, init U[-{args.p}, {args.p}], "
          f"{cell.dim} exponents ({args.state} state), B = {args.batch}, T = {args.steps}, "
          f"W = {args.warmup}, T_ON = {args.t_on}: {seconds:.2f} s")
    regime = "chaotic" if lam[0] > 1e-3 else "marginal" if lam[0] > -1e-3 else "contracting"
    print(f"max LE {lam[0].item():+.4f} ({regime}), mean LE {lam.mean().item():+.4f}")
    print("   i    lambda_i     std")
    shown = list(range(len(lam))) if len(lam) <= 16 else [*range(8), None, *range(len(lam) - 4,
                                                                                len(lam))]
    for i in shown:
        if i is None:
            print("   ...")
            continue
        print(f"{i:4d}  {lam[i].item():+10.5f}  {res.std[i].item():8.5f}")
    return 0


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The root parser with every installed command, or with ``only`` that one (a command
    then runs without importing the packages of the others)."""
    parser = argparse.ArgumentParser(prog="aelle", description="AeLLE: Lyapunov spectra of "
                                     "recurrent networks for hyperparameter search")
    sub = parser.add_subparsers(dest="command", required=True)
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
        if only is None or ep.name == only:
            _register(sub, ep)
    return parser


def _register(sub, ep: EntryPoint) -> None:
    """Add the command of one entry point. One that cannot be loaded, or fails to add its
    command, is listed all the same; running it prints why in one line (exit 2), and the
    other commands work."""
    if ep.name in sub.choices:  # a second distribution declaring the same name: first wins
        return
    try:
        ep.load()(sub)
        if ep.name not in sub.choices:
            raise CommandError(f"it added no subcommand named {ep.name!r}")
    except Exception as e:  # a plugin's fault, whatever it is, must not take the CLI down
        dist = getattr(ep, "dist", None)
        where = f"{ep.value}" + (f" of {dist.name}" if dist is not None else "")
        problem = (f"the command cannot be loaded (entry point {ep.name} = {where} in group "
                   f"{GROUP}): {type(e).__name__}: {e}")
        parser = sub.choices.get(ep.name) or sub.add_parser(
            ep.name, add_help=False, help=f"unavailable: {type(e).__name__} loading {ep.value}")

        def unavailable(_args) -> int:
            raise CommandError(problem)

        parser.set_defaults(func=unavailable, takes_any_arguments=True)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    named = {ep.name for ep in entry_points(group=GROUP)}
    parser = build_parser(only=argv[0] if argv and argv[0] in named else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except (CommandError, ValueError) as err:
        print(f"aelle {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run as ``python -m aelle.cli``: this file is then ``__main__``, while the commands import
    # ``aelle.cli``; hand over to that module so that CommandError is one class.
    from aelle.cli import main as imported_main

    sys.exit(imported_main())
