"""Input checks shared by costs, constraints and rebalancers: one rule, one wording.

A number given by a user (a bound, a rate, a size) must be a real number: a
``str`` (``"0.1"``), a ``bool``, ``None`` or a complex number is an
:class:`~rebalopt.errors.InputError` naming the field (and the asset, for
per-asset inputs), never a raw ``TypeError`` from NumPy, and never silently
read. NaN is never a bound: a NaN in a per-asset mapping is an error naming the
asset, not "no bound".
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.errors import InputError

__all__ = ["flag", "number", "numbers_by_asset", "require_nonneg", "require_positive"]


def number(value: Any, field: str, *, asset: str | None = None,
           allow_nan: bool = False) -> float:
    """``value`` as a float if it is a real number (not text, bool or None).

    Parameters
    ----------
    value
        The input.
    field
        Field named in the error (``"TurnoverLimit.cap"``...).
    asset
        Ticker named in the error, for a per-asset input.
    allow_nan
        Accept NaN (otherwise an error: NaN is never a bound or a rate).

    Raises
    ------
    InputError
        Not a real number, or NaN when ``allow_nan`` is off.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"must be a number, got {value!r} ({type(value).__name__})",
                         asset=asset, field=field)
    v = float(value)
    if np.isnan(v) and not allow_nan:
        raise InputError("must be a number, got NaN", asset=asset, field=field)
    return v


def require_nonneg(value: Any, field: str, *, asset: str | None = None) -> float:
    """``value`` as a float if a finite real number >= 0, else an InputError naming ``field``."""
    v = number(value, field, asset=asset)
    if not (np.isfinite(v) and v >= 0):
        raise InputError(f"must be finite and >= 0, got {v}", asset=asset, field=field)
    return v


def require_positive(value: Any, field: str, *, asset: str | None = None) -> float:
    """``value`` as a float if a finite real number > 0, else an InputError naming ``field``."""
    v = number(value, field, asset=asset)
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"must be finite and > 0, got {v}", asset=asset, field=field)
    return v


def flag(value: Any, field: str) -> bool:
    """``value`` if it is a bool (``"no"`` or ``0`` for a switch is an error, not truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"must be True or False, got {value!r}", field=field)
    return bool(value)


def numbers_by_asset(values: Mapping[Any, Any] | pd.Series, field: str) -> pd.Series:
    """A mapping / Series keyed by ticker as a float Series with string keys.

    Every value must be a real number (not text, not NaN): the error names the
    first offending ticker and ``field``. Duplicate tickers are an error too, and so
    is a Series with pandas' default index ``0..n-1`` (no tickers: unlabelled values
    are never matched to assets by position, nor dropped as unknown tickers).
    """
    if isinstance(values, pd.Series) and len(values) and _default_range(values.index):
        # 0..n-1 are no tickers: every value would fall outside the universe and be
        # dropped (a bound, a lot size, a rate silently not applied)
        raise InputError(f"a bare Series with a default index (0..{len(values) - 1}) "
                         "carries no tickers, so its values would match no asset: label "
                         "it, e.g. pd.Series(values, index=tickers) or a {ticker: value} "
                         "dict", field=field)
    if isinstance(values, pd.Series) and values.dtype.kind in "fiu":
        return _numeric_series(values, field)
    items = list(values.items()) if isinstance(values, (Mapping, pd.Series)) else None
    if items is None:
        raise InputError(f"expected a number or a mapping keyed by ticker, got "
                         f"{type(values).__name__}", field=field)
    keys = [str(k) for k, _ in items]
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            raise InputError("duplicate ticker", asset=k, field=field)
        seen.add(k)
    vals = [number(v, field, asset=k) for k, (_, v) in zip(keys, items)]
    return pd.Series(vals, index=pd.Index(keys, dtype=object), dtype=float)


def _default_range(index: pd.Index) -> bool:
    """Whether ``index`` is pandas' default one (``RangeIndex(0, n)``): no labels."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _numeric_series(values: pd.Series, field: str) -> pd.Series:
    """:func:`numbers_by_asset` for a Series of a real NumPy dtype (float or integer, not
    bool or complex), checked array-wise: the same result and the same first error as
    the per-value rule."""
    idx = values.index
    keys = (idx.astype(object) if idx.inferred_type == "string"
            else pd.Index([str(k) for k in idx], dtype=object))
    vals = np.asarray(values.to_numpy(), dtype=float)
    if keys.has_duplicates:
        k = str(keys[np.flatnonzero(keys.duplicated())[0]])
        raise InputError("duplicate ticker", asset=k, field=field)
    nan = np.isnan(vals)
    if nan.any():
        raise InputError("must be a number, got NaN", asset=str(keys[np.flatnonzero(nan)[0]]),
                         field=field)
    return pd.Series(vals, index=keys, dtype=float)
