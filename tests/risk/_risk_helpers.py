"""Random inputs for the risk tests (small, deterministic by seed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rebalopt import PortfolioState


def tickers(n: int) -> list[str]:
    return [f"T{i:03d}" for i in range(n)]


def state_for(assets: list[str]) -> PortfolioState:
    """A state whose universe is exactly ``assets`` in that order."""
    return PortfolioState({assets[0]: 5.0}, 10_000.0, {a: 10.0 + i for i, a in enumerate(assets)})


def random_factor_inputs(n: int, k: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    names = tickers(n)
    factors = [f"f{j}" for j in range(k)]
    B = pd.DataFrame(rng.normal(size=(n, k)), index=names, columns=factors)
    A = rng.normal(size=(k, k)) * 0.1
    F = pd.DataFrame(A @ A.T + 0.01 * np.eye(k), index=factors, columns=factors)
    delta = pd.Series(rng.uniform(0.01, 0.09, n), index=names)
    return B, F, delta


def random_cov(n: int, seed: int, rank: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, rank or n)) * 0.2
    names = tickers(n)
    return pd.DataFrame(A @ A.T, index=names, columns=names)


def random_returns(T: int, n: int, seed: int, k: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, k))
    f = rng.normal(0, 0.01, size=(T, k))
    e = rng.normal(0, 0.005, size=(T, n)) * rng.uniform(0.5, 2.0, n)
    idx = pd.bdate_range("2020-01-01", periods=T)
    return pd.DataFrame(f @ B.T + e, index=idx, columns=tickers(n))
