"""Readable names for cost models, constraints and rebalancers, for reports.

A reader of a comparison must see which run carried which constraints and which
cost models, in words rather than Python reprs. Everything here reads the
objects' own dataclass fields (only those that differ from the defaults), so a
user's own model is described the same way without registering anything.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["describe", "run_constraints", "run_costs", "unwrap"]

_WRAPPED = ("relaxation", "inner")


def _same(a: Any, b: Any) -> bool:
    try:
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        out = a == b
        return bool(out) if not isinstance(out, (np.ndarray, pd.Series)) else False
    except (TypeError, ValueError):
        return False


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return f"{float(v):g}"
    if isinstance(v, str):
        return v
    if isinstance(v, (np.ndarray, pd.Series, dict)):
        n = len(v)
        return f"per asset ({n})"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return describe(v)
    return type(v).__name__


def describe(obj: Any, defaults: bool = True) -> str:
    """``Name(field=value, ...)`` from the object's dataclass fields.

    Parameters
    ----------
    obj
        A cost model, constraint, config or any object.
    defaults
        Show fields left at their defaults too (``False``: only the changed ones).

    Returns
    -------
    str
        Per-asset values shown as ``per asset (n)``; objects that are not
        dataclasses by their ``method`` (when they have one) or class name.
    """
    name = type(obj).__name__
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        method = getattr(obj, "method", None)
        return str(method) if isinstance(method, str) and method else name
    parts = []
    for f in dataclasses.fields(obj):
        if not f.repr or not f.init or f.name.startswith("_"):
            continue
        v = getattr(obj, f.name, None)
        if defaults:
            if f.name not in ("costs", "constraints", "config", "risk"):
                parts.append(f"{f.name}={_value(v)}")
            continue
        if f.default is not dataclasses.MISSING and _same(v, f.default):
            continue
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            try:
                if _same(v, f.default_factory()):  # type: ignore[misc]
                    continue
            except Exception:  # noqa: BLE001, S110 - a factory needing arguments: show the value
                pass
        if f.name in ("costs", "constraints", "config", "risk"):
            continue  # disclosed on their own
        parts.append(f"{f.name}={_value(v)}")
    return f"{name}({', '.join(parts)})" if parts else name


def unwrap(rebalancer: Any) -> list[Any]:
    """The chain of rebalancers: a wrapper first, then what it wraps
    (``relaxation`` of an integer stage, ``inner`` of a wrapper)."""
    chain = [rebalancer]
    seen = {id(rebalancer)}
    while True:
        cur = chain[-1]
        nxt = None
        for attr in _WRAPPED:
            try:
                nxt = object.__getattribute__(cur, attr)
            except AttributeError:
                try:
                    nxt = vars(cur).get(attr)
                except TypeError:
                    nxt = None
            if nxt is not None:
                break
        if nxt is None or id(nxt) in seen:
            return chain
        seen.add(id(nxt))
        chain.append(nxt)


def run_constraints(rebalancer: Any) -> str:
    """The constraints a rebalancer plans under, in words (``"none"`` if none): its
    ``constraints`` list and the non-default fields of its ``config``, through wrappers."""
    out: list[str] = []
    for reb in unwrap(rebalancer):
        cons = getattr(reb, "constraints", None)
        for c in cons if isinstance(cons, (list, tuple)) else ():
            out.append(describe(c))
        cfg = getattr(reb, "config", None)
        if cfg is not None and dataclasses.is_dataclass(cfg):
            d = describe(cfg, defaults=False)
            if d != type(cfg).__name__:
                out.append(d)
    out = list(dict.fromkeys(out))
    return "; ".join(out) if out else "none"


def run_costs(rebalancer: Any) -> str:
    """The cost models a rebalancer plans with, in words (``"none"`` if none)."""
    for reb in unwrap(rebalancer):
        costs = getattr(reb, "costs", None)
        if isinstance(costs, (list, tuple)) and costs:
            return "; ".join(describe(c) for c in costs)
    return "none"
