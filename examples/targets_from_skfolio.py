"""Targets from skfolio, three rebalancers, one book: what each trades and pays.

Real data: skfolio's S&P 500 prices (shipped in its wheel). A $1M book was set to a
minimum-variance portfolio a quarter ago and drifted; today's minimum-variance target
comes from skfolio. Run: ``python examples/targets_from_skfolio.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skfolio.optimization import MeanRisk

from rebalopt import BandRebalancer, Commission, NaiveRebalancer, PortfolioState, Spread
from rebalopt.adapters import to_target_weights
from rebalopt.datasets import load_demo_prices
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.risk import sample_covariance


def main() -> None:
    prices = load_demo_prices()
    returns = prices.pct_change().iloc[1:]
    then, now = prices.index[-64], prices.index[-1]

    old = to_target_weights(MeanRisk().fit(returns.loc[:then].iloc[-252:]))
    new = to_target_weights(MeanRisk().fit(returns.iloc[-252:]))

    equity = 1_000_000.0
    holdings = np.floor(equity * old / prices.loc[then])
    cash = equity - float((holdings * prices.loc[then]).sum())
    state = PortfolioState(holdings, cash, prices.loc[now])

    costs = [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=5.0)]
    risk = sample_covariance(returns.iloc[-252:])
    rebalancers = {
        "naive": NaiveRebalancer(costs=costs),
        "band 2%": BandRebalancer(width=0.02, costs=costs),
        "optimal": OptimalRebalancer(risk=risk, costs=costs),
    }
    rows = []
    for name, rebalancer in rebalancers.items():
        plan = rebalancer.plan(state, new)
        d_after = plan.post_weights - state.target_weights(new)
        rows.append({
            "rebalancer": name,
            "trades": plan.n_trades,
            "turnover": plan.turnover,
            "cost ($)": plan.total_cost,
            "TE after (ann.)": risk.tracking_error(d_after, state),
        })
    d_before = state.weights - state.target_weights(new)
    print(f"tracking error before: {risk.tracking_error(d_before, state):.3%} (annualized)")
    print(pd.DataFrame(rows).set_index("rebalancer").round(5).to_string())


if __name__ == "__main__":
    main()
