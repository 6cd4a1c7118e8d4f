"""Direct indexing: tax alpha of tax-aware rebalancing at equal tracking error (issue 18).

Set-up (:mod:`rebalopt.research.tax_alpha`):

* data: the shared S&P 500 panel, the ``--assets`` most liquid names by median
  dollar volume over the year before ``--start`` among those trading on every bar of
  that year..``--end``; split- and dividend-adjusted closes; month-end bars (or
  week-end bars, ``--frequency W``) from ``--start``;
* target: the equal-weighted index of those names, on every bar;
* one optimal rebalancer per policy: risk = ``--factors`` PCA factors + idiosyncratic
  variance from the 252 daily returns ending at each decision date (one schedule,
  shared by every run), horizon one bar, half spread ``--spread`` bps planned with
  and charged by the broker, long-only, no borrowing (the rebalancer's defaults,
  printed per run), fractional shares, $10M cash invested on the first decision date;
* tax: short-term 40.8%, long-term 23.8%, losses valued at their term's rate
  (offsetting gains elsewhere), tax accrued per calendar year in a side account;
* runs: tax-unaware (no tax term, lots relieved FIFO) and tax-aware (the tax term,
  the optimizer's lots, harvesting without wash sales), each swept over the risk
  aversions ``--gammas`` / ``--aware-gammas`` (a frontier of after-tax return against
  realized TE each; the grids differ only to cover the same TEs), with the wash-sale
  rule on, and off.

Printed: per run, TE, pre- and after-tax return, tax, wash sales; then the tax alpha
at equal TE over the common TE range of the two frontiers (efficient points, and
the raw sweep), and the published anchors. Not a test: minutes.

Results (branch ``taxalpha``, 2 shared cores, load average 2.0-3.2 during the runs;
50 names, month-end bars 2005-01..2020-12 (16 years), default gammas; 5 minutes for
both wash-sale settings). Tax alpha = aware - unaware annualized after-tax return at
equal realized TE (efficient frontiers), in %/yr; "tax part" = tax drag saved
(pre- minus after-tax return, unaware minus aware); "liquidated" = every open lot
sold at the end:

=========================  =======  =======  =======  =======
TE (annualized)            0.25%    0.5%     1%       2%
=========================  =======  =======  =======  =======
wash-sale on: tax alpha    0.41     0.40     0.64     1.42
  tax part                 0.29     0.18     0.11     0.11
  liquidated               0.09     0.19     0.38     1.11
wash-sale off: tax alpha   0.43     0.35     0.56     1.23
  tax part                 0.35     0.25     0.17     0.16
  liquidated               0.09     0.12     0.27     0.89
=========================  =======  =======  =======  =======

Common TE range 0.07%-5.1% (on), 0.04%-4.8% (off). Harvest frequency (30 names, same
period, rule on, ``--frequency W,M --gammas 3,10,30,100,300,1000,3000 --aware-gammas
3000,30000,300000``, 7.5 minutes): at TE 0.25% / 0.5%, tax alpha 0.41 / 0.31 weekly
against 0.38 / 0.32 monthly; tax part 0.50 / 0.30 against 0.33 / 0.23; liquidated
about 0 for both (the 50-name weekly tax-aware runs took over 4 minutes each: not run).
Above 1% TE most of the figure is pre-tax return (a tax-aware book lets winners run,
which paid in 2005-2020), not tax. Why below the anchors, and why the rule barely
matters here: ``docs/howto/taxes.md``, "Tax alpha at equal tracking error".

At scale (branch ``s4-tax``, the same set-up and default gammas; the longest history
the panel allows: names trading on every bar of 1999-11..2021-04, month-end bars
2000-11..2021-04, 20.4 years, 246 bars; ``--start 2000-11-01 --end 2021-04-21
--assets 100|200|300``; 2 shared cores, load average 2.9-5.5 during the runs). Tax alpha
at equal TE (efficient frontiers), %/yr, beside the anchors:

=========================  =======  =======  =======  =======  =======
TE (annualized)            0.25%    0.5%     1%       2%       anchor
=========================  =======  =======  =======  =======  =======
100 names, rule on         0.36     0.41     0.54     0.59     0.82
  tax part                 0.23     0.19     0.13     0.12
  liquidated               0.05     0.10     0.22     0.50
100 names, rule off        0.37     0.38     0.48     0.48     1.08
  tax part                 0.24     0.21     0.14     0.13
  liquidated               0.07     0.08     0.17     0.41
200 names, rule on         0.35     0.34     0.34     0.27     0.82
  tax part                 0.23     0.18     0.13     0.10
  liquidated               0.08     0.06     0.01     0.22
200 names, rule off        0.38     0.41     0.50     0.35     1.08
  tax part                 0.25     0.20     0.14     0.10
  liquidated               0.11     0.13     0.18     0.30
300 names, rule on         0.39     0.40     0.41     0.49     0.82
  tax part                 0.23     0.18     0.12     0.09
  liquidated               0.10     0.12     0.15     0.29
300 names, rule off        0.39     0.38     0.35     0.59     1.08
  tax part                 0.25     0.20     0.14     0.10
  liquidated               0.10     0.12     0.16     0.38
=========================  =======  =======  =======  =======  =======

Common TE range: 100 names 0.09%-5.7% (on), 0.06%-6.1% (off); 200 names 0.10%-3.5%
(on), 0.09%-4.6% (off); 300 names 0.13%-4.1% (on), 0.11%-4.9% (off). Wall time for
both rule settings (16 runs each, on cores shared with two other jobs): 100 names
19 minutes (the library before this branch's lot-table speed-up), 200 names 27
minutes and 300 names 38 minutes (after it); a 300-name tax-aware run took 68-354 s,
more at high gamma (the book trades every month and holds more lots). Wash sales
with the rule on: 92-1,997 per tax-aware run (100 names), 124-3,343 (200 names),
87-4,393 (300 names), two to three times the unaware runs' at the same TE (the tax-aware
book sells loss lots for tracking a month after buying the asset: with a 30-day
window and month-end bars, a purchase at the previous month-end is often inside
it; such a loss is valued at 0 by the tax term, not forbidden). Where the tax saved
comes from (100 names, rule on, aware gamma 3000 against unaware gamma 10, TE 0.87% /
0.92%; tax per calendar year of the two runs): of $2.0M saved over the 20 years,
$1.16M in 2001-2002 (the new book's first two years, in a falling market: 5.7% and
7.0% of equity), $0.29M in 2008, $0.65M in 2018-2020 (gains the unaware book realized
and the aware book deferred), the other 15 years -$0.11M together; paid from a side
account that does not compound, $2.0M on a book ending near $94M is about 0.1%/yr.

Anchors: Chaudhuri, Burnham and Lo (FAJ 2020; CRSP top 500, 1926-2018): 1.08%/yr
without the wash-sale rule, 0.82%/yr with it; Vanguard (2022): harvest alpha rises
with harvest frequency.

Usage: ``python benchmarks/bench_tax_alpha.py [--assets 50] [--start 2005-01-01]
[--end 2020-12-31] [--gammas ...] [--frequency M,W] [--wash on,off] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import pandas as pd

DEFAULT_GAMMAS = "0.3,1,3,10,30,100,300,1000"
"""Risk aversions of the tax-unaware sweep (cheap runs; TE about 5% down to 0.05%)."""
DEFAULT_AWARE_GAMMAS = "30,100,300,1000,3000,10000,30000,100000"
"""Risk aversions of the tax-aware sweep: the tax term holds TE up, so its frontier
reaches the unaware TEs at larger gammas (a lower gamma only adds TEs past them)."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=50)
    ap.add_argument("--start", default="2005-01-01")
    ap.add_argument("--end", default="2020-12-31")
    ap.add_argument("--gammas", default=DEFAULT_GAMMAS, help="tax-unaware risk aversions")
    ap.add_argument("--aware-gammas", default=DEFAULT_AWARE_GAMMAS,
                    help="tax-aware risk aversions")
    ap.add_argument("--spread", type=float, default=5.0)
    ap.add_argument("--factors", type=int, default=15)
    ap.add_argument("--frequency", default="M", help="M, W or M,W")
    ap.add_argument("--wash", default="on,off", help="on, off or on,off")
    ap.add_argument("--points", type=int, default=5)
    ap.add_argument("--at", default="0.0025,0.005,0.01,0.02",
                    help="TEs (annualized fractions) to read the tax alpha at")
    ap.add_argument("--quick", action="store_true", help="30 names, 2007-2011, 4 gammas")
    ap.add_argument("--json", default=None, help="write the tables as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.assets, args.start, args.end = 30, "2007-01-01", "2011-12-31"
        args.gammas, args.aware_gammas = "1,10,100,1000", "300,3000,30000"

    from rebalopt.datasets import shared_data_dir

    if shared_data_dir() is None:
        print("shared data folder not found ($REBALOPT_DATA or ../shared/data): skipped")
        return 0
    from rebalopt.costs.tax import TaxCost
    from rebalopt.rebalance.optimal import OptimalRebalancer
    from rebalopt.rebalance.tax_aware import TaxAwareRebalancer
    from rebalopt.research.targets import risk_schedule
    from rebalopt.research.tax_alpha import (
        ANCHORS,
        PERIODS_PER_YEAR,
        direct_index_feeds,
        equal_te_tax_alpha,
        frontier_table,
        mean_tax_alpha,
        spread_cost,
        tax_alpha_at_own_te,
        tax_frontier,
    )
    from rebalopt.research.universe import sp500_universe
    from rebalopt.risk import pca_factor_model
    from rebalopt.taxes import TaxRates, WashSaleRule

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    first = str(pd.Timestamp(args.start) - pd.DateOffset(years=1))[:10]
    daily = sp500_universe(args.assets, first, args.end, select_bars=252)
    rates = TaxRates(short_term=0.408, long_term=0.238)
    spread = spread_cost(args.spread)
    sweeps = {"unaware": [float(g) for g in args.gammas.split(",")],
              "aware": [float(g) for g in args.aware_gammas.split(",")]}

    def estimator(r: pd.DataFrame):
        return pca_factor_model(r, k=args.factors, missing="average")

    out: dict[str, dict] = {}
    fmt = {"display.width": 200, "display.max_columns": 20,
           "display.float_format": "{:.4f}".format}
    for freq in args.frequency.split(","):
        bars, closes = direct_index_feeds(daily, args.start, freq)
        ppy = PERIODS_PER_YEAR[freq]
        dates = bars.dates[bars.dates >= closes.index[252]]
        risk = risk_schedule(closes, dates, lookback=252, estimator=estimator)
        print(f"data: {daily.n_assets} names, {bars.n_bars} bars ({freq}, "
              f"{bars.dates[0].date()}..{bars.dates[-1].date()}), "
              f"{time.perf_counter() - t0:.1f} s, load avg {os.getloadavg()[0]:.1f}", flush=True)
        for rule_name in args.wash.split(","):
            rule = WashSaleRule(30) if rule_name == "on" else None
            common = {"broker_costs": [spread], "rates": rates, "wash_sale": rule,
                          "estimator": estimator, "periods_per_year": ppy}
            unaware = OptimalRebalancer(costs=[spread], horizon=1.0 / ppy)
            tax = TaxCost(rates, wash_sale=rule)
            aware = TaxAwareRebalancer(OptimalRebalancer(costs=[spread, tax],
                                                         horizon=1.0 / ppy), tax)
            runs = []
            for kind, reb in (("unaware", unaware), ("aware", aware)):
                for r in tax_frontier(bars, closes, reb, sweeps[kind], kind=kind, risk=risk,
                                      method="fifo", **common):
                    print(f"  {freq} wash {rule_name:<3} {r.name:<16} TE {r.tracking_error:7.2%}"
                          f"  after-tax {r.after_tax_return:7.2%}  pre-tax "
                          f"{r.pre_tax_return:7.2%}  tax {r.tax:13,.0f}  washes "
                          f"{r.n_wash_sales:5d}  {r.seconds:6.1f} s", flush=True)
                    runs.append(r)
            table = frontier_table(runs)
            label = f"{'monthly' if freq == 'M' else 'weekly'}, wash-sale {rule_name}"
            print(f"\n{label}: constraints per run:")
            for kind, grp in table.groupby("kind"):
                print(f"  {kind}: constraints {sorted(set(grp['constraints']))}; "
                      f"planning costs {sorted(set(grp['planning_costs']))}")
            res = {"table": table}
            with pd.option_context(*[x for kv in fmt.items() for x in kv]):
                at = [float(x) for x in args.at.split(",")]
                t = table.assign(neg_drag=-table["tax_drag"])
                for how in ("efficient", "sweep"):
                    for value in ("after_tax_return", "after_tax_liquidated",
                                  "pre_tax_return", "neg_drag"):
                        grid = equal_te_tax_alpha(t, value=value, points=args.points,
                                                  frontier=how)
                        fixed = equal_te_tax_alpha(t, value=value, frontier=how, at=at)
                        res[f"{how} {value}"] = grid
                        res[f"{how} {value} at"] = fixed
                        m = mean_tax_alpha(grid)
                        res[f"mean {how} {value}"] = m
                        pts = ", ".join(f"{x:.2%}: {a:.2%}" for x, a in
                                        zip(fixed["tracking_error"], fixed["tax_alpha"]))
                        if value == "after_tax_return":
                            print(f"\n{label}, frontier={how}: tax alpha at equal TE "
                                  f"(after-tax return), mean {m:.2%}/yr over the range")
                            print(grid)
                        print(f"  {value:<21} aware - unaware: mean {m:6.2%}/yr; at TE "
                              f"{pts}")
                print("  (neg_drag: tax drag saved = the tax part; along the sweep, "
                      "pre_tax_return + neg_drag = after_tax_return)")
                own = tax_alpha_at_own_te(table)
                res["own"] = own
                print(f"\n{label}: each tax-aware run against the unaware frontier at its TE")
                print(own)
            out[label] = res
    print()
    for k, v in ANCHORS.items():
        print(f"  anchor: {k}: {v:.2%}/yr")
    print(f"  load avg {os.getloadavg()}")
    if args.json:
        dump = {k: {n: (x.to_dict() if hasattr(x, "to_dict") else x) for n, x in v.items()}
                for k, v in out.items()}
        with open(args.json, "w") as fh:
            json.dump(dump, fh, default=str, indent=1)
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
