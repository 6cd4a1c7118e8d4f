"""Portfolio-level constraints: gross and net leverage, and the cash floor.

Units: weights and cash are fractions of pre-trade equity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import (
    Constraint,
    MatrixLayout,
    MatrixRows,
    Point,
    require_nonneg,
)
from rebalopt.errors import InputError
from rebalopt.program.search import Aggregate, CashRow, Kernel
from rebalopt.state import PortfolioState

__all__ = ["CashFloor", "Leverage"]


@dataclass
class Leverage(Constraint):
    r"""Gross and net leverage of post-trade positions.

    .. math:: \sum_i |w_i| \le \text{gross}, \qquad |\textstyle\sum_i w_i| \le \text{net}

    Parameters
    ----------
    gross
        Largest sum of absolute weights (fraction of equity); ``None``: no limit.
    net
        Largest absolute net exposure ``|sum(w)|``; ``None``: no limit.
    """

    gross: float | None = None
    net: float | None = None
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()
        if self.gross is None and self.net is None:
            raise InputError("give gross, net or both", field="Leverage")
        for name in ("gross", "net"):
            if getattr(self, name) is not None:
                require_nonneg(getattr(self, name), f"Leverage.{name}")

    def describe(self) -> str:
        parts = [f"{k}={getattr(self, k):g}" for k in ("gross", "net") if getattr(self, k) is not None]
        return f"Leverage({', '.join(parts)})"

    def structure(self, state: PortfolioState, targets: FloatArray) -> tuple[bool, bool]:
        return self.gross is None, self.net is None

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        n = state.n
        out: list[MatrixRows] = []
        if self.gross is not None:
            r = layout.aux((id(self), "gross"), n)  # r >= |w|: w - r <= 0, -w - r <= 0
            i2 = np.r_[np.arange(n), np.arange(n, 2 * n)]
            out.append(MatrixRows(np.r_[i2, i2], np.r_[layout.w, layout.w, r, r],
                                  np.r_[np.ones(n), -np.ones(n), -np.ones(2 * n)],
                                  np.zeros(2 * n), main=False))
            out.append(MatrixRows.dense_rows(r, np.ones((1, n)), [float(self.gross)]))
        if self.net is not None:  # sum(w) <= net, -sum(w) <= net
            out.append(MatrixRows.dense_rows(layout.w, np.vstack([np.ones(n), -np.ones(n)]),
                                             [float(self.net), float(self.net)]))
        return out

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        lhs, rhs = [], []
        if self.gross is not None:
            lhs.append(np.abs(point.w).sum())
            rhs.append(float(self.gross))
        if self.net is not None:
            s = point.w.sum()
            lhs += [s, -s]
            rhs += [float(self.net)] * 2
        return np.array(lhs, dtype=float), np.array(rhs, dtype=float)

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        out = ["gross leverage"] if self.gross is not None else []
        return out + (["net long", "net short"] if self.net is not None else [])

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """Gross and net exposure as sums over assets (:mod:`rebalopt.program.search`)."""
        parts: list[Kernel] = []
        if self.gross is not None:
            parts.append(Aggregate(lambda Z, W: np.abs(W), hi=float(self.gross)))
        if self.net is not None:
            parts.append(Aggregate(lambda Z, W: W, hi=float(self.net), lo=-float(self.net)))
        return parts


@dataclass
class CashFloor(Constraint):
    r"""Post-trade cash, after paying the costs, stays above a floor.

    .. math:: c_0 - \textstyle\sum_i z_i - \text{cost}(z) \ge \text{floor}

    The default ``floor=0`` forbids borrowing (a cash account). In the optimizer
    the cost is the convex part of the cost models (a per-order minimum or fixed
    fee is not in it); :meth:`check` uses the full cost charged on the plan.

    Parameters
    ----------
    floor
        Smallest post-trade cash as a fraction of pre-trade equity (may be
        negative to allow a margin loan of that size).
    """

    floor: float = 0.0
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    units: str = "cash weight"

    def __post_init__(self) -> None:
        self._validate_soft()
        if not np.isfinite(self.floor):
            raise InputError(f"must be finite, got {self.floor}", field="CashFloor.floor")

    def describe(self) -> str:
        return f"CashFloor({self.floor:g})"

    def cash_floor(self) -> float | None:
        return float(self.floor)

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        # cash >= floor (cash = c0 - sum(z) - cost, resolved by the builder)
        return [MatrixRows.dense_rows(layout.cash, [[-1.0]], [-float(self.floor)])]

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        return np.array([-point.cash]), np.array([-float(self.floor)])

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return ["post-trade cash"]

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """Post-trade cash after the full cost ``>= floor`` (:mod:`rebalopt.program.search`)."""
        return [CashRow(float(self.floor))]
