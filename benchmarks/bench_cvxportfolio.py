"""rebalopt's OptimalRebalancer against cvxportfolio's SinglePeriodOptimization, same problem.

The problem (DESIGN.md section 10), synthetic and seeded, no network:
factor risk (k=10, annualized), half-spread + 3/2-power market impact, long-only,
11 absolute sector bounds (target sector weight +/- 1%), one-way turnover <= 5%,
position caps; 100 / 500 / 2,000 assets; gamma = 100, T = 1/12 year.

How the two are made identical (all in fractions of equity ``V``)
----------------------------------------------------------------
rebalopt minimizes ``cost(z) + gamma/2 * T * (w - w*)' Sigma (w - w*)``;
cvxportfolio maximizes ``-gamma_risk * (w+ - w_bm)' (F'F + diag(d)) (w+ - w_bm) - tcost(z)``
with ``w+`` including a cash entry that absorbs the trades (``sum z = 0``).

* risk: ``FactorModelCovariance(F = G', d = s**2)`` (``Sigma_F = I``), the same
  annualized ``Sigma = G G' + diag(s^2)``; ``gamma_risk = gamma * T / 2`` (cvxportfolio's
  risk term has no 1/2 and no horizon: both are folded into its multiplier);
  benchmark ``w_bm`` = rebalopt's targets plus cash ``1 - sum(targets)``.
* cost: ``TransactionCost(a=half_spread, b=coef, sigma=daily vol, volume_hat=price * ADV,
  exponent=1.5)`` is ``a|z| + b sigma |z|^1.5 (V / (p ADV))^0.5``, exactly
  ``Spread`` + ``MarketImpact(coef)`` in weights (cvxportfolio adds 1e-8 dollars to the
  volume: relative effect 1e-16).
* constraints: ``LongOnly()`` (cash exempt), ``MaxWeights(cap)``, ``TurnoverLimit(0.05)``
  (``0.5 * sum|z|``), sector bounds as ``FactorMaxLimit``/``FactorMinLimit`` on a 0/1
  sector-membership matrix. rebalopt gets no cash floor, cvxportfolio no cash
  constraint: cash is free in both (costs are paid from cash in rebalopt and not in
  cvxportfolio, which changes no constraint or objective term here).

Both use Clarabel through cvxpy. cvxportfolio's ``policy.execute(h, market_data=None,
t=...)`` (its public one-shot call, no download) recompiles the program on every call;
its backtest path, ``initialize_estimator_recursive`` once then
``values_in_time_recursive`` per period, re-solves a compiled DPP program, which is the
warm timing compared here. Each warm call uses a different current portfolio.

Optimum check: rebalopt's NumPy objective evaluated at both solutions (and
cvxportfolio's own optimal value, sign flipped) must agree within 1e-5 relative.

Usage: ``python benchmarks/bench_cvxportfolio.py [--quick] [--sizes 100 500 2000]
[--repeats R]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import logging
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rebalopt import MarketImpact, PortfolioState, Spread

SECTORS = 11
GAMMA = 100.0
HORIZON = 1.0 / 12.0
TURNOVER = 0.05
SECTOR_BAND = 0.01
IMPACT_COEF = 1.0
CASH = "USDOLLAR"


@dataclass
class Problem:
    """One universe's data, plus several current portfolios to rebalance."""

    names: list[str]
    prices: pd.Series
    adv: pd.Series  # shares per day
    vol: pd.Series  # daily volatility, fraction
    half_spread_bps: pd.Series
    sectors: pd.Series
    G: np.ndarray  # n x k, annualized
    s: np.ndarray  # n, annualized idiosyncratic vol
    targets: pd.Series
    cap: float
    sector_lo: pd.Series
    sector_hi: pd.Series
    states: list[PortfolioState]


