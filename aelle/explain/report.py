"""A self-contained HTML report of an :class:`Explanation` (PNG figures embedded as base64),
with the same numbers as JSON beside it."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from aelle.explain.run import Explanation


def write_report(exp: Explanation, directory: str | Path,
                 stem: str = "explain") -> tuple[Path, Path]:
    """Write ``stem.html`` and ``stem.json`` under ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    json_path.write_text(json.dumps(report_json(exp), indent=1))
    html_path = directory / f"{stem}.html"
    html_path.write_text(render_html(exp))
    return html_path, json_path


def report_json(exp: Explanation) -> dict:
    """The report's numbers as JSON-ready data (:class:`aelle.explain.schema.ReportDoc`), a
    non-finite number as None."""
    return _finite(exp.to_dict())


def render_html(exp: Explanation) -> str:
    figures = figures_of(exp)
    lin, kann, graph, views = exp.linearisation, exp.koopman, exp.attractors, exp.lyapunov
    rows = [("spectral radius of A", f"{lin.spectral_radius:.4f}"),
            ("static gain D", _fmt(lin.d)), ("steady-state gain", _fmt(lin.dc_gain)),
            ("operating point residual", f"{lin.point.residual:.2e}"),
            ("fixed points (stable / all)", f"{len(graph.stable)} / {len(graph.points)}"),
            ("transitions", str(len(graph.transitions))),
            ("Koopman rank", str(kann.matrix.shape[0])),
            ("KANN relative state error", f"{kann.relative_error:.3e}"),
            ("KANN accuracy error", "n/a" if kann.accuracy_error is None
             else f"{kann.accuracy_error:.4f}"),
            ("KANN output error", f"{kann.output_error:.3e}"),
            ("max Lyapunov exponent", f"{views.exponents[0]:.4f}")]
    if exp.true_poles is not None:
        rows.insert(1, ("distance to the true poles", exp.to_dict()["true_poles"]["distance"]))
    if exp.ablation is not None:
        a = exp.ablation
        for k, r, m in zip(a.counts, a.ranked, a.random, strict=True):
            rows.append((f"ablation of {k} units, ranked / random ({a.loss})",
                         f"{r:.4g} / {m:.4g} (intact {a.baseline:.4g})"))
    meta = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in exp.meta.items())
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                      for k, v in rows)
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in exp.seconds.items())
    skipped = "".join(f"<p class=skip>{html.escape(k)}: {html.escape(v)}</p>"
                      for k, v in exp.skipped.items())
    figs = "".join(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
                   f"src='data:image/png;base64,{png}'>" for name, png in figures.items())
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(exp.title)}</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} img{{max-width:100%}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
.skip{{color:#a50}}</style></head><body>
<h1>{html.escape(exp.title)}</h1><table>{meta}</table><h2>Summary</h2><table>{summary}</table>
<p>Method times: {html.escape(timing)}</p>{skipped}{figs}</body></html>
"""


def figures_of(exp: Explanation) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    if exp.responses is not None:
        out["Single-unit responses (seed 000)"] = _png(plt, _responses(plt, exp))
    out["Pole-zero map and Bode plot (seed 002)"] = _png(plt, _poles(plt, exp))
    out["Attractor graph (seed 003)"] = _png(plt, _graph(plt, exp))
    out["Koopman eigenvalues and memory horizons (seed 004)"] = _png(plt, _koopman(plt, exp))
    out["Lyapunov spectra"] = _png(plt, _spectra(plt, exp))
    return out


def _png(plt, fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _responses(plt, exp):
    r = exp.responses
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    rank = r.ranking("delta")
    top = set(rank[: max(1, len(rank) // 8)].tolist())
    for u in range(len(r.units)):
        kw = {"color": "C3", "lw": 1.2} if u in top else {"color": "0.7", "lw": 0.6}
        ax[0].plot(r.step[u], **kw)
        ax[1].plot(r.sine[u], **kw)
    ax[0].set_title("step responses (red: top |delta|)")
    ax[1].set_title(f"sinusoid responses, f = {r.sine_frequency} cycles/step")
    ax[2].scatter(r.metric("settling_time"), r.metric("delta"), c=r.metric("amplitude"), s=14)
    ax[2].set_xlabel("settling time (steps)")
    ax[2].set_ylabel("delta response")
    if exp.ablation is not None:
        a = exp.ablation
        inset = ax[2].inset_axes([0.62, 0.62, 0.36, 0.36])
        inset.plot(a.counts, a.ranked, "o-", label="ranked")
        inset.errorbar(a.counts, a.random, a.random_std, fmt="s--", label="random")
        inset.set_title("ablation loss", fontsize=8)
        inset.legend(fontsize=6)
    return fig


def _poles(plt, exp):
    lin = exp.linearisation
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    t = np.linspace(0, 2 * np.pi, 200)
    ax[0].plot(np.cos(t), np.sin(t), "k", lw=0.5)
    ax[0].plot(lin.poles.real, lin.poles.imag, "x", label="poles")
    z = lin.zeros[0][0] if lin.zeros and lin.zeros[0] else np.array([])
    z = z[np.abs(z) < 3]
    ax[0].plot(z.real, z.imag, "o", mfc="none", label="zeros (channel 0 -> 0)")
    if exp.true_poles is not None:
        ax[0].plot(exp.true_poles.real, exp.true_poles.imag, "+", ms=12, c="C3",
                   label="true poles")
    ax[0].set_aspect("equal")
    ax[0].legend(fontsize=7)
    ax[0].set_title("pole-zero map")
    w, h = lin.frequency_response(256)
    for o in range(min(h.shape[1], 3)):
        for i in range(min(h.shape[2], 3)):
            mag = 20 * np.log10(np.abs(h[:, o, i]) + 1e-300)
            ax[1].semilogx(w[1:], mag[1:], label=f"{i}->{o}")
            ax[2].semilogx(w[1:], np.unwrap(np.angle(h[1:, o, i])) * 180 / np.pi)
    ax[1].set_title("Bode magnitude (dB)")
    ax[2].set_title("Bode phase (degrees)")
    ax[1].set_xlabel("rad / step")
    ax[2].set_xlabel("rad / step")
    ax[1].legend(fontsize=7)
    return fig


def _graph(plt, exp):
    g = exp.attractors
    fig, ax = plt.subplots(figsize=(7, 6))
    if not g.points:
        ax.text(0.5, 0.5, "no fixed point found", ha="center")
        return fig
    pts = np.stack([p.state for p in g.points])
    centred = pts - pts.mean(0)
    if len(pts) > 1 and np.abs(centred).max() > 0:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[: min(2, len(vt))].T
        xy = xy if xy.shape[1] == 2 else np.column_stack([xy[:, 0], np.zeros(len(xy))])
    else:
        xy = np.zeros((len(pts), 2))
    colour = {"stable": "C2", "saddle": "C1", "unstable": "C3"}
    for i, p in enumerate(g.points):
        ax.scatter(*xy[i], s=60 + 10 * math.log1p(p.hits), c=colour[p.kind], zorder=3)
        ax.annotate(str(i), xy[i], textcoords="offset points", xytext=(5, 5))
    for tr in g.transitions:
        if tr.target < 0:
            continue
        ax.annotate("", xy[tr.target], xy[tr.source],
                    arrowprops={"arrowstyle": "->", "alpha": 0.5,
                                "connectionstyle": "arc3,rad=0.15"})
    ax.set_title(f"{len(g.stable)} stable points (green), {len(g.transitions)} pulse-driven "
                 "transitions\n(first two principal components of the points)")
    return fig


def _koopman(plt, exp):
    k = exp.koopman
    fig, ax = plt.subplots(1, 2, figsize=(12, 5))
    t = np.linspace(0, 2 * np.pi, 200)
    ax[0].plot(np.cos(t), np.sin(t), "k", lw=0.5)
    tau = k.memory_horizons
    shown = np.where(np.isfinite(tau), tau, np.nan)
    sc = ax[0].scatter(k.eigenvalues.real, k.eigenvalues.imag, c=np.log10(shown + 1), s=18)
    fig.colorbar(sc, ax=ax[0], label=f"log10(1 + tau), eps = {k.epsilon}")
    ax[0].set_aspect("equal")
    ax[0].set_title(f"Koopman eigenvalues (rank {k.matrix.shape[0]})")
    ax[1].bar(np.arange(len(tau)), np.where(np.isfinite(tau), tau, 0))
    ax[1].set_yscale("symlog")
    ax[1].set_title("memory horizon tau(eps) per mode (steps)")
    return fig


def _spectra(plt, exp):
    v = exp.lyapunov
    fig, ax = plt.subplots(1, 4, figsize=(18, 4))
    ax[0].plot(v.exponents, ".-")
    ax[0].set_title("Lyapunov spectrum")
    for j in range(min(4, v.ftle.shape[1])):
        ax[1].plot(v.ftle_steps, v.ftle[:, j], lw=0.8, label=f"{j}")
    ax[1].set_title("finite-time exponents (mean over sequences)")
    ax[1].legend(fontsize=7)
    ax[2].imshow(v.alignment, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax[2].set_title("|cos| of Lyapunov vectors with readout rows")
    ax[2].set_xlabel("vector")
    ax[2].set_ylabel("output")
    if len(v.epochs):
        for row, e in zip(v.across_epochs, v.epochs, strict=True):
            ax[3].plot(row, lw=0.8, color=plt.cm.viridis(e / max(v.epochs) if max(v.epochs)
                                                        else 0.0))
        ax[3].set_title("spectrum across epochs (dark: early)")
    else:
        ax[3].text(0.5, 0.5, "no per-epoch spectra given", ha="center")
    return fig


def _fmt(m: np.ndarray) -> str:
    return np.array2string(np.asarray(m), precision=4, max_line_width=80)


def _finite(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, np.generic):
        return _finite(x.item())
    return x
