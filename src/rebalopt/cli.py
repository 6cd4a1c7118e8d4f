"""Command line: ``rebalopt demo`` (more subcommands arrive with the integrations)."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from rebalopt import Commission, MarketImpact, NaiveRebalancer, PortfolioState, RebalanceConfig
    from rebalopt import Spread
    from rebalopt.datasets import load_demo_prices

    prices = load_demo_prices()
    window = prices.iloc[-253:]
    returns = window.pct_change().dropna()
    from skfolio.optimization import MeanRisk

    model = MeanRisk().fit(returns)  # minimum variance, long only
    targets = pd.Series(model.weights_, index=returns.columns)
    # A book set to the targets a quarter ago, drifted with prices since.
    then, now = prices.iloc[-64], prices.iloc[-1]
    equity = 10_000_000.0
    holdings = np.floor(equity * targets / then)
    cash = equity - float((holdings * then).sum())
    vol = returns.std()
    adv = pd.Series(5e6, index=prices.columns)  # shares/day; the demo data has no volume
    state = PortfolioState(holdings, cash, now, adv=adv, volatility=vol)
    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0), MarketImpact()]
    plan = NaiveRebalancer(RebalanceConfig(min_weight_change=0.0), costs=costs).plan(state, targets)
    print(plan.summary())
    print(plan.preview().round(6).to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rebalopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="naive vs optimal rebalancing on real prices")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
