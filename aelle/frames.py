"""Orthonormal frames for the QR iteration: how J·Q is formed and re-orthonormalised.

The textbook step is ``Q, R = qr(J @ Q)``: a matrix product, a Householder factorisation
(geqrf) and the explicit formation of Q (orgqr). For the full spectrum the explicit Q is never
needed: keeping Q as its Householder reflectors, the next product J·Q is one LAPACK ``ormqr``
call and orgqr disappears. On this project's CPU that makes a full step about 1.6x faster at
N = 256 at identical accuracy (see bench/spectrum_speed.py). For k < D the explicit thin Q is
cheaper (ormqr would apply the reflectors to all D columns of J), so it is kept.

That choice is the CPU's. On CUDA, cuSOLVER's ormqr and orgqr both run one matrix of the batch
at a time, while J·Q is one batched GEMM and geqrf is batched (cuBLAS) up to D = 256: there
orgqr + GEMM does fewer flops in the looped call than ormqr, so the explicit frame is kept at
every size. The threshold is per device type (``REFLECTORS_FROM``), and a device type it does
not name keeps the explicit frame.

CholeskyQR2 (two Gram-matrix Cholesky passes) was measured too and was slower than Householder
on the CPU (batched LAPACK potrf/trsm on small matrices), and loses the trailing exponents
when J is ill-conditioned, so it is not used.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Per device type, the smallest D from which a full frame is kept as reflectors: on the CPU,
# below 40 ormqr's fixed cost outweighs orgqr + matmul (measured). Device types not named here
# (cuda, meta, ...) keep the explicit frame; bench/gpu.py times both on a GPU.
REFLECTORS_FROM: dict[str, int] = {"cpu": 40}


def keeps_reflectors(y: Tensor) -> bool:
    """Whether the square frames ``y`` (..., D, D) are best kept as Householder reflectors on
    their device."""
    start = REFLECTORS_FROM.get(y.device.type)
    return start is not None and y.shape[-1] == y.shape[-2] >= start


class Frame:
    """A batch of k orthonormal directions in R^D, possibly not yet orthonormalised.

    Holds either an explicit tensor ``(..., D, k)`` or, after a full-rank factorisation, the
    Householder reflectors of a ``geqrf`` (the frame is then the first k columns of Q).
    """

    def __init__(self, explicit: Tensor | None = None, reflectors=None, k: int | None = None,
                 signs: Tensor | None = None):
        self.explicit = explicit
        self.reflectors = reflectors
        self.k = k if k is not None else explicit.shape[-1]
        # LAPACK leaves diag R of either sign. The frame with diag R > 0 at every step differs
        # from ours by the running product of those signs, per column: kept for ``tensor()``
        # when the frame was created with ``track_signs`` (None: not tracked).
        self.signs = signs

    @classmethod
    def identity(cls, batch_shape, dim: int, k: int, dtype, device,
                 track_signs: bool = False) -> Frame:
        q = torch.eye(dim, k, dtype=dtype, device=device).expand(*batch_shape, dim, k).clone()
        signs = torch.ones(*batch_shape, k, dtype=dtype, device=device) if track_signs else None
        return cls(q, signs=signs)

    def apply(self, j: Tensor) -> Frame:
        """The frame mapped by the Jacobians: J @ Q."""
        if self.reflectors is not None:
            a, tau = self.reflectors
            return Frame(torch.ormqr(a, tau, j, left=False), k=self.k, signs=self.signs)
        return Frame(j @ self.explicit, k=self.k, signs=self.signs)

    def orthonormalise(self) -> tuple[Frame, Tensor]:
        """QR-factorise; return the orthonormal frame and |diag R| as (..., k)."""
        y = self.explicit
        if keeps_reflectors(y):
            a, tau = torch.geqrf(y)
            d = torch.diagonal(a, 0, -2, -1)
            return Frame(reflectors=(a, tau), k=self.k, signs=self._signs_after(d)), d.abs()
        q, r = torch.linalg.qr(y)
        d = torch.diagonal(r, 0, -2, -1)
        return Frame(q, signs=self._signs_after(d)), d.abs()

    def park(self, mask: Tensor) -> Frame:
        """The frames of the batch entries in ``mask`` (batch shape) reset to the first k
        columns of I (for diverged sequences, so that LAPACK sees no NaN again)."""
        if self.reflectors is not None:
            a, tau = self.reflectors  # zero reflectors with tau = 0 are identities
            parked = (a.masked_fill(mask[..., None, None], 0.0),
                      tau.masked_fill(mask[..., None], 0.0))
            return Frame(reflectors=parked, k=self.k, signs=self.signs)
        q = self.explicit
        eye = torch.eye(q.shape[-2], q.shape[-1], dtype=q.dtype, device=q.device)
        return Frame(torch.where(mask[..., None, None], eye, q), signs=self.signs)

    def _signs_after(self, diag: Tensor) -> Tensor | None:
        if self.signs is None:
            return None
        return torch.where(diag < 0, -self.signs, self.signs)

    def tensor(self) -> Tensor:
        """The explicit (..., D, k) directions; columns signed so that diag R > 0 if the
        signs were tracked."""
        q = (self.explicit if self.reflectors is None
             else torch.linalg.householder_product(*self.reflectors))
        return q if self.signs is None else q * self.signs[..., None, :]
