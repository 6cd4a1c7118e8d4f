"""RiskModel: the base class of the tracking-error risk models.

A model answers :meth:`RiskModel.root` for a universe: a :class:`RiskRoot` whose rows
follow ``state.assets`` exactly. Roots are cached per asset order (a small LRU), so a
backtest that asks for the same universe every bar pays the factorization once.

Assets missing from the model
-----------------------------
A backtest universe can contain assets the model does not cover. ``missing="raise"``
(default) raises :class:`InputError` naming the asset and the field ``"risk model"``.
``missing="average"`` gives such an asset zero factor loadings / zero correlation
and the model's *average idiosyncratic variance* (:meth:`RiskModel.average_idio_variance`:
the mean ``idio_var`` of a factor model, the mean variance of a diagonal or dense
covariance).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Literal

import numpy as np
import pandas as pd

from rebalopt.errors import InputError
from rebalopt.risk._validate import PSD_RTOL
from rebalopt.risk.root import RiskRoot
from rebalopt.state import PortfolioState

__all__ = ["MissingPolicy", "RiskModel", "factor_root"]

MissingPolicy = Literal["raise", "average"]

_CACHE_SIZE = 8


def factor_root(matrix: np.ndarray) -> np.ndarray:
    """A root ``L`` with ``L @ L.T == matrix`` for a symmetric PSD matrix.

    Cholesky (lower triangular, ``n`` columns) when the matrix is positive definite
    with every squared pivot above ``PSD_RTOL * max(diag)`` (a singular matrix can pass
    a Cholesky factorization through rounding); otherwise the eigen root ``V sqrt(lambda)`` keeping only the eigenvalues above
    ``PSD_RTOL * max(lambda)`` (``1e-10``; fewer columns for a singular matrix, and
    rounding noise of either sign is dropped).
    """
    n = matrix.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    try:
        L = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        L = None
    # Cholesky can succeed on a singular matrix through rounding (a pivot of ~1e-17):
    # accept it only when every pivot is well above the eigen root's cut-off
    scale = float(np.max(np.diag(matrix))) if n else 0.0
    if L is not None and float(np.min(np.diag(L))) ** 2 > PSD_RTOL * max(scale, 0.0):
        return L
    lam, V = np.linalg.eigh(matrix)
    keep = lam > PSD_RTOL * max(float(lam[-1]), 0.0)
    if not keep.any():
        return np.zeros((n, 0))
    return V[:, keep] * np.sqrt(lam[keep])


def _assets_of(state: PortfolioState | pd.Index | list[str]) -> pd.Index:
    if isinstance(state, PortfolioState):
        return state.assets
    if isinstance(state, pd.Index) and pd.api.types.infer_dtype(state) == "string":
        if not state.is_unique:
            raise InputError("duplicate ticker", asset=str(state[state.duplicated()][0]),
                             field="assets")
        return state
    if isinstance(state, (pd.Index, list, tuple, np.ndarray)):
        idx = pd.Index([str(a) for a in state], dtype=object)
        dup = idx[idx.duplicated()]
        if len(dup):
            raise InputError("duplicate ticker", asset=str(dup[0]), field="assets")
        return idx
    raise InputError(
        f"expected a PortfolioState or an index of tickers, got {type(state).__name__}",
        field="assets",
    )


class RiskModel(ABC):
    """Base class: an annualized covariance of asset returns, served as a root.

    Subclasses implement :meth:`_known_assets`, :meth:`_root_known`,
    :meth:`_covariance_known` and :meth:`average_idio_variance`; this class handles
    universe alignment, the missing-asset policy and the root cache.
    """

    missing: MissingPolicy = "raise"

    # ------------------------------------------------------------- subclass API
    @abstractmethod
    def _known_assets(self) -> pd.Index | None:
        """Tickers the model covers, or ``None`` when it covers every ticker."""

    @abstractmethod
    def _root_known(self, assets: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        """``(G, s)`` for ``assets``, all covered by the model, in that order."""

    @abstractmethod
    def _covariance_known(self, assets: pd.Index) -> np.ndarray:
        """Dense annualized covariance for covered ``assets``, computed directly from
        the model's inputs (not from the root), in that order."""

    @abstractmethod
    def average_idio_variance(self) -> float:
        """Annualized variance given to an asset the model lacks (``missing="average"``)."""

    # ------------------------------------------------------------------ public
    def root(self, state: PortfolioState | pd.Index) -> RiskRoot:
        """The factored covariance for ``state.assets``, rows in exactly that order.

        Cached per asset order (the last 8 orders): repeated calls with the same
        universe return the same (read-only) object. Safe to call from several
        threads (at worst a root is computed twice). Pickling drops the cache.
        """
        assets = _assets_of(state)
        last = self.__dict__.get("_last_root")
        if last is not None and last[0] is assets:
            return last[1]
        key = tuple(assets.tolist())
        cache = self._cache()
        hit = cache.get(key)
        if hit is not None:
            try:
                cache.move_to_end(key)
            except KeyError:  # evicted meanwhile by another thread
                pass
            object.__setattr__(self, "_last_root", (assets, hit))
            return hit
        known, is_known = self._split(assets)
        if is_known.all():
            G, s = self._root_known(assets)
        else:
            Gk, sk = self._root_known(known)
            G = np.zeros((len(assets), Gk.shape[1]))
            G[is_known] = Gk
            s = np.full(len(assets), np.sqrt(self.average_idio_variance()))
            s[is_known] = sk
        out = RiskRoot(G, s)
        cache[key] = out
        while len(cache) > _CACHE_SIZE:
            try:
                cache.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break
        object.__setattr__(self, "_last_root", (assets, out))
        return out

    def covariance(self, assets: PortfolioState | pd.Index) -> np.ndarray:
        """Dense annualized covariance (n x n) in the order of ``assets``.

        For tests and diagnostics only; optimizers use :meth:`root`. Built from the
        model's inputs directly, so it is an independent check of :meth:`root`.
        """
        idx = _assets_of(assets)
        known, is_known = self._split(idx)
        if is_known.all():
            return self._covariance_known(idx)
        out = np.zeros((len(idx), len(idx)))
        pos = np.flatnonzero(is_known)
        out[np.ix_(pos, pos)] = self._covariance_known(known)
        miss = np.flatnonzero(~is_known)
        out[miss, miss] = self.average_idio_variance()
        return out

    def variance(self, d: np.ndarray, state: PortfolioState | pd.Index) -> float:
        """Annualized variance ``d' Sigma d`` of weights ``d`` aligned to ``state.assets``."""
        return self.root(state).variance(d)

    def tracking_error(self, d: np.ndarray, state: PortfolioState | pd.Index) -> float:
        """Annualized tracking error ``sqrt(d' Sigma d)`` (fraction per sqrt(year))."""
        return self.root(state).tracking_error(d)

    def clear_cache(self) -> None:
        """Forget the cached roots."""
        self._cache().clear()
        object.__setattr__(self, "_last_root", None)

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the root cache (process pools and Dask ship models around)."""
        state = dict(self.__dict__)
        state.pop("_root_cache", None)
        state.pop("_last_root", None)
        return state

    # ----------------------------------------------------------------- helpers
    def _cache(self) -> OrderedDict[tuple[str, ...], RiskRoot]:
        cache = self.__dict__.get("_root_cache")
        if cache is None:
            cache = OrderedDict()
            object.__setattr__(self, "_root_cache", cache)
        return cache

    def _split(self, assets: pd.Index) -> tuple[pd.Index, np.ndarray]:
        covered = self._known_assets()
        if covered is None:
            return assets, np.ones(len(assets), dtype=bool)
        is_known = np.asarray(assets.isin(covered), dtype=bool)
        if not is_known.all():
            if self.missing == "raise":
                asset = str(assets[~is_known][0])
                raise InputError(
                    "asset is not covered by the risk model; add it to the model or "
                    "pass missing='average'",
                    asset=asset, field="risk model",
                )
            if self.missing != "average":
                raise InputError(f"missing must be 'raise' or 'average', got {self.missing!r}",
                                 field="missing")
        return assets[is_known], is_known

    @staticmethod
    def _check_missing(missing: str) -> None:
        if missing not in ("raise", "average"):
            raise InputError(f"missing must be 'raise' or 'average', got {missing!r}",
                             field="missing")

