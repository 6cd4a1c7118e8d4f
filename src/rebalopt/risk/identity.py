"""Identity: plain weight distance when no risk model exists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rebalopt.risk.base import RiskModel

__all__ = ["Identity"]


@dataclass(frozen=True, eq=False)
class Identity(RiskModel):
    r"""``Sigma = I``: tracking variance is the squared weight distance.

    .. math:: d^\top \Sigma d = \sum_i d_i^2

    Units: weights squared (fractions of equity squared), *not* an annualized
    variance; with this model ``risk_aversion`` trades cost against squared weight
    distance. The root is ``G`` of shape ``(n, 0)`` and ``s = 1``. Covers every asset.
    """

    def _known_assets(self) -> pd.Index | None:
        return None

    def _root_known(self, assets: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(assets), 0)), np.ones(len(assets))

    def _covariance_known(self, assets: pd.Index) -> np.ndarray:
        return np.eye(len(assets))

    def average_idio_variance(self) -> float:
        return 1.0
