"""rebalopt's OptimalRebalancer against cvxportfolio's SinglePeriodOptimization, same problem.

The problem is bench_optimal.py's (its ``universe`` and ``drifted_state`` are imported,
so both benchmarks time the identical program): factor risk (k=10, annualized, with a
factor covariance), 5 bps half spread + 3/2-power impact (coef 1), long-only, cash
floor, 11 sector caps (15%), one-way turnover <= 5%, position caps max(2%, 3/n);
100 / 500 / 2,000 assets; gamma = 100, T = 1/12 year; books drifted by random returns.

How the two are made identical (all in fractions of equity ``V``)
----------------------------------------------------------------
rebalopt minimizes ``cost(z) + gamma/2 * T * (w - w*)' Sigma (w - w*)``;
cvxportfolio maximizes ``-gamma_risk * (w+ - w_bm)' (F'F + diag(d)) (w+ - w_bm) - tcost(z)``
with ``w+`` including a cash entry that absorbs the trades (``sum z = 0``).

* risk: ``FactorModelCovariance(F = B', Sigma_F = F, d = idio_var)`` from the raw inputs
  of rebalopt's ``FactorModel`` (not from its root, so the root is checked too), the same
  annualized ``Sigma = B F B' + diag(idio_var)``; ``gamma_risk = gamma * T / 2`` (cvxportfolio's
  risk term has no 1/2 and no horizon: both are folded into its multiplier);
  benchmark ``w_bm`` = rebalopt's targets plus cash ``1 - sum(targets)``.
* cost: ``TransactionCost(a=half_spread, b=coef, sigma=daily vol, volume_hat=price * ADV,
  exponent=1.5)`` is ``a|z| + b sigma |z|^1.5 (V / (p ADV))^0.5``, exactly
  ``Spread`` + ``MarketImpact(coef)`` in weights (sigma daily in both) (cvxportfolio adds 1e-8 dollars to the
  volume: relative effect 1e-16).
* constraints: ``LongOnly()`` (cash exempt), ``MaxWeights(cap)``, ``TurnoverLimit(0.05)``
  (``0.5 * sum|z|``), sector caps as ``FactorMaxLimit`` on a 0/1 sector-membership
  matrix, and ``LongCash()`` for rebalopt's ``CashFloor(0)``. The one difference:
  rebalopt pays the costs from cash (``c0 - 1'z - cost >= 0``), cvxportfolio does not
  (``c0 - 1'z >= 0``); the script reports when rebalopt's cash floor binds, the only
  case where the optima may then differ.
* volumes: ``volume_hat`` is a frame with one row per book (prices drift per book), and
  each warm call passes that book's time ``t``.

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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rebalopt import MarketImpact, PortfolioState, Spread

GAMMA = 100.0
HORIZON = 1.0 / 12.0
CASH = "USDOLLAR"
T0 = pd.Timestamp("2024-01-02")


@dataclass
class Problem:
    """bench_optimal.py's universe and constraints, with several drifted books."""

    assets: list[str]
    targets: pd.Series
    risk: Any  # rebalopt FactorModel (loadings, factor_cov, idio_var)
    states: list[PortfolioState]
    cap: float
    sector_cap: float
    turnover: float
    spread_bps: float
    impact_coef: float


