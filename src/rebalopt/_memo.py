"""Values an object derives from a universe (tickers and group labels), kept across states.

A batch of accounts, or a backtest's rebalances between universe changes, share one
universe while holdings, prices and targets differ. A cost model or a constraint that
aligns its per-asset inputs to the universe (a per-asset half spread, a position cap
per ticker, group labels) does it once for every state of that universe here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from rebalopt.state import PortfolioState

__all__ = ["UNIVERSE_MEMO", "universe_memo"]

_V = TypeVar("_V")

UNIVERSE_MEMO = "_universe_memo"
"""Attribute of an owner holding its :func:`universe_memo` entries (never pickled)."""

_UNTRUSTED = object()
"""Snapshot of an input whose in-place edits cannot be detected cheaply."""


def _immutable(x: Any) -> bool:
    if x is None or isinstance(x, (bool, int, float, complex, str, bytes, np.number)):
        return True
    return isinstance(x, (tuple, frozenset)) and all(_immutable(v) for v in x)


def _snapshot(x: Any) -> Any:
    """What an input looked like when a value was computed from it: ``None`` for an
    immutable input; a copy of the values (and the immutable index) of a Series, array
    or mapping, which a caller may edit in place between states; :data:`_UNTRUSTED`
    for anything else."""
    if _immutable(x):
        return None
    if isinstance(x, pd.Series):
        return ("series", x.index, x.dtype, x.to_numpy(copy=True))
    if isinstance(x, np.ndarray):
        return ("array", x.dtype, x.shape, x.copy())
    if isinstance(x, Mapping):
        return ("mapping", dict(x))
    return _UNTRUSTED


def _unchanged(x: Any, snap: Any) -> bool:
    """Whether ``x`` still holds what :func:`_snapshot` recorded (values compared
    exactly; a NaN or an incomparable value counts as changed, so it is recomputed)."""
    if snap is None:
        return True
    if snap is _UNTRUSTED:
        return False
    try:
        if snap[0] == "series":
            return (isinstance(x, pd.Series) and x.index is snap[1] and x.dtype == snap[2]
                    and bool(np.array_equal(x.to_numpy(), snap[3])))
        if snap[0] == "array":
            return (isinstance(x, np.ndarray) and x.dtype == snap[1] and x.shape == snap[2]
                    and bool(np.array_equal(x, snap[3])))
        return bool(dict(x) == snap[1])
    except (TypeError, ValueError):  # values that cannot be compared: recompute
        return False


def universe_memo(owner: Any, state: PortfolioState, name: str, inputs: tuple[Any, ...],
                  compute: Callable[[], _V], *, groups: bool = True) -> _V:
    """A value ``owner`` derives from the *universe* of ``state``, computed once for every
    state of that universe.

    The universe is the state's tickers (``assets``) and group labels (``groups``). The
    entry is used again while each object of ``inputs`` (the owner's fields the value
    depends on) is the same object *holding the same values*, and the state's ``assets``
    and ``groups`` equal the ones it was computed for (compared by value, about 10
    microseconds at 100 assets; the same Index object is free); ``groups=False`` leaves
    the labels out (a value of the tickers only). ``compute`` must read nothing else
    from the state. One entry per ``name`` is kept, on the owner, which must leave the
    attribute :data:`UNIVERSE_MEMO` out of its pickles.

    Numbers, strings, ``None`` and tuples of them are trusted as they are. A Series, a
    NumPy array or a mapping (which a caller may edit in place between rebalances) is
    compared with a copy taken when the value was computed (its values, and for a
    Series the index object, which pandas never edits in place): an edit recomputes
    the value. Any other input keeps the value for one state only
    (:meth:`PortfolioState.memo <rebalopt.state.PortfolioState.memo>`).
    """
    from rebalopt.state import same_assets

    cache: dict[str, tuple[Any, ...]] = owner.__dict__.setdefault(UNIVERSE_MEMO, {})
    hit = cache.get(name)
    if (hit is not None and len(hit[2]) == len(inputs)
            and all(a is b for a, b in zip(hit[2], inputs))
            and (state.assets is hit[0] or same_assets(state.assets, hit[0]))
            and (not groups or state.groups is hit[1]
                 or np.array_equal(state.groups, hit[1]))
            and all(_unchanged(x, s) for x, s in zip(inputs, hit[3]))):
        return hit[4]  # type: ignore[no-any-return]
    snaps = tuple(_snapshot(x) for x in inputs)
    if any(s is _UNTRUSTED for s in snaps):
        box = state.memo(owner, f"universe:{name}", inputs, lambda: (compute(),))
        return box[0]  # type: ignore[no-any-return]
    value = compute()
    cache[name] = (state.assets, state.groups, inputs, snaps, value)
    return value
