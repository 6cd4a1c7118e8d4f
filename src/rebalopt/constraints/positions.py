"""Position constraints on post-trade weights: long-only, short limits, weight bounds.

Units: weights are fractions of pre-trade equity (``w = w0 + z``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rebalopt._typing import FloatArray
from rebalopt.constraints._base import (
    Constraint,
    MatrixLayout,
    MatrixRows,
    Point,
    asset_labels,
    check_per_asset,
    per_asset,
    require_nonneg,
    universe_memo,
)
from rebalopt.errors import InputError
from rebalopt.program.search import Aggregate, Kernel, PerAsset, pos
from rebalopt.state import PortfolioState

__all__ = ["LongOnly", "ShortLimit", "WeightBounds"]

Bound = float | pd.Series | Mapping[str, float] | None


@dataclass
class LongOnly(Constraint):
    r"""No short position after trading: :math:`w_i \ge 0` for every asset."""

    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()

    def forbids_shorts(self) -> bool:
        return True

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        return -point.w, np.zeros(point.state.n)

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        return [MatrixRows.diagonal(layout.w, -1.0, np.zeros(state.n))]  # -w <= 0

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return list(universe_memo(self, state, "labels", (),
                                  lambda: asset_labels(state, np.arange(state.n), "w >= 0:"),
                                  groups=False))

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """``w >= 0`` per asset (:mod:`rebalopt.program.search`)."""
        return [PerAsset(lambda Z, W: pos(-W))]


@dataclass
class ShortLimit(Constraint):
    r"""Limits on short positions, per asset and in total.

    .. math:: w_i \ge -\text{per\_asset}_i, \qquad \sum_i \max(-w_i, 0) \le \text{total}

    Parameters
    ----------
    per_asset
        Largest short per asset as a fraction of equity (>= 0): a number, or a
        Series / mapping keyed by ticker (assets not listed are unlimited).
        ``None``: no per-asset limit.
    total
        Largest sum of shorts, fraction of equity (>= 0). ``None``: no limit.
    """

    per_asset: Bound = None
    total: float | None = None
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()
        check_per_asset(self.per_asset, "ShortLimit.per_asset")
        if self.total is not None:
            require_nonneg(self.total, "ShortLimit.total")
        if self.per_asset is None and self.total is None:
            raise InputError("give per_asset, total or both", field="ShortLimit")

    def _caps(self, state: PortfolioState) -> FloatArray:
        """Per-asset short caps, once per universe (a read-only array)."""
        return universe_memo(self, state, "caps", (self.per_asset,),
                             lambda: self._caps_of(state), groups=False)

    def _caps_of(self, state: PortfolioState) -> FloatArray:
        caps = per_asset(self.per_asset, state, "ShortLimit.per_asset", np.inf)
        bad = caps < 0
        if bad.any():
            raise InputError(f"short limit must be >= 0, got {caps[bad][0]}",
                             asset=str(state.assets[np.flatnonzero(bad)[0]]),
                             field="ShortLimit.per_asset")
        caps.setflags(write=False)
        return caps

    def structure(self, state: PortfolioState, targets: FloatArray) -> Hashable:
        return np.flatnonzero(np.isfinite(self._caps(state))).tobytes(), self.total is None

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        caps = self._caps(state)
        idx = np.flatnonzero(np.isfinite(caps))
        out: list[MatrixRows] = []
        if idx.size:
            out.append(MatrixRows.diagonal(layout.w[idx], -1.0, caps[idx]))  # -w <= cap
        if self.total is not None:
            p = layout.aux((id(self), "short"), state.n)  # p >= max(-w, 0)
            out.append(MatrixRows(np.r_[np.arange(state.n), np.arange(state.n)],
                                  np.r_[p, layout.w], np.full(2 * state.n, -1.0),
                                  np.zeros(state.n), main=False))  # -p - w <= 0
            out.append(MatrixRows.diagonal(p, -1.0, np.zeros(state.n), main=False))
            out.append(MatrixRows.dense_rows(p, np.ones((1, state.n)), [float(self.total)]))
        return out

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        caps = self._caps(point.state)
        idx = np.flatnonzero(np.isfinite(caps))
        lhs, rhs = [-point.w[idx]], [caps[idx]]
        if self.total is not None:
            lhs.append(np.array([np.maximum(-point.w, 0).sum()]))
            rhs.append(np.array([float(self.total)]))
        return np.concatenate(lhs), np.concatenate(rhs)

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        idx = np.flatnonzero(np.isfinite(self._caps(state)))
        out = asset_labels(state, idx, "short limit")
        if self.total is not None:
            out.append("total short")
        return out

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """Per-asset short caps and the total short (:mod:`rebalopt.program.search`)."""
        caps = self._caps(state)
        capc = caps[:, None]
        parts: list[Kernel] = [
            PerAsset(lambda Z, W: pos(-W - (caps if W.ndim == 1 else capc)))]
        if self.total is not None:
            parts.append(Aggregate(lambda Z, W: pos(-W), hi=float(self.total)))
        return parts


@dataclass
class WeightBounds(Constraint):
    r"""Per-asset bounds on post-trade weights: :math:`l_i \le w_i \le u_i`.

    Parameters
    ----------
    lower, upper
        Fractions of equity: a number for every asset, or a Series / mapping keyed
        by ticker (assets not listed are unbounded on that side). ``None``: no bound.
    """

    lower: Bound = None
    upper: Bound = None
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        self._validate_soft()
        if self.lower is None and self.upper is None:
            raise InputError("give lower, upper or both", field="WeightBounds")
        check_per_asset(self.lower, "WeightBounds.lower")
        check_per_asset(self.upper, "WeightBounds.upper")
        self._check_order()

    def _check_order(self) -> None:
        """Reject, at construction, an asset named in a mapping whose lower bound is
        above its upper bound (two numbers are checked per asset when planning, so
        the error can name the asset)."""
        if self.lower is None or self.upper is None:
            return
        if np.isscalar(self.lower) and np.isscalar(self.upper):
            return
        def table(b: Bound) -> dict[str, float] | float:
            return float(b) if np.isscalar(b) else {str(k): float(v)  # type: ignore[arg-type]
                                                    for k, v in dict(b).items()}  # type: ignore[arg-type]
        lo, hi = table(self.lower), table(self.upper)
        names = [k for k in (lo if isinstance(lo, dict) else hi)]  # type: ignore[union-attr]
        for a in names:
            lv = lo.get(a, -np.inf) if isinstance(lo, dict) else lo
            hv = hi.get(a, np.inf) if isinstance(hi, dict) else hi
            if lv > hv:
                raise InputError(f"lower bound {lv} above upper bound {hv}", asset=a,
                                 field="WeightBounds")

    def _bounds(self, state: PortfolioState) -> tuple[FloatArray, FloatArray]:
        """Per-asset lower and upper bounds, once per universe (read-only arrays)."""
        return universe_memo(self, state, "bounds", (self.lower, self.upper),
                             lambda: self._bounds_of(state), groups=False)

    def _bounds_of(self, state: PortfolioState) -> tuple[FloatArray, FloatArray]:
        lo = per_asset(self.lower, state, "WeightBounds.lower", -np.inf)
        hi = per_asset(self.upper, state, "WeightBounds.upper", np.inf)
        bad = lo > hi
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"lower bound {lo[i]} above upper bound {hi[i]}",
                             asset=str(state.assets[i]), field="WeightBounds")
        lo.setflags(write=False)
        hi.setflags(write=False)
        return lo, hi

    def describe(self) -> str:
        return "WeightBounds"

    def structure(self, state: PortfolioState, targets: FloatArray) -> Hashable:
        lo, hi = self._bounds(state)  # which assets are bounded: their indices as bytes
        return (np.flatnonzero(np.isfinite(lo)).tobytes(),
                np.flatnonzero(np.isfinite(hi)).tobytes())

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        lo, hi = self._bounds(state)
        ih, il = np.flatnonzero(np.isfinite(hi)), np.flatnonzero(np.isfinite(lo))
        out: list[MatrixRows] = []
        if ih.size:
            out.append(MatrixRows.diagonal(layout.w[ih], 1.0, hi[ih]))  # w <= hi
        if il.size:
            out.append(MatrixRows.diagonal(layout.w[il], -1.0, -lo[il]))  # -w <= -lo
        return out

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        lo, hi = self._bounds(point.state)
        ih, il = np.isfinite(hi), np.isfinite(lo)
        return (np.concatenate([point.w[ih], -point.w[il]]),
                np.concatenate([hi[ih], -lo[il]]))

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        def labels() -> list[str]:
            lo, hi = self._bounds(state)
            return (asset_labels(state, np.flatnonzero(np.isfinite(hi)), "upper bound")
                    + asset_labels(state, np.flatnonzero(np.isfinite(lo)), "lower bound"))

        return list(universe_memo(self, state, "labels", (self.lower, self.upper), labels,
                                  groups=False))

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """``lo <= w <= hi`` per asset (:mod:`rebalopt.program.search`)."""
        lo, hi = self._bounds(state)
        lo2, hi2 = lo[:, None], hi[:, None]
        return [PerAsset(lambda Z, W: pos(W - (hi if W.ndim == 1 else hi2))
                         + pos((lo if W.ndim == 1 else lo2) - W))]
