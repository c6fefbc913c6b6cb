"""The ``aelle`` command line.

``aelle spectrum``: the Lyapunov spectrum of a freshly initialised network of any registered
architecture, driven by Gaussian inputs, printed as a table (or JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from aelle.cells import LayeredCell, get, names
from aelle.cells.base import TwoStateCell
from aelle.spectra import SpectrumDivergedError, lyapunov_spectrum

LAYERED = ("rnn", "lstm", "gru")


def build_cell(arch: str, input_size: int, hidden: int, layers: int, p: float, state: str,
               nonlinearity: str, seed: int):
    """A network of ``arch`` with weights uniform on [-p, p], as an analysable cell."""
    cls = get(arch)
    if layers > 1 and arch not in LAYERED:
        raise ValueError(f"--layers > 1 is supported for {', '.join(LAYERED)}, not {arch}")
    g = torch.Generator().manual_seed(seed)
    kw = {}
    if issubclass(cls, TwoStateCell):
        kw["state"] = state
    if arch == "rnn":
        kw["nonlinearity"] = nonlinearity
    cells = [cls.random(input_size if i == 0 else hidden, hidden, p=p, generator=g,
                        dtype=torch.float32, **kw) for i in range(layers)]
    return cells[0] if layers == 1 else LayeredCell(tuple(cells))


def _positive(kind):
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


def add_spectrum_parser(sub) -> None:
    p = sub.add_parser("spectrum", help="print the Lyapunov spectrum of a random network",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--arch", default="lstm", choices=names())
    p.add_argument("--hidden", type=_positive(int), default=64)
    p.add_argument("--layers", type=_positive(int), default=1)
    p.add_argument("--input-size", type=_positive(int), default=10)
    p.add_argument("--init", type=_positive(float), default=0.2, dest="p",
                   help="weights uniform on [-p, p]")
    p.add_argument("--state", choices=("full", "hidden"), default="full",
                   help="complete state, or dh/dh with the second state held (LSTM, coRNN, LEM)")
    p.add_argument("--nonlinearity", choices=("tanh", "relu"), default="tanh")
    p.add_argument("--batch", type=_positive(int), default=10, help="input sequences")
    p.add_argument("--steps", type=_positive(int), default=100, help="T, after the warm-up")
    p.add_argument("--warmup", type=_non_negative_int, default=10)
    p.add_argument("--t-on", type=_positive(int), default=1)
    p.add_argument("--k", type=_positive(int), default=None, help="leading exponents only")
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
    res = lyapunov_spectrum(cell, x, warmup=args.warmup, t_on=args.t_on, k=args.k, dtype=dtype)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="aelle", description="AeLLE: Lyapunov spectra of "
                                     "recurrent networks for hyperparameter search")
    sub = parser.add_subparsers(dest="command", required=True)
    add_spectrum_parser(sub)
    # Imported here: the science package stays importable without the task, worker and
    # service code.
    from service.cli import ApiError, add_service_parsers
    from service.db import StoreError
    from service.demo import add_demo_parser
    from tasks.cli import add_train_parser
    from workers.cli import add_worker_parser

    add_train_parser(sub)
    add_service_parsers(sub)
    add_worker_parser(sub)
    add_demo_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, SpectrumDivergedError, ApiError, StoreError) as err:
        print(f"aelle {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
