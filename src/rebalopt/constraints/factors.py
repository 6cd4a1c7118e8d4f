"""Factor exposure bounds on post-trade weights.

Units: exposures are loadings times weights (fractions of equity); loadings are
per unit of weight (for example a beta, or a style z-score).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import (
    Constraint,
    MatrixLayout,
    MatrixRows,
    Point,
)
from rebalopt.errors import InputError
from rebalopt.program.search import Kernel, LinearRows
from rebalopt.state import PortfolioState

__all__ = ["FactorBounds"]

FactorBound = float | Mapping[str, float] | None


@dataclass
class FactorBounds(Constraint):
    r"""Bounds on post-trade factor exposures :math:`l_f \le B_f^\top w \le u_f`.

    With ``relative=True`` the bounds are offsets from the target's exposures
    :math:`B_f^\top w^*`.

    Parameters
    ----------
    loadings
        DataFrame indexed by ticker, one column per factor. Every asset of the
        universe must have a row (a missing one is an input error).
    upper, lower
        A number for every factor or a mapping factor -> bound; ``None``: no bound.
    relative
        Bounds relative to the target's exposures.
    """

    loadings: pd.DataFrame = field(default_factory=pd.DataFrame)
    upper: FactorBound = None
    lower: FactorBound = None
    relative: bool = False
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    units: str = "exposure"

    def __post_init__(self) -> None:
        self._validate_soft()
        if not isinstance(self.loadings, pd.DataFrame) or self.loadings.shape[1] == 0:
            raise InputError("loadings must be a DataFrame with one column per factor",
                             field="FactorBounds.loadings")
        if not np.isfinite(self.loadings.to_numpy(dtype=float)).all():
            raise InputError("loadings contain a non-finite value", field="FactorBounds.loadings")
        if self.upper is None and self.lower is None:
            raise InputError("give upper, lower or both", field="FactorBounds")
        self.loadings = self.loadings.copy()
        self.loadings.index = self.loadings.index.map(str)
        self.loadings.columns = self.loadings.columns.map(str)

    def _side(self, side: FactorBound) -> dict[str, float]:
        cols = list(self.loadings.columns)
        if side is None:
            return {}
        if np.isscalar(side):
            return {c: float(side) for c in cols}  # type: ignore[arg-type]
        out = {str(k): float(v) for k, v in side.items()}  # type: ignore[union-attr]
        for k in out:
            if k not in cols:
                raise InputError(f"factor {k!r} is not a column of loadings", field="FactorBounds")
        return out

    def _loadings(self, state: PortfolioState) -> np.ndarray:
        missing = ~state.assets.isin(self.loadings.index)
        if missing.any():
            raise InputError("asset has no factor loadings", asset=str(state.assets[missing][0]),
                             field="FactorBounds.loadings")
        return self.loadings.reindex(state.assets).to_numpy(dtype=float).T  # (f, n)

    def _rows(self, state: PortfolioState, targets: FloatArray, w: FloatArray | None
              ) -> tuple[FloatArray, FloatArray, np.ndarray, np.ndarray, np.ndarray]:
        """Exposures of ``w`` (or zeros), upper/lower rhs, and the factor indices."""
        B = self._loadings(state)
        cols = list(self.loadings.columns)
        up, lo = self._side(self.upper), self._side(self.lower)
        iu = np.array([cols.index(c) for c in up], dtype=int)
        il = np.array([cols.index(c) for c in lo], dtype=int)
        hi = np.array(list(up.values()), dtype=float)
        lw = np.array(list(lo.values()), dtype=float)
        if self.relative:
            e_t = B @ targets
            hi, lw = hi + e_t[iu], lw + e_t[il]
        expo = B @ w if w is not None else np.zeros(B.shape[0])
        return expo, hi, lw, iu, il

    def structure(self, state: PortfolioState, targets: FloatArray) -> Hashable:
        return tuple(self._side(self.upper)), tuple(self._side(self.lower))

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        B = self._loadings(state)
        _, hi, lw, iu, il = self._rows(state, targets, None)
        out: list[MatrixRows] = []
        if iu.size:  # exposures of the post-trade weights
            out.append(MatrixRows.dense_rows(layout.w, B[iu], hi))
        if il.size:
            out.append(MatrixRows.dense_rows(layout.w, -B[il], -lw))
        return out

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        e, hi, lw, iu, il = self._rows(point.state, point.targets, point.w)
        return np.concatenate([e[iu], -e[il]]), np.concatenate([hi, -lw])

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return ([f"{c} <= upper" for c in self._side(self.upper)]
                + [f"{c} >= lower" for c in self._side(self.lower)])

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """The exposure rows as linear rows on ``w`` (:mod:`rebalopt.program.search`)."""
        B = self._loadings(state)
        _, hi, lw, iu, il = self._rows(state, targets, None)
        A = np.vstack([B[iu], -B[il]]) if (iu.size + il.size) else np.zeros((0, state.n))
        return [LinearRows(sp.csr_matrix(A), np.concatenate([hi, -lw]), state.n)]
