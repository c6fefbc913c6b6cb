"""Speed of the spectrum engine against the obvious alternatives, in one run.

Config: one-layer LSTM, input 10, N in {32, 64, 128, 256, 512}, B = 10 sequences, T = 100,
W = 10, full spectrum, float32, T_ON = 1, 2 CPU threads; the GPU too when one is available. The
LSTM is analysed in the dissertation's convention (dh/dh, N exponents) so that the dissertation
code's times compare; the engine's complete-state spectrum (2N exponents) is timed too.

Columns:
  engine        aelle.lyapunov_spectrum
  plain loop    the dissertation code's algorithm: analytic J, Q <- J Q, torch.linalg.qr every step
  autograd loop the plain loop with Jacobians from torch.func (vmap of jacrev)
  floor         the batched J Q products alone

The generic cell (aelle.StepCell, Jacobians by torch.func) beside the analytic cells: every
registered architecture at each of --generic-sizes, the same B, T, W, the complete state, float32,
the engine on each; and the largest |difference| of their float64 spectra.

Usage: python -m bench.spectrum_speed [--sizes 32 64 ...] [--repeats 3] [--out bench/results]
       python -m bench.spectrum_speed --generic-only [--generic-sizes 16 64] [--threads 1]
Writes spectrum_speed.json and spectrum_speed.md under --out; --generic-only replaces only the
generic cell's part of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.func import jacrev, vmap

from aelle import StepCell, cell_for, lyapunov_spectrum, stack_cells
from aelle.cells import get, names
from aelle.cells.gru import GRUCell
from bench.machine import describe

B, T, W, INPUT = 10, 100, 10, 10


def timed(fn, repeats: int, device: str, clock=time.perf_counter) -> float:
    """Median time of ``fn()`` in seconds (after one untimed run), wall time by default."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = clock()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - start)
    return statistics.median(times)


def plain_loop(cell, x, jacobian=None):
    """Algorithm 2 as the dissertation's code runs it, batched over sequences."""
    with torch.no_grad():
        s = cell.zero_state(x.shape[0])
        q = torch.eye(cell.dim, dtype=x.dtype, device=x.device).expand(1, x.shape[0], -1, -1)
        gamma = torch.zeros(1, x.shape[0], cell.dim, dtype=torch.float64, device=x.device)
        for t in range(x.shape[1]):
            xt = x[None, :, t]
            if jacobian is None:
                s_new, j, _ = cell.jacobians(s, xt)
            else:
                j, s_new = jacobian(s, xt), cell.step(s, xt)
            s = s_new
            q, r = torch.linalg.qr(j @ q)
            if t >= W:
                gamma += torch.log(torch.diagonal(r, 0, -2, -1).abs()).double()
        return (gamma / (x.shape[1] - W)).mean(1)[0]


def autograd_jacobian(cell):
    """Jacobians by torch.func: vmap over the batch of jacrev of the one-sequence step."""

    def one(s, x):  # s (S,), x (I,)
        def f(v):
            return cell.tangent(cell.step(cell.with_tangent(s[None, None], v[None, None]),
                                          x[None, None]))[0, 0]

        return jacrev(f)(cell.tangent(s))

    batched = vmap(one)

    def jac(s, x):
        with torch.enable_grad():
            return batched(s[0], x[0])[None]

    return jac


def floor(cell, x):
    """The J Q products alone, with J and Q of the right shapes."""
    j = torch.randn(1, x.shape[0], cell.dim, cell.dim, dtype=x.dtype, device=x.device)
    q = torch.randn(1, x.shape[0], cell.dim, cell.dim, dtype=x.dtype, device=x.device)

    def run():
        for _ in range(x.shape[1]):
            torch.matmul(j, q)

    return run


def lstm(n: int, device: str):
    torch.manual_seed(n)
    return torch.nn.LSTM(INPUT, n).to(device)


