"""Direct indexing: tax alpha of tax-aware rebalancing on the S&P panel (issue 18).

Set-up (:mod:`rebalopt.research.tax_alpha`):

* data: the shared S&P 500 panel, the ``--assets`` (100) most liquid names by median
  dollar volume over 1999 among those trading on every bar of 1999..2020; split- and
  dividend-adjusted closes; month-end bars from ``--start`` (2000-01);
* target: the equal-weighted index of those names, every month;
* one optimal rebalancer for every run: risk = 15 PCA factors + idiosyncratic
  variance from the 252 daily returns ending at each decision date, horizon one
  month, half spread ``--spread`` (5) bps charged by the broker, long-only, no
  borrowing, fractional shares, $10M cash invested on the first decision date;
* tax: short-term 37% (+3.8%), long-term 20% (+3.8%), losses valued at their
  term's rate (offsetting gains elsewhere), tax paid from a side account;
* runs: tax-unaware (no tax term, lots relieved FIFO; and HIFO), tax-aware (the tax
  term, the optimizer's lots) at risk aversions ``--gammas`` with the wash-sale
  rule on, and the same with the rule off.

Printed: per run, realized tracking error to the index (annualized), pre- and
after-tax annualized return, tax, wash sales, tax alpha against the tax-unaware
FIFO run, wall time, and the published anchors beside. Not a test: minutes.

Usage: ``python benchmarks/bench_tax_alpha.py [--assets 100] [--start 2000-01-01]
[--end 2020-12-31] [--gammas 100,30,10] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import pandas as pd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--start", default="2000-01-01")
    ap.add_argument("--end", default="2020-12-31")
    ap.add_argument("--gammas", default="100,30,10")
    ap.add_argument("--spread", type=float, default=5.0)
    ap.add_argument("--factors", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="30 names, 2007-2011, one gamma")
    ap.add_argument("--json", default=None, help="write the table as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.assets, args.start, args.end, args.gammas = 30, "2007-01-01", "2011-12-31", "30"

    from rebalopt.datasets import shared_data_dir

    if shared_data_dir() is None:
        print("shared data folder not found ($REBALOPT_DATA or ../shared/data): skipped")
        return 0
    from rebalopt.costs.tax import TaxCost
    from rebalopt.rebalance.optimal import OptimalRebalancer
    from rebalopt.rebalance.tax_aware import TaxAwareRebalancer
    from rebalopt.research.tax_alpha import (
        ANCHORS,
        direct_index_feeds,
        run_tax_backtest,
        spread_cost,
        tax_alpha_table,
    )
    from rebalopt.research.universe import sp500_universe
    from rebalopt.risk import pca_factor_model
    from rebalopt.taxes import TaxRates, WashSaleRule

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    first = str(pd.Timestamp(args.start) - pd.DateOffset(years=1))[:10]
    daily = sp500_universe(args.assets, first, args.end, select_bars=252)
    monthly, closes = direct_index_feeds(daily, args.start)
    print(f"data: {daily.n_assets} names, {monthly.n_bars} month-ends "
          f"({monthly.dates[0].date()}..{monthly.dates[-1].date()}), "
          f"load {time.perf_counter() - t0:.1f} s, load avg {os.getloadavg()[0]:.1f}")
    rates = TaxRates(short_term=0.408, long_term=0.238)
    spread = spread_cost(args.spread)
    wash = WashSaleRule(30)

    def estimator(r: pd.DataFrame):
        return pca_factor_model(r, k=args.factors, missing="average")

    def run(name, reb, *, method="fifo", wash_rule=wash):
        r = run_tax_backtest(monthly, closes, reb, broker_costs=[spread], rates=rates,
                             wash_sale=wash_rule, method=method, name=name,
                             estimator=estimator)
        print(f"  {name:<28} TE {r.tracking_error:7.2%}  after-tax {r.after_tax_return:7.2%}"
              f"  pre-tax {r.pre_tax_return:7.2%}  tax {r.tax:14,.0f}  washes "
              f"{r.n_wash_sales:5d}  {r.seconds:6.1f} s", flush=True)
        return r

    runs = {}
    gammas = [float(g) for g in args.gammas.split(",")]
    g0 = gammas[0]
    runs["unaware fifo"] = run("unaware fifo", OptimalRebalancer(costs=[spread],
                                                                 risk_aversion=g0))
    runs["unaware hifo"] = run("unaware hifo", OptimalRebalancer(costs=[spread],
                                                                 risk_aversion=g0),
                               method="hifo")
    for rule_name, rule in (("wash on", wash), ("wash off", None)):
        for g in gammas:
            tax = TaxCost(rates, wash_sale=rule)
            reb = TaxAwareRebalancer(OptimalRebalancer(costs=[spread, tax], risk_aversion=g),
                                     tax)
            name = f"aware {rule_name} g={g:g}"
            runs[name] = run(name, reb, wash_rule=rule)
    table = tax_alpha_table(runs, "unaware fifo")
    years = monthly.n_bars / 12
    print(f"\ntax alpha vs tax-unaware FIFO over {years:.1f} years, "
          f"{daily.n_assets} names (load avg {os.getloadavg()[0]:.1f}):")
    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(table)
    for k, v in ANCHORS.items():
        print(f"  anchor: {k}: {v:.2%}/yr")
    if args.json:
        table.assign(anchor_no_wash=ANCHORS[next(iter(ANCHORS))]).to_json(args.json)
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
