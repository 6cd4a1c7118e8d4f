"""Target weights from the optimizers users already run.

:func:`to_target_weights` turns what an optimizer returns into the one form every
rebalancer accepts: a float ``pd.Series`` of weights (fractions of equity) keyed by
ticker. It accepts

* PyPortfolioOpt: the ``clean_weights()`` / ``max_sharpe()`` ``OrderedDict``, or
  the optimizer itself (``tickers`` and ``weights``);
* riskfolio-lib: the weights ``DataFrame`` of ``Portfolio.optimization()`` (one
  column, usually ``"weights"``, tickers as index);
* skfolio: a fitted estimator (``weights_`` named by ``feature_names_in_``), or a
  ``Portfolio`` (``weights`` named by ``assets``);
* plain ``pd.Series`` and mappings keyed by ticker, and NumPy arrays / lists with
  the names given separately in ``assets``.

Ambiguous input is rejected with an :class:`~rebalopt.errors.InputError` naming
the asset or field: an unnamed array without ``assets``, a frame with several
columns, duplicate tickers, a weight that is NaN, infinite or not a number, a
skfolio estimator fitted on an unnamed array (skfolio then invents ``x0, x1, ...``).
Weights are not rescaled: a sum below 1 leaves the rest in cash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.errors import InputError

__all__ = ["labelled_targets", "to_target_weights"]

_FIELD = "target weight"


def _names(values: Iterable[Any], source: str) -> list[str]:
    """Ticker names as strings; rejects empty, missing and duplicate names."""
    out: list[str] = []
    seen: set[str] = set()
    for k in values:
        if k is None or (isinstance(k, float) and np.isnan(k)):
            raise InputError(f"missing ticker name in {source}", field="asset")
        name = str(k).strip()
        if not name:
            raise InputError(f"empty ticker name in {source}", field="asset")
        if name in seen:
            raise InputError(f"duplicate ticker in {source}", asset=name, field="asset")
        seen.add(name)
        out.append(name)
    return out


def _weights(values: Sequence[Any], names: list[str]) -> np.ndarray:
    """Float weights, naming the first asset whose value is not a finite number."""
    out = np.empty(len(names))
    for i, (name, v) in enumerate(zip(names, values, strict=True)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (Number, np.number)):
            raise InputError(f"weight {v!r} is not a number", asset=name, field=_FIELD)
        try:
            f = float(v)  # type: ignore[arg-type]
        except TypeError:  # a complex number (float() refuses it)
            raise InputError(f"weight {v!r} is not a real number", asset=name,
                             field=_FIELD) from None
        if not np.isfinite(f):
            raise InputError(f"weight {f} is not finite", asset=name, field=_FIELD)
        out[i] = f
    return out


def _series(values: Sequence[Any], names: list[str]) -> pd.Series:
    w = _weights(values, names)
    return pd.Series(w, index=pd.Index(names, dtype=object, name="asset"), name=_FIELD)


def _unnamed_array(values: Any, assets: Sequence[Any] | None, source: str) -> pd.Series:
    arr = np.asarray(values, dtype=object)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(
            f"{source} has shape {arr.shape}; expected one weight per asset "
            "(a 2-D array holds several portfolios: pick one)",
            field=_FIELD,
        )
    if assets is None:
        raise InputError(
            f"{source} carries no asset names: pass assets=[...] in the same order",
            field="asset",
        )
    names = _names(assets, "assets")
    if len(names) != len(arr):
        raise InputError(
            f"{len(arr)} weights but {len(names)} asset names in assets", field="asset"
        )
    return _series(list(arr), names)


def _check_assets(s: pd.Series, assets: Sequence[Any] | None, source: str) -> pd.Series:
    """With both names in the object and ``assets``: they must be the same set."""
    if assets is None:
        return s
    given = _names(assets, "assets")
    extra = [a for a in s.index if a not in set(given)]
    if extra:
        raise InputError(f"asset in {source} but not in assets", asset=extra[0], field="asset")
    missing = [a for a in given if a not in set(s.index)]
    if missing:
        raise InputError(f"asset in assets but not in {source}", asset=missing[0], field="asset")
    return s.reindex(pd.Index(given, dtype=object, name="asset"))


def _is_default_range(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _from_series(s: pd.Series, assets: Sequence[Any] | None, source: str) -> pd.Series:
    if _is_default_range(s.index):
        return _unnamed_array(s.to_numpy(dtype=object), assets, f"{source} with a default index")
    names = _names(s.index, source)
    return _check_assets(_series(list(s.to_numpy(dtype=object)), names), assets, source)


def _from_frame(df: pd.DataFrame, assets: Sequence[Any] | None) -> pd.Series:
    if df.shape[1] != 1:
        cols = ", ".join(repr(str(c)) for c in list(df.columns)[:5])
        hint = (" (one row of weights per ticker column? pass frame.iloc[0])"
                if df.shape[0] == 1 else " (several portfolios? pass frame[column])")
        raise InputError(
            f"weights DataFrame has {df.shape[1]} columns ({cols}); expected one{hint}",
            field=_FIELD,
        )
    return _from_series(df.iloc[:, 0], assets, f"weights column {str(df.columns[0])!r}")


def _skfolio_kind(obj: Any) -> str | None:
    module = type(obj).__module__ or ""
    if not module.startswith("skfolio"):
        return None
    if hasattr(obj, "portfolios"):
        return "multi"
    if hasattr(obj, "assets") and hasattr(obj, "weights"):
        return "portfolio"
    return "estimator"


def _from_skfolio(obj: Any, kind: str, assets: Sequence[Any] | None) -> pd.Series:
    name = type(obj).__name__
    if kind == "multi":
        raise InputError(
            f"skfolio {name} holds one portfolio per period: pass one of its .portfolios",
            field=_FIELD,
        )
    if kind == "portfolio":
        names = [str(a) for a in np.asarray(obj.assets).tolist()]
        weights = np.asarray(obj.weights)
        if assets is None and names == [f"x{i}" for i in range(len(names))]:
            raise InputError(
                f"skfolio {name} was built from an unnamed array (assets x0, x1, ...): "
                "fit on a DataFrame of returns or pass assets=[...]",
                field="asset",
            )
        if assets is not None and names == [f"x{i}" for i in range(len(names))]:
            return _unnamed_array(weights, assets, f"skfolio {name}")
        return _check_assets(_series(list(weights.reshape(-1)), _names(names, name)),
                             assets, f"skfolio {name}")
    weights = getattr(obj, "weights_", None)
    if weights is None:
        raise InputError(f"skfolio {name} has no weights_: fit it first", field=_FIELD)
    weights = np.asarray(weights)
    if weights.ndim != 1:
        raise InputError(
            f"skfolio {name}.weights_ has shape {weights.shape} (an efficient frontier?): "
            "pass one row",
            field=_FIELD,
        )
    features = getattr(obj, "feature_names_in_", None)
    if features is None:
        return _unnamed_array(weights, assets, f"skfolio {name} fitted on an unnamed array")
    names = _names(np.asarray(features).tolist(), f"skfolio {name}.feature_names_in_")
    return _check_assets(_series(list(weights), names), assets, f"skfolio {name}")


def _pypfopt_optimizer(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("pypfopt") and hasattr(obj, "tickers") and hasattr(obj, "weights")


def to_target_weights(obj: Any, assets: Sequence[Any] | None = None) -> pd.Series:
    """Target weights (fractions of equity) keyed by ticker, from an optimizer's output.

    Parameters
    ----------
    obj
        One of: a mapping ``{ticker: weight}`` (PyPortfolioOpt's ``clean_weights()``),
        a ``pd.Series`` keyed by ticker, a one-column ``pd.DataFrame`` with tickers as
        index (riskfolio-lib), a fitted skfolio estimator or ``Portfolio``, a
        PyPortfolioOpt optimizer after ``optimize``, or a 1-D array / list of weights.
    assets
        Ticker names in the order of ``obj`` when ``obj`` carries none (an array, a
        list, a Series with a default ``RangeIndex``, a skfolio model fitted on an
        array). When ``obj`` has names, ``assets`` must name the same set and fixes
        the order of the result.

    Returns
    -------
    pd.Series
        Float weights (fractions of equity; negative = short) indexed by ticker
        (``str``), in the order given. Not rescaled: what does not sum to 1 is cash.

    Raises
    ------
    InputError
        Unnamed weights without ``assets``, a frame with more than one column, a 2-D
        array, duplicate or missing tickers, names that disagree with ``assets``, or
        a weight that is not a finite number (the asset is named).

    Examples
    --------
    >>> to_target_weights({"AAPL": 0.6, "MSFT": 0.4}).to_dict()
    {'AAPL': 0.6, 'MSFT': 0.4}
    >>> to_target_weights([0.6, 0.4], assets=["AAPL", "MSFT"]).to_dict()
    {'AAPL': 0.6, 'MSFT': 0.4}
    """
    if isinstance(obj, pd.DataFrame):
        return _from_frame(obj, assets)
    if isinstance(obj, pd.Series):
        return _from_series(obj, assets, "weights Series")
    if isinstance(obj, Mapping):
        if len(obj) == 0:
            raise InputError("no weights given (empty mapping)", field=_FIELD)
        names = _names(obj.keys(), "weights mapping")
        return _check_assets(_series(list(obj.values()), names), assets, "weights mapping")
    kind = _skfolio_kind(obj)
    if kind is not None:
        return _from_skfolio(obj, kind, assets)
    if _pypfopt_optimizer(obj):
        if obj.weights is None:
            raise InputError(f"{type(obj).__name__} has no weights: optimize first",
                             field=_FIELD)
        names = _names(list(obj.tickers), f"{type(obj).__name__}.tickers")
        return _check_assets(_series(list(np.asarray(obj.weights).reshape(-1)), names),
                             assets, type(obj).__name__)
    if isinstance(obj, (np.ndarray, list, tuple)):
        if len(obj) == 0:
            raise InputError("no weights given (empty array)", field=_FIELD)
        return _unnamed_array(obj, assets, f"a {type(obj).__name__} of weights")
    raise InputError(
        f"cannot read target weights from a {type(obj).__module__}.{type(obj).__name__}; "
        "pass a Series keyed by ticker, a mapping, a one-column DataFrame, a skfolio "
        "model or portfolio, or an array with assets=[...]",
        field=_FIELD,
    )


_UNLABELLED = (
    "target weights given as a bare {kind} of {n} numbers would be matched to assets by "
    "position{where}, which trades the wrong names when the optimizer's order differs from "
    "the account's: label them, e.g. pd.Series(weights, index=tickers), a {{ticker: weight}} "
    "dict, or rebalopt.adapters.to_target_weights(weights, assets=tickers)"
)


def labelled_targets(obj: Any, n_assets: int | None = None) -> pd.Series | Mapping[Any, Any]:
    """Targets keyed by ticker, as every rebalancer's ``plan`` reads them.

    A ``pd.Series`` keyed by ticker and a mapping pass through unchanged (the
    state validates each value); an optimizer's own object (skfolio estimator or
    ``Portfolio``, riskfolio-lib weights ``DataFrame``, PyPortfolioOpt optimizer)
    goes through :func:`to_target_weights`. Names are always checked, never
    positions: a bare array, list or tuple, or a Series with a default
    ``RangeIndex``, carries no tickers and is rejected.

    Parameters
    ----------
    obj
        The targets handed to ``plan``, ``execute`` or ``rebalance_many``.
    n_assets
        Number of assets in the account, quoted in the error for unlabelled input.

    Returns
    -------
    pd.Series or Mapping
        Weights (fractions of equity) keyed by ticker.

    Raises
    ------
    InputError
        ``field='targets'`` for unlabelled weights (the message says how to label
        them); what :func:`to_target_weights` raises for an optimizer's object.
    """
    where = f" against the account's {n_assets} assets" if n_assets is not None else ""
    if isinstance(obj, pd.Series):
        if _is_default_range(obj.index) and len(obj):
            raise InputError(_UNLABELLED.format(kind="Series with a default index",
                                                n=len(obj), where=where), field="targets")
        return obj
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, (np.ndarray, list, tuple)):
        kind = "NumPy array" if isinstance(obj, np.ndarray) else type(obj).__name__
        n = int(np.size(obj))
        raise InputError(_UNLABELLED.format(kind=kind, n=n, where=where), field="targets")
    return to_target_weights(obj)