def make_problem(n: int, n_states: int, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    names = [f"A{i:04d}" for i in range(n)]
    k = 10
    G = rng.normal(0.0, 0.25 / np.sqrt(k), (n, k))
    s = rng.uniform(0.15, 0.35, n)
    vol = np.sqrt((G**2).sum(1) + s**2) / np.sqrt(252.0)
    prices = rng.uniform(10.0, 300.0, n)
    dollar_adv = np.exp(rng.uniform(np.log(5e6), np.log(5e8), n))
    sectors = pd.Series([f"S{i % SECTORS:02d}" for i in rng.permutation(n)], index=names)
    cap = 3.0 / n
    t = np.minimum(rng.dirichlet(np.full(n, 2.0)), 0.8 * cap)
    t = np.minimum(t * 0.97 / t.sum(), 0.8 * cap)
    targets = pd.Series(t, index=names)
    sec_w = targets.groupby(sectors).sum()
    equity = 5e7
    states = []
    for _ in range(n_states):
        w0 = np.minimum(t * np.exp(rng.normal(0.0, 0.2, n)), cap)
        w0 *= 0.97 / w0.sum()
        holdings = w0 * equity / prices
        cash = equity - float(holdings @ prices)
        states.append(PortfolioState(
            pd.Series(holdings, index=names), cash, pd.Series(prices, index=names),
            adv=pd.Series(dollar_adv / prices, index=names),
            volatility=pd.Series(vol, index=names), groups=sectors,
        ))
    return Problem(
        names=names, prices=pd.Series(prices, index=names),
        adv=pd.Series(dollar_adv / prices, index=names), vol=pd.Series(vol, index=names),
        half_spread_bps=pd.Series(rng.uniform(1.0, 8.0, n), index=names), sectors=sectors,
        G=G, s=s, targets=targets, cap=cap,
        sector_lo=(sec_w - SECTOR_BAND).clip(lower=0.0), sector_hi=sec_w + SECTOR_BAND,
        states=states,
    )


# ------------------------------------------------------------------ rebalopt
def rebalopt_rebalancer(p: Problem) -> Any:
    from rebalopt.constraints import GroupBounds, LongOnly, TurnoverLimit, WeightBounds
    from rebalopt.rebalance.optimal import OptimalRebalancer
    from rebalopt.risk import FactorModel

    factors = [f"f{j}" for j in range(p.G.shape[1])]
    risk = FactorModel(pd.DataFrame(p.G, index=p.names, columns=factors),
                       pd.DataFrame(np.eye(len(factors)), index=factors, columns=factors),
                       pd.Series(p.s**2, index=p.names))
    return OptimalRebalancer(
        risk=risk,
        costs=[Spread(half_spread_bps=p.half_spread_bps), MarketImpact(coef=IMPACT_COEF)],
        constraints=[LongOnly(), WeightBounds(upper=p.cap), TurnoverLimit(cap=TURNOVER),
                     GroupBounds(upper=p.sector_hi.to_dict(), lower=p.sector_lo.to_dict())],
        risk_aversion=GAMMA, horizon=HORIZON, solver=("CLARABEL",),
    )


# -------------------------------------------------------------- cvxportfolio
def cvx_policy(p: Problem) -> Any:
    import cvxportfolio as cvx

    sect = pd.get_dummies(p.sectors).astype(float)  # n x 11, 0/1
    bench = pd.concat([p.targets, pd.Series({CASH: 1.0 - p.targets.sum()})])
    tcost = cvx.TransactionCost(
        a=p.half_spread_bps * 1e-4, b=IMPACT_COEF, sigma=p.vol,
        volume_hat=p.prices * p.adv, exponent=1.5,
    )
    risk = cvx.FactorModelCovariance(
        F=pd.DataFrame(p.G.T, columns=p.names, index=[f"f{j}" for j in range(p.G.shape[1])]),
        d=pd.Series(p.s**2, index=p.names),
    )
    return cvx.SinglePeriodOptimization(
        objective=-(GAMMA * HORIZON / 2.0) * risk - tcost,
        constraints=[
            cvx.LongOnly(), cvx.MaxWeights(p.cap), cvx.TurnoverLimit(TURNOVER),
            cvx.FactorMaxLimit(sect, p.sector_hi[sect.columns]),
            cvx.FactorMinLimit(sect, p.sector_lo[sect.columns]),
        ],
        include_cash_return=False, benchmark=bench, solver="CLARABEL",
    )


def holdings_of(state: PortfolioState) -> pd.Series:
    """Dollar holdings with the cash account last (cvxportfolio's convention)."""
    h = pd.Series(state.values, index=list(state.assets))
    return pd.concat([h, pd.Series({CASH: state.cash})])


T0 = pd.Timestamp("2024-01-02")


def cvx_warm_solve(policy: Any, state: PortfolioState) -> tuple[np.ndarray, float, float]:
    """One re-solve of the compiled policy: (z without cash, cvxportfolio's objective value,
    the solver's own time)."""
    h = holdings_of(state)
    v = float(h.sum())
    w = h / v
    w_plus = policy.values_in_time_recursive(
        t=T0, past_returns=None, past_volumes=None, current_weights=w,
        current_portfolio_value=v, current_prices=None)
    z = (w_plus - w).to_numpy()[:-1]
    prob = policy._problem
    return z, float(prob.value), float(prob.solver_stats.solve_time or np.nan)


def run_size(n: int, repeats: int) -> dict[str, Any]:
    p = make_problem(n, repeats + 1, seed=n)
    out: dict[str, Any] = {"n": n}

    # rebalopt: cold (compile + solve), then warm re-solves on other portfolios
    reb = rebalopt_rebalancer(p)
    t0 = time.perf_counter()
    sol0 = reb.solve(p.states[0], p.targets)
    out["reb_cold"] = time.perf_counter() - t0
    reb_warm, reb_solver, reb_z = [], [], []
    for st in p.states[1:]:
        t0 = time.perf_counter()
        sol = reb.solve(st, p.targets)
        reb_warm.append(time.perf_counter() - t0)
        reb_solver.append(sol.solve_time)
        reb_z.append(sol.z)
    if reb.compilations != 1:
        print(f"  WARNING: rebalopt compiled {reb.compilations} times")
    del sol0

    # cvxportfolio: the public execute() (recompiles every call), then warm re-solves
    import cvxportfolio as cvx  # noqa: F401 - imported for its side effects on logging

    logging.getLogger("cvxportfolio").setLevel(logging.ERROR)
    policy = cvx_policy(p)
    t0 = time.perf_counter()
    u, _, _ = policy.execute(holdings_of(p.states[0]), market_data=None, t=T0)
    out["cvx_execute"] = time.perf_counter() - t0
    universe = pd.Index(p.names + [CASH])
    policy.initialize_estimator_recursive(universe=universe,
                                          trading_calendar=pd.DatetimeIndex([T0]))
    cvx_warm, cvx_solver, cvx_z, cvx_val = [], [], [], []
    for st in p.states[1:]:
        t0 = time.perf_counter()
        z, val, st_time = cvx_warm_solve(policy, st)
        cvx_warm.append(time.perf_counter() - t0)
        cvx_solver.append(st_time)
        cvx_z.append(z)
        cvx_val.append(val)

    # optimum: rebalopt's NumPy objective at both solutions, and cvxportfolio's own value
    rel_gap, rel_val, max_dz = [], [], []
    for st, zr, zc, vc in zip(p.states[1:], reb_z, cvx_z, cvx_val):
        fr = reb.objective(zr, st, p.targets)
        fc = reb.objective(zc, st, p.targets)
        rel_gap.append((fc - fr) / abs(fr))
        rel_val.append((-vc - fr) / abs(fr))
        max_dz.append(float(np.abs(zr - zc).max()))
    out.update(
        reb_warm=statistics.median(reb_warm), reb_warm_spread=(min(reb_warm), max(reb_warm)),
        reb_solver=statistics.median(reb_solver),
        cvx_warm=statistics.median(cvx_warm), cvx_warm_spread=(min(cvx_warm), max(cvx_warm)),
        cvx_solver=statistics.median(cvx_solver),
        rel_gap=max(rel_gap, key=abs), rel_val=max(rel_val, key=abs), max_dz=max(max_dz),
        objective_bps=1e4 * reb.objective(reb_z[0], p.states[1], p.targets),
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 and 500 assets, 3 warm calls")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=None, help="warm calls per size")
    args = ap.parse_args(argv)
    try:
        import cvxportfolio
    except ImportError:
        print("bench_cvxportfolio: cvxportfolio is not installed (pip install "
              "'rebalopt[bench]'): skipped")
        return 0
    sizes = args.sizes or ([100, 500] if args.quick else [100, 500, 2000])
    repeats = args.repeats or (3 if args.quick else 7)
    warnings.filterwarnings("ignore", message="Solution may be inaccurate")
    print(f"bench_cvxportfolio: rebalopt vs cvxportfolio {cvxportfolio.__version__} "
          f"SinglePeriodOptimization, Clarabel, gamma={GAMMA:g}, T=1/12, {repeats} warm calls "
          f"per size (medians, min-max)")
    rows = [run_size(n, repeats) for n in sizes]
    print(f"\n{'n':>5} | {'rebalopt cold':>13} {'warm ms':>8} {'(min-max)':>15} {'solver ms':>9}"
          f" | {'cvx execute':>11} {'warm ms':>8} {'(min-max)':>15} {'solver ms':>9}"
          f" | {'speed-up':>8} | {'obj gap':>9} {'cvx val':>9} {'max|dz|':>8}")
    ok = True
    for r in rows:
        ratio = r["cvx_warm"] / r["reb_warm"]
        print(f"{r['n']:>5} | {1e3 * r['reb_cold']:>11.0f}ms {1e3 * r['reb_warm']:>8.1f} "
              f"({1e3 * r['reb_warm_spread'][0]:>6.1f}-{1e3 * r['reb_warm_spread'][1]:>6.1f})"
              f" {1e3 * r['reb_solver']:>9.1f} | {1e3 * r['cvx_execute']:>9.0f}ms "
              f"{1e3 * r['cvx_warm']:>8.1f} ({1e3 * r['cvx_warm_spread'][0]:>6.1f}-"
              f"{1e3 * r['cvx_warm_spread'][1]:>6.1f}) {1e3 * r['cvx_solver']:>9.1f} | "
              f"{ratio:>7.2f}x | {r['rel_gap']:>9.1e} {r['rel_val']:>9.1e} {r['max_dz']:>8.1e}")
        ok &= abs(r["rel_gap"]) <= 1e-5 and abs(r["rel_val"]) <= 1e-5
    print("\nspeed-up = cvxportfolio warm re-solve / rebalopt warm re-solve (goal >= 2x).")
    print("obj gap = (f(z_cvx) - f(z_rebalopt)) / |f(z_rebalopt)| with rebalopt's NumPy "
          "objective f (>0: rebalopt is better); cvx val = cvxportfolio's optimal value, sign "
          "flipped, against f(z_rebalopt). Worst over the warm calls; goal |.| <= 1e-5.")
    print(f"objective at the optimum: {rows[0]['objective_bps']:.3f} bps of equity (n="
          f"{rows[0]['n']}, first warm call)")
    print("same optimum within 1e-5: " + ("yes" if ok else "NO (see the columns above)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