def size_row(n: int, device: str, repeats: int, with_autograd: bool) -> dict:
    module = lstm(n, device)
    hidden = cell_for(module, state="hidden").to(torch.float32)
    x = torch.randn(B, W + T, INPUT, device=device)
    reps = repeats if n <= 128 else max(1, repeats // 2)

    row = {"N": n}
    row["engine_s"] = timed(lambda: lyapunov_spectrum(hidden, x, warmup=W), reps, device)
    row["engine_one_slice_s"] = timed(lambda: lyapunov_spectrum(hidden, x, warmup=W, threads=1),
                                      reps, device)
    row["engine_full_state_s"] = timed(
        lambda: lyapunov_spectrum(cell_for(module, state="full"), x, warmup=W), reps, device)
    row["engine_t_on2_s"] = timed(lambda: lyapunov_spectrum(hidden, x, warmup=W, t_on=2),
                                  reps, device)
    row["plain_loop_s"] = timed(lambda: plain_loop(hidden, x), reps, device)
    row["floor_s"] = timed(floor(hidden, x), reps, device)
    k = max(1, n // 8)
    row["engine_k_n8_s"] = timed(lambda: lyapunov_spectrum(hidden, x, warmup=W, k=k), reps,
                                 device)
    if with_autograd:
        row["autograd_loop_s"] = timed(lambda: plain_loop(hidden, x, autograd_jacobian(hidden)),
                                       1, device)
        row.update(jacobian_only(hidden, x, device))

    # accuracy of the float32 engine against a float64 computation, leading half
    ref = lyapunov_spectrum(hidden, x, warmup=W, dtype=torch.float64).exponents
    for key, kw in (("engine", {}), ("engine_t_on2", {"t_on": 2})):
        est = lyapunov_spectrum(hidden, x, warmup=W, **kw).exponents
        row[f"{key}_err_leading_half"] = (est - ref)[: n // 2].abs().max().item()
    row["plain_loop_err_leading_half"] = (plain_loop(hidden, x) - ref)[: n // 2].abs().max().item()
    row["speedup_vs_plain"] = row["plain_loop_s"] / row["engine_s"]
    row["speedup_k_n8_vs_full"] = row["engine_s"] / row["engine_k_n8_s"]
    return row


def jacobian_only(cell, x, device) -> dict:
    """Time to form the B Jacobians of one step: analytic against torch.func."""
    s = torch.randn(1, x.shape[0], cell.state_size, device=device)
    xt = x[None, :, 0]
    jac = autograd_jacobian(cell)
    analytic = timed(lambda: cell.jacobians(s, xt), 20, device)
    auto = timed(lambda: jac(s, xt), 5, device)

    def functional():  # torch.autograd.functional.jacobian, one sequence at a time
        for b in range(s.shape[1]):
            s_b, x_b = s[:, b : b + 1], xt[:, b : b + 1]

            def f(v, s_b=s_b, x_b=x_b):
                return cell.tangent(cell.step(cell.with_tangent(s_b, v), x_b))

            torch.autograd.functional.jacobian(f, cell.tangent(s_b))

    naive = timed(functional, 1, device)
    return {"jacobian_analytic_s": analytic, "jacobian_autograd_s": auto,
            "jacobian_speedup": auto / analytic, "jacobian_functional_s": naive,
            "jacobian_speedup_functional": naive / analytic}


def many_grus(device: str, repeats: int) -> dict:
    """32 GRUs of 64 units (input 28, as row-wise MNIST) in one batched call."""
    g = torch.Generator().manual_seed(0)
    cells = [GRUCell.random(28, 64, p=0.3, generator=g, dtype=torch.float32) for _ in range(32)]
    stacked = stack_cells(cells).to(device=device)
    x = torch.randn(B, W + T, 28, device=device)
    batched = timed(lambda: lyapunov_spectrum(stacked, x, warmup=W), repeats, device)
    one_by_one = timed(lambda: [lyapunov_spectrum(c.to(device=device), x, warmup=W)
                                for c in cells], 1, device)
    return {"networks": 32, "hidden": 64, "batched_s": batched, "one_by_one_s": one_by_one,
            "spectra_per_s_batched": 32 / batched, "spectra_per_s_one_by_one": 32 / one_by_one}


def spectrum_time(cell, x, repeats: int, device: str) -> float:
    return timed(lambda: lyapunov_spectrum(cell, x, warmup=W), repeats, device,
                 generic_clock(device))


def generic_clock(device: str):
    """The process's CPU time when torch runs one thread on a CPU: on a shared machine it
    counts only this run's work, where wall time counts the other processes' too."""
    if device == "cpu" and torch.get_num_threads() == 1:
        return time.process_time
    return time.perf_counter


def generic_rows(sizes: list[int], device: str, repeats: int) -> list[dict]:
    """Every architecture's analytic cell against the generic cell of its own step."""
    rows = []
    for n in sizes:
        for name in names():
            cell = get(name).random(INPUT, n, p=0.3, generator=torch.Generator().manual_seed(n),
                                    dtype=torch.float32).to(device=device)
            x = torch.randn(B, W + T, INPUT, generator=torch.Generator().manual_seed(0))
            x = x.to(device)
            row = {"arch": name, "N": n, "D": cell.dim,
                   "analytic_s": spectrum_time(cell, x, repeats, device)}
            for mode in ("reverse", "forward"):
                row[f"generic_{mode}_s"] = spectrum_time(
                    StepCell.from_cell(cell, jacobian=mode), x, repeats, device)
            row["generic_over_analytic"] = row["generic_reverse_s"] / row["analytic_s"]
            wide = [lyapunov_spectrum(c, x, warmup=W, dtype=torch.float64).exponents
                    for c in (cell, StepCell.from_cell(cell))]
            row["max_abs_diff_float64"] = (wide[0] - wide[1]).abs().max().item()
            row["clock"] = "cpu" if generic_clock(device) is time.process_time else "wall"
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def generic_markdown(g: dict) -> list[str]:
    lines = ["## The generic cell (`aelle.StepCell`) beside the analytic cells", "",
             f"Command: `{g['command']}`", "",
             f"Machine: {g['machine']}; torch {g['torch']}, {g['threads']} thread(s); input "
             f"{INPUT}, B = {B}, T = {T}, W = {W}, float32, T_ON = 1, the complete state (D "
             "exponents), weights uniform on [-0.3, 0.3]. Generic: the StepCell of the "
             "architecture's own step, Jacobians by torch.func.vmap of jacrev (reverse) or "
             "jacfwd (forward). Δλ: max |λ_analytic − λ_generic| over the spectrum, both in "
             "float64. Times: " + ("CPU time of the process (one thread, so the same as "
                                   "wall time on an idle machine)" if g["rows"] and
                                   g["rows"][0].get("clock") == "cpu" else "wall time") +
             ", median of the repeats.", "",
             "| arch | N | D | analytic | generic, jacrev | generic, jacfwd | generic / analytic "
             "| Δλ float64 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in g["rows"]:
        lines.append(f"| {r['arch']} | {r['N']} | {r['D']} | {r['analytic_s']:.3f} s | "
                     f"{r['generic_reverse_s']:.3f} s | {r['generic_forward_s']:.3f} s | "
                     f"{r['generic_over_analytic']:.1f}× | {r['max_abs_diff_float64']:.1e} |")
    return lines


def markdown(result: dict) -> str:
    if "sizes" not in result:  # only the generic cell's part has been run
        return "\n".join(["# Spectrum engine speed", "", *generic_markdown(result["generic"])]) \
            + "\n"
    lines = [f"# Spectrum engine speed ({result['device']})", "",
             f"Command: `{result['command']}`", "",
             f"Machine: {result['machine']}; torch {result['torch']}, "
             f"{result['threads']} threads; LSTM input {INPUT}, B = {B}, T = {T}, W = {W}, "
             "float32, T_ON = 1, dh/dh convention (N exponents) unless noted.", "",
             "| N | engine | plain loop | speed-up | engine, sequences not split | "
             "floor (J·Q) | engine 2N state | "
             "engine k=N/8 | k=N/8 gain | engine T_ON=2 | autograd loop | J: analytic vs "
             "vmap(jacrev) / vs autograd.functional | err engine | err plain | err T_ON=2 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["sizes"]:
        auto = f"{r['autograd_loop_s']:.2f} s" if "autograd_loop_s" in r else "-"
        jac = (f"{r['jacobian_speedup']:.0f}× / {r['jacobian_speedup_functional']:.0f}×"
               if "jacobian_speedup" in r else "-")
        lines.append(
            f"| {r['N']} | {r['engine_s']:.3f} s | {r['plain_loop_s']:.3f} s | "
            f"{r['speedup_vs_plain']:.2f}× | {r['engine_one_slice_s']:.3f} s | "
            f"{r['floor_s']:.3f} s | "
            f"{r['engine_full_state_s']:.3f} s | {r['engine_k_n8_s']:.3f} s | "
            f"{r['speedup_k_n8_vs_full']:.1f}× | {r['engine_t_on2_s']:.3f} s | {auto} | {jac} | "
            f"{r['engine_err_leading_half']:.1e} | {r['plain_loop_err_leading_half']:.1e} | "
            f"{r['engine_t_on2_err_leading_half']:.1e} |")
    g = result["many_grus"]
    lines += ["", f"32 GRUs of 64 units (input 28), one stacked call: {g['batched_s']:.2f} s, "
              f"{g['spectra_per_s_batched']:.1f} spectra/s; one call each: "
              f"{g['one_by_one_s']:.2f} s, {g['spectra_per_s_one_by_one']:.1f} spectra/s.", "",
              "engine: the sequences split over the torch threads, each thread single-threaded "
              "(`threads=None`); not split: `threads=1`, one batch on all threads. "
              "err: max |λ_i − λ_i(float64)| over the leading half of the spectrum. "
              "J: time to form one step's B Jacobians, autograd over analytic.",
              "Times are medians of the repeats; CPU timings on a shared 2-core machine are "
              "noisy, compare columns of one run."]
    if "generic" in result:
        lines += ["", *generic_markdown(result["generic"])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--autograd-max", type=int, default=256,
                        help="largest N for the (slow) autograd columns")
    parser.add_argument("--generic-sizes", type=int, nargs="+", default=[16, 64],
                        help="hidden sizes N for the generic cell against the analytic cells")
    parser.add_argument("--generic-only", action="store_true",
                        help="run only the generic cell's part and replace it in the results")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    machine = describe()
    if args.device == "cuda":
        machine = torch.cuda.get_device_name()
    meta = {"device": args.device, "machine": machine, "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "command": " ".join(["python -m bench.spectrum_speed", *(sys.argv[1:] if argv is None
                                                                 else argv)])}
    stem = "spectrum_speed" if args.device == "cpu" else f"spectrum_speed_{args.device}"
    saved = args.out / f"{stem}.json"
    if args.generic_only:
        result = json.loads(saved.read_text()) if saved.exists() else {}
    else:
        result = dict(meta, sizes=[])
        for n in args.sizes:
            row = size_row(n, args.device, args.repeats, n <= args.autograd_max)
            result["sizes"].append(row)
            print(json.dumps(row), flush=True)
        result["many_grus"] = many_grus(args.device, args.repeats)
        print(json.dumps(result["many_grus"]), flush=True)
    result["generic"] = dict(meta, rows=generic_rows(args.generic_sizes, args.device,
                                                     args.repeats))

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