def make_problem(n: int, n_states: int) -> Problem:
    """The data and terms of ``bench_optimal.py`` (imported, so both benchmarks time the
    identical problem): factor risk k=10, 5 bps half spread + 3/2 impact (coef 1),
    long-only, cash floor, 11 sector caps (15%), one-way turnover <= 5%, position caps
    max(2%, 3/n); books drifted by a month of random returns (prices move per book)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_optimal as bo

    assets, prices, extras, targets, risk = bo.universe(n)
    rng = np.random.default_rng(1)
    states = [bo.drifted_state(assets, prices, extras, targets, rng) for _ in range(n_states)]
    return Problem(assets=list(assets), targets=targets, risk=risk, states=states,
                   cap=max(0.02, 3.0 / n), sector_cap=0.15, turnover=0.05, spread_bps=5.0,
                   impact_coef=1.0)


# ------------------------------------------------------------------ rebalopt
def rebalopt_rebalancer(p: Problem) -> Any:
    from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
    from rebalopt.rebalance.optimal import OptimalRebalancer

    return OptimalRebalancer(
        risk=p.risk, costs=[Spread(p.spread_bps), MarketImpact(coef=p.impact_coef)],
        constraints=[LongOnly(), CashFloor(), GroupBounds(upper=p.sector_cap),
                     TurnoverLimit(p.turnover), WeightBounds(upper=p.cap)],
        risk_aversion=GAMMA, horizon=HORIZON,  # default chain: Clarabel, then SCS
    )


# -------------------------------------------------------------- cvxportfolio
CVX_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}
"""Clarabel tolerances for ``--cvx-tight``: cvxportfolio's objective is in raw fractions
of equity (~1e-4), so Clarabel's default absolute gap (1e-8) is ~1e-4 relative."""


def cvx_policy(p: Problem, times: pd.DatetimeIndex, tight: bool = False) -> Any:
    """The same program in cvxportfolio. Dollar volumes change with each book's prices,
    so ``volume_hat`` is a frame indexed by time, one row per book (book i at times[i])."""
    import cvxportfolio as cvx

    st0 = p.states[0]
    sect = pd.get_dummies(pd.Series(st0.groups, index=p.assets)).astype(float)
    bench = pd.concat([p.targets, pd.Series({CASH: 1.0 - p.targets.sum()})])
    vol_hat = pd.DataFrame([st.prices * st.adv for st in p.states], index=times,
                           columns=p.assets)
    tcost = cvx.TransactionCost(
        a=p.spread_bps * 1e-4, b=p.impact_coef,
        sigma=pd.Series(st0.volatility, index=p.assets), volume_hat=vol_hat, exponent=1.5,
    )
    r = p.risk
    risk = cvx.FactorModelCovariance(
        F=r.loadings.T.loc[:, p.assets], Sigma_F=r.factor_cov.loc[r.loadings.columns,
                                                                   r.loadings.columns],
        d=pd.Series(r.idio_var, dtype=float).loc[p.assets],
    )
    return cvx.SinglePeriodOptimization(
        objective=-(GAMMA * HORIZON / 2.0) * risk - tcost,
        constraints=[
            cvx.LongOnly(), cvx.LongCash(), cvx.MaxWeights(p.cap), cvx.TurnoverLimit(p.turnover),
            cvx.FactorMaxLimit(sect, pd.Series(p.sector_cap, index=sect.columns)),
        ],
        include_cash_return=False, benchmark=bench, solver="CLARABEL",
        **(CVX_TIGHT if tight else {}),
    )


def holdings_of(state: PortfolioState) -> pd.Series:
    """Dollar holdings with the cash account last (cvxportfolio's convention)."""
    h = pd.Series(state.values, index=list(state.assets))
    return pd.concat([h, pd.Series({CASH: state.cash})])


def cvx_warm_solve(policy: Any, state: PortfolioState, t: pd.Timestamp
                   ) -> tuple[np.ndarray, float, float]:
    """One re-solve of the compiled policy: (z without cash, cvxportfolio's objective value,
    the solver's own time)."""
    h = holdings_of(state)
    v = float(h.sum())
    w = h / v
    w_plus = policy.values_in_time_recursive(
        t=t, past_returns=None, past_volumes=None, current_weights=w,
        current_portfolio_value=v, current_prices=None)
    z = (w_plus - w).to_numpy()[:-1]
    prob = policy._problem
    return z, float(prob.value), float(prob.solver_stats.solve_time or np.nan)


