"""The friendly per-bar view strategies receive: ``data[asset]["close"]``.

Nothing is copied: a :class:`BarData` holds the feed and a bar index, and an
:class:`AssetBar` reads one cell of the feed's arrays when asked. Building the
view costs O(1) per bar, so it does not slow the engine's loop. Vectorized
strategies can read whole rows instead (``data.close``, ``data.available``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rebalopt._typing import FloatArray

if TYPE_CHECKING:
    from rebalopt.backtest.feed import DataFeed

__all__ = ["AssetBar", "BarData"]

_PRICE_KEYS = ("open", "high", "low", "close", "volume")


class AssetBar(Mapping[str, Any]):
    """One asset's bar: ``open``, ``high``, ``low``, ``close``, ``volume`` (floats),
    ``adv`` (shares/bar) and ``volatility`` (daily fraction) known before the bar
    when the broker computes them, ``sector`` when the feed has labels,
    ``multiplier``, and every signal of the feed."""

    __slots__ = ("_bar", "_i")

    def __init__(self, bar: BarData, i: int) -> None:
        self._bar = bar
        self._i = i

    def _keys(self) -> list[str]:
        b = self._bar
        keys = [*_PRICE_KEYS, "multiplier"]
        if b._adv is not None:
            keys.append("adv")
        if b._vol is not None:
            keys.append("volatility")
        if b.feed.groups is not None:
            keys.append("sector")
        keys.extend(b.feed.signals)
        return keys

    def __getitem__(self, key: str) -> Any:
        b, i, t = self._bar, self._i, self._bar.t
        feed = b.feed
        if key in _PRICE_KEYS:
            return float(getattr(feed, key)[t, i])
        if key == "adv" and b._adv is not None:
            return float(b._adv[i])
        if key == "volatility" and b._vol is not None:
            return float(b._vol[i])
        if key in ("sector", "group") and feed.groups is not None:
            return feed.groups[i]
        if key == "multiplier":
            return float(feed.multipliers[i])
        if key in feed.signals:
            return float(feed.signals[key][t, i])
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"AssetBar({self._bar.feed.assets[self._i]!r}, {dict(self)})"


class BarData(Mapping[str, AssetBar]):
    """Mapping from ticker to :class:`AssetBar` for the assets that have a bar at ``t``.

    Attributes
    ----------
    feed
        The :class:`DataFeed` the view reads.
    t
        Bar index into the feed's arrays.
    """

    __slots__ = ("_adv", "_present", "_vol", "feed", "t")

    def __init__(self, feed: DataFeed, t: int, adv: FloatArray | None = None,
                 volatility: FloatArray | None = None) -> None:
        self.feed = feed
        self.t = t
        self._adv = adv
        self._vol = volatility
        self._present: np.ndarray | None = None

    # ------------------------------------------------------ array access (fast)
    @property
    def timestamp(self) -> Any:
        return self.feed.dates[self.t]

    @property
    def available(self) -> np.ndarray:
        """Bool row: which feed assets have a bar at ``t``."""
        return self.feed.available[self.t]

    @property
    def close(self) -> FloatArray:
        """Close row (currency/share) in feed asset order, NaN for missing bars."""
        return self.feed.close[self.t]

    @property
    def adv(self) -> FloatArray | None:
        return self._adv

    @property
    def volatility(self) -> FloatArray | None:
        return self._vol

    def row(self, name: str) -> FloatArray:
        """Row ``t`` of a price field or signal, in feed asset order."""
        return self.feed.field(name)[self.t]

    # ----------------------------------------------------------------- mapping
    def _indices(self) -> np.ndarray:
        if self._present is None:
            self._present = np.flatnonzero(self.feed.available[self.t])
        return self._present

    def __getitem__(self, asset: str) -> AssetBar:
        i = self.feed._index.get(asset)
        if i is None or not self.feed.available[self.t, i]:
            raise KeyError(asset)
        return AssetBar(self, i)

    def __contains__(self, asset: object) -> bool:
        i = self.feed._index.get(asset)  # type: ignore[arg-type]
        return i is not None and bool(self.feed.available[self.t, i])

    def __iter__(self) -> Iterator[str]:
        assets = self.feed.assets
        return (assets[i] for i in self._indices())

    def __len__(self) -> int:
        return len(self._indices())

    def __repr__(self) -> str:
        return f"BarData({self.timestamp}, assets={len(self)})"
