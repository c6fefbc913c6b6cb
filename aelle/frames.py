"""Orthonormal frames for the QR iteration: how J·Q is formed and re-orthonormalised.

The textbook step is ``Q, R = qr(J @ Q)``: a matrix product, a Householder factorisation
(geqrf) and the explicit formation of Q (orgqr). For the full spectrum the explicit Q is never
needed: keeping Q as its Householder reflectors, the next product J·Q is one LAPACK ``ormqr``
call and orgqr disappears. On this project's CPU that makes a full step about 1.6x faster at
N = 256 at identical accuracy (see bench/spectrum_speed.py). For k < D the explicit thin Q is
cheaper (ormqr would apply the reflectors to all D columns of J), so it is kept.

CholeskyQR2 (two Gram-matrix Cholesky passes) was measured too and was slower than Householder
on the CPU (batched LAPACK potrf/trsm on small matrices), and loses the trailing exponents
when J is ill-conditioned, so it is not used.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
        # from ours by the running product of those signs, per column; kept for ``tensor()``.
        self.signs = signs

    @classmethod
    def identity(cls, batch_shape, dim: int, k: int, dtype, device) -> Frame:
        q = torch.eye(dim, k, dtype=dtype, device=device).expand(*batch_shape, dim, k).clone()
        return cls(q)

    def apply(self, j: Tensor) -> Frame:
        """The frame mapped by the Jacobians: J @ Q."""
        if self.reflectors is not None:
            a, tau = self.reflectors
            return Frame(torch.ormqr(a, tau, j, left=False), k=self.k, signs=self.signs)
        return Frame(j @ self.explicit, k=self.k, signs=self.signs)

    def orthonormalise(self) -> tuple[Frame, Tensor]:
        """QR-factorise; return the orthonormal frame and |diag R| as (..., k)."""
        y = self.explicit
        if y.shape[-1] == y.shape[-2]:
            a, tau = torch.geqrf(y)
            d = torch.diagonal(a, 0, -2, -1)
            return Frame(reflectors=(a, tau), k=self.k, signs=self._signs_after(d)), d.abs()
        q, r = torch.linalg.qr(y)
        d = torch.diagonal(r, 0, -2, -1)
        return Frame(q, signs=self._signs_after(d)), d.abs()

    def _signs_after(self, diag: Tensor) -> Tensor:
        sign = torch.where(diag < 0, -1.0, 1.0).to(diag.dtype)
        return sign if self.signs is None else sign * self.signs

    def tensor(self) -> Tensor:
        """The explicit (..., D, k) directions, columns signed so that diag R > 0."""
        q = (self.explicit if self.reflectors is None
             else torch.linalg.householder_product(*self.reflectors))
        return q if self.signs is None else q * self.signs[..., None, :]
