"""Covariance: a dense annualized covariance matrix, factored once per universe."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from rebalopt.risk._validate import clean_square, psd_repair
from rebalopt.risk.base import MissingPolicy, RiskModel, factor_root

__all__ = ["Covariance", "PsdPolicy"]

PsdPolicy = Literal["repair", "raise"]


@dataclass(frozen=True, eq=False)
class Covariance(RiskModel):
    r"""A dense annualized covariance ``Sigma`` (tickers x tickers).

    .. math:: d^\top \Sigma d, \qquad \Sigma = L L^\top

    The root for a universe is the Cholesky factor of the sub-matrix in that order
    (or, when that sub-matrix is singular, the eigen root ``V sqrt(lambda)`` over its
    positive eigenvalues), with ``s = 0``. It is computed once per asset order and
    cached.

    Parameters
    ----------
    matrix
        DataFrame with the same tickers as index and columns (any column order),
        annualized, (fraction)^2 per year. Must be finite and symmetric (relative
        tolerance ``1e-8``; it is then symmetrized exactly) with a non-negative
        diagonal.
    psd
        What to do when ``matrix`` is not positive semidefinite. ``"repair"``
        (default): clip its eigenvalues at zero, ``V max(lambda, 0) V'``, the nearest
        PSD matrix in the Frobenius norm (Higham 1988), and emit a ``UserWarning`` (no warning when the negative
        eigenvalues are rounding noise, above ``-1e-10 * max|lambda|``; they are
        clipped all the same);
        ``repaired`` and ``min_eigenvalue`` record what happened. ``"raise"``:
        raise :class:`~rebalopt.errors.InputError` (field ``"covariance"``).
    missing
        ``"raise"`` (default) or ``"average"``: an asset the model lacks gets zero
        correlation and the mean diagonal variance.
    """

    matrix: pd.DataFrame
    psd: PsdPolicy = "repair"
    missing: MissingPolicy = "raise"
    repaired: bool = field(init=False, default=False)
    """Whether eigenvalue clipping changed the input (even at rounding level)."""
    min_eigenvalue: float = field(init=False, default=float("nan"))
    """Smallest eigenvalue of the input (NaN when Cholesky proved it positive definite)."""
    _sigma: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._check_missing(self.missing)
        df = clean_square(self.matrix, "covariance")
        arr, lmin, material = psd_repair(df.to_numpy(), "covariance", self.psd, df.index)
        repaired = bool(lmin < 0)
        if material:
            warnings.warn(
                f"covariance is not positive semidefinite (smallest eigenvalue {lmin:.3g}); "
                "repaired by clipping eigenvalues at zero",
                UserWarning, stacklevel=3,
            )
        object.__setattr__(self, "repaired", repaired)
        object.__setattr__(self, "min_eigenvalue", lmin)
        object.__setattr__(self, "_sigma", pd.DataFrame(arr, index=df.index, columns=df.index))

    @property
    def sigma(self) -> pd.DataFrame:
        """The validated (and, if needed, repaired) annualized covariance."""
        return self._sigma.copy()

    def _known_assets(self) -> pd.Index:
        return self._sigma.index

    def _sub(self, assets: pd.Index) -> np.ndarray:
        pos = self._sigma.index.get_indexer(assets)
        return self._sigma.to_numpy()[np.ix_(pos, pos)]

    def _root_known(self, assets: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        return factor_root(self._sub(assets)), np.zeros(len(assets))

    def _covariance_known(self, assets: pd.Index) -> np.ndarray:
        return self._sub(assets).copy()

    def average_idio_variance(self) -> float:
        d = np.diag(self._sigma.to_numpy())
        return float(d.mean()) if d.size else 0.0
