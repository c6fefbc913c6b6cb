"""Noisy RNN (Lim et al. 2021), Chapter 3 Appendix C, analysed without its noise.

Training adds multiplicative and additive noise to the Lipschitz-form update
h_t = h_{t-1} + dt (alpha A h_{t-1} + tanh(W h_{t-1} + U x_t + b)); the spectrum is that of the
deterministic map (noise switched off, multiplicative factor 1), so the cell is the Lipschitz
map under its own name.
"""

from __future__ import annotations

import dataclasses

from aelle.cells.lipschitz import LipschitzCell
from aelle.cells.registry import register


@register("noisy")
@dataclasses.dataclass(frozen=True)
class NoisyRNNCell(LipschitzCell):
    pass
