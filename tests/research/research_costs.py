"""Cost models shared by the research tests (a plain module: never import a conftest)."""

from __future__ import annotations

from rebalopt.costs import Commission, MarketImpact, Spread


def real_costs() -> list:
    """Commission $0.005/share with a $1 minimum, 3 bps half spread, 3/2 impact."""
    return [Commission(per_share=0.005, minimum=1.0), Spread(half_spread_bps=3.0),
            MarketImpact(coef=1.0)]
