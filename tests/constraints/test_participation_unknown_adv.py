"""ParticipationLimit: an asset with no known ADV cannot trade (its cap is 0)."""

from __future__ import annotations

import numpy as np

from rebalopt import LongOnly, OptimalRebalancer, ParticipationLimit, PortfolioState


def test_unknown_adv_means_no_trade_in_that_asset_only() -> None:
    # C has no ADV (a fresh listing): 10% of an unknown volume is no volume.
    state = PortfolioState({"A": 100.0}, 10_000.0, {"A": 100.0, "B": 50.0, "C": 20.0},
                           adv={"A": 1e5, "B": 1e5})
    limit = ParticipationLimit(0.1)
    np.testing.assert_allclose(limit.caps(state), [0.1 * 1e5 * 100 / 20_000,
                                                   0.1 * 1e5 * 50 / 20_000, 0.0])
    plan = OptimalRebalancer(constraints=[LongOnly(), limit]).plan(
        state, {"A": 0.3, "B": 0.3, "C": 0.3})
    assert plan.trades[2] == 0.0
    assert plan.trades[1] > 0 and plan.trades[0] < 0  # the others still trade
