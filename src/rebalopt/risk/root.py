"""RiskRoot: a factored annualized covariance, aligned to a universe.

.. math:: \\Sigma = G G^\\top + \\operatorname{diag}(s^2)

Units: ``Sigma`` is annualized, in (fraction of equity)^2 per year, so ``d' Sigma d``
for a weight difference ``d`` is an annualized tracking variance. The optimizer
writes tracking risk as ``sum_squares(G.T @ d) + sum_squares(s * d)``, never a
dense N x N quadratic form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.errors import InputError

__all__ = ["RiskRoot"]


@dataclass(frozen=True, eq=False)
class RiskRoot:
    """Root of an annualized covariance: ``Sigma = G @ G.T + diag(s**2)``.

    Parameters
    ----------
    G
        Array of shape ``(n, k)``; ``k`` may be 0. Rows follow the universe order
        the root was built for (``PortfolioState.assets``). Units: fraction per
        sqrt(year) per unit weight.
    s
        Array of shape ``(n,)``: idiosyncratic standard deviations, annualized
        (fraction per sqrt(year)), ``>= 0``.

    Both arrays are made read-only: roots are cached and shared.
    """

    G: np.ndarray
    s: np.ndarray

    def __post_init__(self) -> None:
        G = np.array(self.G, dtype=float, copy=True)
        s = np.array(self.s, dtype=float, copy=True)
        if s.ndim != 1:
            raise InputError(f"s must be one-dimensional, got shape {s.shape}", field="s")
        if G.ndim != 2 or G.shape[0] != s.shape[0]:
            raise InputError(
                f"G must have shape (n, k) with n = len(s) = {s.shape[0]}, got {G.shape}",
                field="G",
            )
        if not np.isfinite(G).all():
            raise InputError("G contains a non-finite value", field="G")
        if not np.isfinite(s).all() or (s < 0).any():
            raise InputError("s must be finite and >= 0", field="s")
        G.setflags(write=False)
        s.setflags(write=False)
        object.__setattr__(self, "G", G)
        object.__setattr__(self, "s", s)

    @property
    def n(self) -> int:
        """Number of assets (rows)."""
        return int(self.s.shape[0])

    @property
    def k(self) -> int:
        """Number of columns of ``G`` (factors, or the rank of a dense root)."""
        return int(self.G.shape[1])

    def _check(self, d: np.ndarray) -> FloatArray:
        arr = np.asarray(d, dtype=float)
        if arr.shape != (self.n,):
            raise InputError(
                f"weight difference of shape {arr.shape} does not match {self.n} assets",
                field="weight difference",
            )
        return arr

    def variance(self, d: np.ndarray) -> float:
        """Annualized variance ``d' Sigma d`` of a weight vector ``d`` (fractions of equity).

        Costs ``O(n k)``: ``|G' d|^2 + |s * d|^2``.
        """
        arr = self._check(d)
        f = self.G.T @ arr
        e = self.s * arr
        return float(f @ f + e @ e)

    def tracking_error(self, d: np.ndarray) -> float:
        """Annualized tracking error ``sqrt(d' Sigma d)`` (fraction per sqrt(year))."""
        return float(np.sqrt(self.variance(d)))

    def covariance(self) -> np.ndarray:
        """Dense ``G G' + diag(s^2)``, shape ``(n, n)``; for tests and diagnostics only."""
        return self.G @ self.G.T + np.diag(self.s**2)
