"""Why a trained network works: the methods of the source documents, one module each.

    net = network_of(model)                      # a cell (M = 1) with its linear readout
    lin = linearise(net)                         # seed 002: (A, B, C, D), poles, zeros, gains
    graph = attractor_graph(net, starts, [1.0])  # seed 003: fixed points and transitions
    kann = koopman(net, probe, warmup=20)        # seed 004: Koopman matrix, memory horizons
    resp = responses(net)                        # seed 000: single-unit step / sine responses
    views = lyapunov_views(net, probe, warmup=20)

Each is a pure function of the network and its probe inputs returning a frozen dataclass.
"""

from aelle.explain.fixed_points import (
    AttractorGraph,
    FixedPoint,
    Transition,
    attractor_graph,
    fixed_points,
)
from aelle.explain.koopman import KoopmanResult, koopman, koopman_states, memory_horizon
from aelle.explain.linear_lstm import lstm_realising, seed_system
from aelle.explain.linearise import (
    Linearisation,
    OperatingPoint,
    linearise,
    operating_point,
    pole_distance,
)
from aelle.explain.lyapunov import LyapunovViews, lyapunov_views, spectra_across_epochs
from aelle.explain.network import Network, network_of
from aelle.explain.report import render_html, report_json, write_report
from aelle.explain.responses import Ablation, Responses, ablate, ablation, responses
from aelle.explain.run import Explanation, explain

__all__ = [
    "Ablation", "AttractorGraph", "Explanation", "FixedPoint", "KoopmanResult", "Linearisation",
    "LyapunovViews", "Network", "OperatingPoint", "Responses", "Transition", "ablate", "ablation",
    "attractor_graph", "explain", "fixed_points", "koopman", "koopman_states", "linearise",
    "lstm_realising", "lyapunov_views", "memory_horizon", "network_of", "operating_point",
    "pole_distance", "render_html", "report_json", "responses", "seed_system",
    "spectra_across_epochs", "write_report",
]
