"""FactorModel: loadings, factor covariance and idiosyncratic variance."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rebalopt._typing import AssetValues
from rebalopt.errors import InputError
from rebalopt.risk._validate import clean_frame, clean_series, clean_square, psd_repair
from rebalopt.risk.base import MissingPolicy, RiskModel, factor_root
from rebalopt.risk.covariance import PsdPolicy

__all__ = ["FactorModel"]


@dataclass(frozen=True, eq=False)
class FactorModel(RiskModel):
    r"""Structured covariance ``Sigma = B F B' + diag(delta)``.

    .. math:: \Sigma = B F B^\top + \operatorname{diag}(\delta), \qquad
              G = B\,\operatorname{chol}(F), \quad s = \sqrt{\delta}

    The root never forms a dense N x N matrix: ``G`` is ``(n, k)`` with ``k`` the
    number of factors (fewer if ``F`` is singular: its eigen root over positive
    eigenvalues is used instead of the Cholesky factor).

    Parameters
    ----------
    loadings
        ``B``: DataFrame tickers x factors (exposure per unit weight; dimensionless
        for return-based factors).
    factor_cov
        ``F``: DataFrame factors x factors, annualized factor-return covariance, same
        factors as the columns of ``loadings`` (any order). Symmetric; not PSD ->
        see ``psd``.
    idio_var
        ``delta``: annualized idiosyncratic variance per ticker, (fraction)^2 per
        year, ``>= 0``; same tickers as ``loadings``.
    psd
        ``"repair"`` (default: clip ``F``'s eigenvalues at zero, with a warning) or
        ``"raise"``.
    missing
        ``"raise"`` (default) or ``"average"``: an asset the model lacks gets zero
        loadings and the mean of ``idio_var``.
    """

    loadings: pd.DataFrame
    factor_cov: pd.DataFrame
    idio_var: pd.Series | AssetValues
    psd: PsdPolicy = "repair"
    missing: MissingPolicy = "raise"
    repaired: bool = field(init=False, default=False)
    """Whether eigenvalue clipping changed ``factor_cov``."""
    _B: pd.DataFrame = field(init=False, repr=False)
    _F: np.ndarray = field(init=False, repr=False)
    _LF: np.ndarray = field(init=False, repr=False)
    _delta: pd.Series = field(init=False, repr=False)

    @classmethod
    def _estimated(cls, loadings: np.ndarray, factor_cov: np.ndarray, idio_var: np.ndarray,
                   tickers: pd.Index, factors: pd.Index,
                   missing: MissingPolicy = "raise") -> FactorModel:
        """The model an estimator computed: arrays on unique string ``tickers`` (an object
        Index) and ``factors``, a symmetric ``factor_cov``. The same model as the
        constructor's from frames of these arrays, without the label and number checks
        of user input (about 9 ms at 460 tickers, per risk date of a backtest); a
        non-finite number is still an :class:`InputError` naming the field."""
        cls._check_missing(missing)
        for name, arr in (("loadings", loadings), ("factor covariance", factor_cov),
                          ("idiosyncratic variance", idio_var)):
            if not np.isfinite(arr).all():
                raise InputError("estimated value is not finite", field=name)
        self = cls.__new__(cls)
        B = pd.DataFrame(np.array(loadings, dtype=float), index=tickers, columns=factors)
        F = pd.DataFrame(np.array(factor_cov, dtype=float), index=factors, columns=factors)
        delta = pd.Series(np.array(idio_var, dtype=float), index=tickers)
        for name, val in (("loadings", B), ("factor_cov", F), ("idio_var", delta),
                          ("psd", "repair"), ("missing", missing)):
            object.__setattr__(self, name, val)
        self._finish(B, F, delta)
        return self

    def __post_init__(self) -> None:
        self._check_missing(self.missing)
        B = clean_frame(self.loadings, "loadings")
        F = clean_square(self.factor_cov, "factor covariance", what="factor")
        only_b = B.columns.difference(F.index, sort=False)
        if len(only_b):
            raise InputError(f"factor {only_b[0]!r} has loadings but no factor covariance",
                             field="factor covariance")
        only_f = F.index.difference(B.columns, sort=False)
        if len(only_f):
            raise InputError(f"factor {only_f[0]!r} has a factor covariance but no loadings",
                             field="loadings")
        F = F.loc[B.columns, B.columns]
        delta = clean_series(self.idio_var, "idiosyncratic variance")
        only_b = B.index.difference(delta.index, sort=False)
        if len(only_b):
            raise InputError("asset has loadings but no idiosyncratic variance",
                             asset=str(only_b[0]), field="idiosyncratic variance")
        only_d = delta.index.difference(B.index, sort=False)
        if len(only_d):
            raise InputError("asset has an idiosyncratic variance but no loadings",
                             asset=str(only_d[0]), field="loadings")
        self._finish(B, F, delta)

    def _finish(self, B: pd.DataFrame, F: pd.DataFrame, delta: pd.Series) -> None:
        """The derived fields from checked ``B``, ``F`` (aligned to ``B``'s columns) and
        ``delta``."""
        Farr, lmin, material = psd_repair(F.to_numpy(), "factor covariance", self.psd)
        if material:
            warnings.warn(
                f"factor covariance is not positive semidefinite (smallest eigenvalue "
                f"{lmin:.3g}); repaired by clipping eigenvalues at zero",
                UserWarning, stacklevel=3,
            )
        object.__setattr__(self, "repaired", bool(lmin < 0))
        object.__setattr__(self, "_B", B)
        object.__setattr__(self, "_F", Farr)
        object.__setattr__(self, "_LF", factor_root(Farr))
        object.__setattr__(self, "_delta", delta.reindex(B.index))

    @property
    def factors(self) -> pd.Index:
        """Factor names, in the column order of ``loadings``."""
        return self._B.columns.copy()

    def exposures(self, assets: object) -> pd.DataFrame:
        """Loadings aligned to a universe (``PortfolioState`` or index), for factor
        exposure constraints. Assets the model lacks get zero loadings under
        ``missing="average"``."""
        from rebalopt.risk.base import _assets_of

        idx = _assets_of(assets)  # type: ignore[arg-type]
        known, is_known = self._split(idx)
        out = np.zeros((len(idx), self._B.shape[1]))
        out[is_known] = self._B.to_numpy()[self._B.index.get_indexer(known)]
        return pd.DataFrame(out, index=idx, columns=self._B.columns)

    def _known_assets(self) -> pd.Index:
        return self._B.index

    def _root_known(self, assets: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        pos = self._B.index.get_indexer(assets)
        G = self._B.to_numpy()[pos] @ self._LF
        return G, np.sqrt(self._delta.to_numpy()[pos])

    def _covariance_known(self, assets: pd.Index) -> np.ndarray:
        pos = self._B.index.get_indexer(assets)
        B = self._B.to_numpy()[pos]
        return B @ self._F @ B.T + np.diag(self._delta.to_numpy()[pos])

    def average_idio_variance(self) -> float:
        return float(self._delta.mean()) if len(self._delta) else 0.0