def _rebalopt_side(p: Problem) -> dict[str, Any]:
    """rebalopt: cold (compile + solve), then warm re-solves on the other books."""
    out: dict[str, Any] = {}
    reb = rebalopt_rebalancer(p)
    t0 = time.perf_counter()
    reb.solve(p.states[0], p.targets)
    out["reb_cold"] = time.perf_counter() - t0
    reb_warm, reb_solver, reb_z, cash_binding, fallbacks = [], [], [], 0, 0
    for st in p.states[1:]:
        t0 = time.perf_counter()
        sol = reb.solve(st, p.targets)
        reb_warm.append(time.perf_counter() - t0)
        reb_solver.append(sol.solve_time)
        reb_z.append(sol.z)
        fallbacks += sol.solver != "CLARABEL"
        cash_binding += any(b.startswith("CashFloor") for b in sol.binding)
    if reb.compilations != 1:
        print(f"  WARNING: rebalopt compiled {reb.compilations} times")
    out.update(reb=reb, reb_z=reb_z, reb_warm=statistics.median(reb_warm),
               reb_warm_spread=(min(reb_warm), max(reb_warm)),
               reb_solver=statistics.median(reb_solver), cash_binding=cash_binding,
               fallbacks=fallbacks)
    return out


def _cvx_side(p: Problem, times: pd.DatetimeIndex, tight: bool) -> dict[str, Any]:
    """cvxportfolio: the public execute() (recompiles every call), then warm re-solves."""
    import cvxportfolio as cvx  # noqa: F401

    logging.getLogger("cvxportfolio").setLevel(logging.ERROR)
    policy = cvx_policy(p, times, tight)
    t0 = time.perf_counter()
    policy.execute(holdings_of(p.states[0]), market_data=None, t=times[0])
    cvx_execute = time.perf_counter() - t0
    policy.initialize_estimator_recursive(universe=pd.Index(p.assets + [CASH]),
                                          trading_calendar=times)
    cvx_warm, cvx_solver, cvx_z, cvx_val, cvx_status = [], [], [], [], []
    for st, t in zip(p.states[1:], times[1:]):
        t0 = time.perf_counter()
        z, val, st_time = cvx_warm_solve(policy, st, t)
        cvx_warm.append(time.perf_counter() - t0)
        cvx_solver.append(st_time)
        cvx_z.append(z)
        cvx_val.append(val)
        cvx_status.append(str(policy._problem.status))
    return {"cvx_execute": cvx_execute, "cvx_z": cvx_z, "cvx_val": cvx_val,
            "cvx_warm": statistics.median(cvx_warm),
            "cvx_warm_spread": (min(cvx_warm), max(cvx_warm)),
            "cvx_solver": statistics.median(cvx_solver),
            "cvx_inaccurate": sum(s != "optimal" for s in cvx_status)}


