"""Input checks shared by the risk models: one place, typed errors naming asset and field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rebalopt.errors import InputError

__all__ = [
    "PSD_RTOL",
    "SYMMETRY_RTOL",
    "clean_frame",
    "clean_series",
    "clean_square",
    "psd_repair",
    "same_keys",
]

SYMMETRY_RTOL = 1e-8
"""A matrix is symmetric when ``|A - A'| <= SYMMETRY_RTOL * max|A|`` elementwise."""

PSD_RTOL = 1e-10
"""Eigenvalues above ``-PSD_RTOL * max|eigenvalue|`` count as rounding noise, not as
a PSD violation (they are still clipped to zero)."""


def _labels(index: pd.Index, field: str, what: str) -> pd.Index:
    out = pd.Index([str(x) for x in index], dtype=object)
    dup = out[out.duplicated()]
    if len(dup):
        raise InputError(f"duplicate {what}", asset=str(dup[0]), field=field)
    return out


def clean_series(values: Any, field: str, *, nonneg: bool = True) -> pd.Series:
    """A float Series with unique string keys; finite, optionally ``>= 0``."""
    if isinstance(values, dict):
        values = pd.Series(values, dtype=object)
    if not isinstance(values, pd.Series):
        raise InputError(
            f"expected a pandas Series keyed by ticker, got {type(values).__name__}", field=field
        )
    s = pd.to_numeric(values, errors="coerce").astype(float)
    s.index = _labels(values.index, field, "ticker")
    bad_type = s.isna() & values.notna().to_numpy()
    if bad_type.any():
        asset = str(s.index[bad_type.to_numpy()][0])
        raise InputError(f"value {values.iloc[int(np.flatnonzero(bad_type)[0])]!r} is not a number",
                         asset=asset, field=field)
    arr = s.to_numpy()
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"value {arr[i]} is not finite", asset=str(s.index[i]), field=field)
    if nonneg and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise InputError(f"must be >= 0, got {arr[i]}", asset=str(s.index[i]), field=field)
    return s


def clean_frame(values: Any, field: str, row_what: str = "ticker",
                col_what: str = "factor") -> pd.DataFrame:
    """A float DataFrame with unique string labels and finite entries."""
    if not isinstance(values, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(values).__name__}", field=field)
    df = values.copy()
    df.index = _labels(values.index, field, row_what)
    df.columns = _labels(values.columns, field, col_what)
    try:
        arr = df.to_numpy(dtype=float)
    except (TypeError, ValueError):
        num = df.apply(pd.to_numeric, errors="coerce")
        bad = num.isna().to_numpy() & df.notna().to_numpy()
        i, j = (int(a[0]) for a in np.nonzero(bad))
        raise InputError(f"value {df.iat[i, j]!r} in column {df.columns[j]!r} is not a number",
                         asset=str(df.index[i]), field=field) from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(a[0]) for a in np.nonzero(bad))
        raise InputError(f"value {arr[i, j]} in column {df.columns[j]!r} is not finite",
                         asset=str(df.index[i]), field=field)
    return pd.DataFrame(arr, index=df.index, columns=df.columns)


def same_keys(a: pd.Index, b: pd.Index, field_a: str, field_b: str) -> None:
    """Raise unless ``a`` and ``b`` hold the same labels (any order)."""
    only_a = a.difference(b, sort=False)
    if len(only_a):
        raise InputError(f"present in {field_a} but missing from {field_b}",
                         asset=str(only_a[0]), field=field_b)
    only_b = b.difference(a, sort=False)
    if len(only_b):
        raise InputError(f"present in {field_b} but missing from {field_a}",
                         asset=str(only_b[0]), field=field_a)


def clean_square(values: Any, field: str, what: str = "ticker") -> pd.DataFrame:
    """A finite symmetric DataFrame with the same labels on both axes (columns
    reordered to the index), non-negative diagonal."""
    df = clean_frame(values, field, what, what)
    same_keys(df.index, df.columns, f"{field} rows", f"{field} columns")
    df = df.loc[:, df.index]
    arr = df.to_numpy()
    diag = np.diag(arr)
    if (diag < 0).any():
        i = int(np.flatnonzero(diag < 0)[0])
        raise InputError(f"negative variance {diag[i]} on the diagonal",
                         asset=str(df.index[i]), field=field)
    scale = float(np.abs(arr).max()) if arr.size else 0.0
    asym = np.abs(arr - arr.T)
    if (asym > SYMMETRY_RTOL * max(scale, 1e-300)).any():
        i, j = (int(a[0]) for a in np.nonzero(asym > SYMMETRY_RTOL * max(scale, 1e-300)))
        raise InputError(
            f"matrix is not symmetric: [{df.index[i]!r}, {df.index[j]!r}] = {arr[i, j]} but "
            f"[{df.index[j]!r}, {df.index[i]!r}] = {arr[j, i]}",
            asset=str(df.index[i]), field=field,
        )
    sym = 0.5 * (arr + arr.T)
    return pd.DataFrame(sym, index=df.index, columns=df.index)


def psd_repair(matrix: np.ndarray, field: str, psd: str,
               labels: pd.Index | None = None) -> tuple[np.ndarray, float, bool]:
    """Return ``(repaired, min_eigenvalue, material)`` for a symmetric matrix.

    ``material`` is true when the smallest eigenvalue is negative beyond rounding
    noise (``-PSD_RTOL * max|lambda|``); ``min_eigenvalue`` is NaN when Cholesky
    proved the matrix positive definite.

    A positive definite matrix (Cholesky succeeds) is returned unchanged. Otherwise
    the eigenvalues are clipped at zero, ``V max(lambda, 0) V'``, which is the
    nearest positive semidefinite matrix in the Frobenius norm (Higham 1988).
    With ``psd="raise"`` a negative eigenvalue beyond rounding noise
    (``-PSD_RTOL * max|lambda|``) raises :class:`InputError` instead.
    """
    if psd not in ("repair", "raise"):
        raise InputError(f"psd must be 'repair' or 'raise', got {psd!r}", field="psd")
    n = matrix.shape[0]
    if n == 0:
        return matrix, 0.0, False
    try:
        np.linalg.cholesky(matrix)
        return matrix, float("nan"), False
    except np.linalg.LinAlgError:
        pass
    lam, V = np.linalg.eigh(matrix)
    lmin = float(lam[0])
    tol = PSD_RTOL * max(float(np.abs(lam).max()), 1e-300)
    if lmin < -tol and psd == "raise":
        worst = int(np.argmax(np.abs(V[:, 0])))
        asset = None if labels is None else str(labels[worst])
        raise InputError(
            f"matrix is not positive semidefinite: smallest eigenvalue {lmin:.3g} "
            f"(the eigenvector loads most on this asset); pass psd='repair' to clip "
            "eigenvalues at zero",
            asset=asset, field=field,
        )
    if lmin >= 0:
        return matrix, lmin, False
    lam_c = np.clip(lam, 0.0, None)
    rep = (V * lam_c) @ V.T
    return 0.5 * (rep + rep.T), lmin, bool(lmin < -tol)
