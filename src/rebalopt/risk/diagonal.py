"""Diagonal: uncorrelated assets with their own annualized variances."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rebalopt._typing import AssetValues
from rebalopt.risk._validate import clean_series
from rebalopt.risk.base import MissingPolicy, RiskModel

__all__ = ["Diagonal"]


@dataclass(frozen=True, eq=False)
class Diagonal(RiskModel):
    r"""``Sigma = diag(v)``: uncorrelated asset returns.

    .. math:: d^\top \Sigma d = \sum_i v_i d_i^2

    Parameters
    ----------
    variances
        Annualized return variance per ticker, (fraction)^2 per year, ``>= 0``
        (for example ``0.3**2`` for a 30% annual volatility).
    missing
        ``"raise"`` (default) or ``"average"``: an asset the model lacks gets the
        mean of ``variances``.
    """

    variances: pd.Series | AssetValues
    missing: MissingPolicy = "raise"
    _v: pd.Series = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._check_missing(self.missing)
        object.__setattr__(self, "_v", clean_series(self.variances, "variance"))

    def _known_assets(self) -> pd.Index:
        return self._v.index

    def _root_known(self, assets: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        v = self._v.to_numpy()[self._v.index.get_indexer(assets)]
        return np.zeros((len(assets), 0)), np.sqrt(v)

    def _covariance_known(self, assets: pd.Index) -> np.ndarray:
        return np.diag(self._v.reindex(assets).to_numpy())

    def average_idio_variance(self) -> float:
        return float(self._v.mean()) if len(self._v) else 0.0