def run_size(n: int, repeats: int, tight: bool = False) -> dict[str, Any]:
    """Both sides on the same books; each side's failure (a MemoryError in cvxportfolio at
    2,000 assets, say) is recorded on its own and never loses the other side's row."""
    p = make_problem(n, repeats + 1)
    times = pd.bdate_range(T0, periods=len(p.states))
    out: dict[str, Any] = {"n": n, "load": os.getloadavg()[0]}
    for side, run in (("rebalopt", lambda: _rebalopt_side(p)),
                      ("cvxportfolio", lambda: _cvx_side(p, times, tight))):
        try:
            out.update(run())
        except Exception as exc:  # noqa: BLE001 - recorded per side
            out[f"{side}_error"] = f"{type(exc).__name__}: {exc}"[:200]
    out["load_end"] = os.getloadavg()[0]
    if "reb_z" not in out or "cvx_z" not in out:
        return out
    # optimum: rebalopt's NumPy objective at both solutions, and cvxportfolio's own value
    reb = out.pop("reb")
    rel_gap, rel_val, max_dz = [], [], []
    for st, zr, zc, vc in zip(p.states[1:], out["reb_z"], out["cvx_z"], out["cvx_val"]):
        fr = reb.objective(zr, st, p.targets)
        fc = reb.objective(zc, st, p.targets)
        rel_gap.append((fc - fr) / abs(fr))
        rel_val.append((-vc - fr) / abs(fr))
        max_dz.append(float(np.abs(zr - zc).max()))
    out.update(rel_gap=max(rel_gap, key=abs), rel_val=max(rel_val, key=abs),
               max_dz=max(max_dz),
               objective_bps=1e4 * reb.objective(out["reb_z"][0], p.states[1], p.targets))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 and 500 assets, 3 warm calls")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=None, help="warm calls per size")
    ap.add_argument("--cvx-tight", action="store_true",
                    help="tight Clarabel tolerances for cvxportfolio (accuracy check)")
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
    rows = []
    for n in sizes:
        try:
            rows.append(run_size(n, repeats, args.cvx_tight))
        except Exception as exc:  # noqa: BLE001 - report and go on with the other sizes
            print(f"  n={n}: FAILED {type(exc).__name__}: {exc}")
    if not rows:
        return 1
    print(f"\n{'n':>5} | {'rebalopt cold':>13} {'warm ms':>8} {'(min-max)':>15} {'solver ms':>9}"
          f" | {'cvx execute':>11} {'warm ms':>8} {'(min-max)':>15} {'solver ms':>9}"
          f" | {'speed-up':>8} | {'obj gap':>9} {'cvx val':>9} {'max|dz|':>8}")
    ok = True
    for r in rows:
        print(f"  n={r['n']}: load {r['load']:.1f} -> {r['load_end']:.1f}")
        for side in ("rebalopt", "cvxportfolio"):
            if f"{side}_error" in r:
                print(f"  n={r['n']}: {side} FAILED {r[f'{side}_error']}")
                ok = False
        if r.get("cvx_inaccurate"):
            print(f"  n={r['n']}: cvxportfolio's Clarabel status was not 'optimal' (e.g. "
                  f"optimal_inaccurate) in {r['cvx_inaccurate']} of the warm calls")
        if r.get("fallbacks"):
            print(f"  n={r['n']}: rebalopt fell back from Clarabel to SCS in "
                  f"{r['fallbacks']} of the warm calls (timings include it)")
        if r.get("cash_binding"):
            print(f"  n={r['n']}: rebalopt's cash floor (costs paid from cash) bound in "
                  f"{r['cash_binding']} calls; cvxportfolio's LongCash ignores costs, so the "
                  "optima may differ there")
        nan = float("nan")
        rw, cw = r.get("reb_warm", nan), r.get("cvx_warm", nan)
        rs = r.get("reb_warm_spread", (nan, nan))
        cs = r.get("cvx_warm_spread", (nan, nan))
        print(f"{r['n']:>5} | {1e3 * r.get('reb_cold', nan):>11.0f}ms {1e3 * rw:>8.1f} "
              f"({1e3 * rs[0]:>6.1f}-{1e3 * rs[1]:>6.1f})"
              f" {1e3 * r.get('reb_solver', nan):>9.1f} | "
              f"{1e3 * r.get('cvx_execute', nan):>9.0f}ms "
              f"{1e3 * cw:>8.1f} ({1e3 * cs[0]:>6.1f}-"
              f"{1e3 * cs[1]:>6.1f}) {1e3 * r.get('cvx_solver', nan):>9.1f} | "
              f"{cw / rw:>7.2f}x | {r.get('rel_gap', nan):>9.1e} {r.get('rel_val', nan):>9.1e} "
              f"{r.get('max_dz', nan):>8.1e}")
        if "rel_gap" in r:
            ok &= abs(r["rel_gap"]) <= 1e-5 and abs(r["rel_val"]) <= 1e-5
    print("\nspeed-up = cvxportfolio warm re-solve / rebalopt warm re-solve (goal >= 2x).")
    print("obj gap = (f(z_cvx) - f(z_rebalopt)) / |f(z_rebalopt)| with rebalopt's NumPy "
          "objective f (>0: rebalopt is better); cvx val = cvxportfolio's optimal value, sign "
          "flipped, against f(z_rebalopt). Worst over the warm calls; goal |.| <= 1e-5.")
    if "objective_bps" in rows[0]:
        print(f"objective at the optimum: {rows[0]['objective_bps']:.3f} bps of equity (n="
              f"{rows[0]['n']}, first warm call)")
    print("same optimum within 1e-5: " + ("yes" if ok else "NO (see the columns above)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
