"""Infeasible constraint sets: named conflicts with the smallest violation, and no order.

Oracle: for every case the conflicting constraints and the amount by which each
must give way *alone* (the others held hard) are worked out by hand in the
case's comment, in the constraint's own units (weights, cash weight, turnover).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rel_helpers import count

from rebalopt import InfeasibleError, PortfolioState, Spread
from rebalopt.backtest import DataFeed, Engine, PortfolioStrategy, SimulatedBroker
from rebalopt.constraints import (
    CashFloor,
    GroupBounds,
    Leverage,
    LongOnly,
    ParticipationLimit,
    Restricted,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.rebalance.optimal import OptimalRebalancer

PRICES = {"A": 10.0, "B": 20.0, "C": 40.0, "D": 50.0}
GROUPS = {"A": "Tech", "B": "Tech", "C": "Fin", "D": "Energy"}
EQUITY = 100_000.0


def account(weights: dict[str, float] | None = None, adv: dict[str, float] | None = None
            ) -> PortfolioState:
    """An account of EQUITY with the given weights held (rest in cash)."""
    weights = weights or {}
    holdings = {a: w * EQUITY / PRICES[a] for a, w in weights.items()}
    cash = EQUITY * (1 - sum(weights.values()))
    return PortfolioState(holdings, cash, PRICES, groups=GROUPS,
                          adv=adv or dict.fromkeys(PRICES, 1e6),
                          volatility=dict.fromkeys(PRICES, 0.02))


@dataclass
class Infeasible:
    id: str
    state: PortfolioState
    constraints: list[Any]
    #: constraint-name prefix -> amount it must give way alone (by hand)
    expect: dict[str, float]
    costs: tuple = ()


SPREAD_BPS = 10.0
h = SPREAD_BPS * 1e-4

CASES = [
    # Tech >= 0.6 and Fin >= 0.6 from cash: 1.2 of equity with 1.0 available.
    # Alone: GroupBounds lowers both floors by v: 1.2 - 2v = 1 -> 0.1; CashFloor
    # borrows 0.2; LongOnly funds by shorting Energy 0.2.
    Infeasible("sectors-cannot-hold-together", account(),
               [LongOnly(), CashFloor(), GroupBounds(lower={"Tech": 0.6, "Fin": 0.6})],
               {"GroupBounds": 0.1, "CashFloor": 0.2, "LongOnly": 0.2}),
    # Cash floor 1.5 of equity from an all-cash book: sum(w) <= -0.5.
    # Alone: CashFloor 0.5; LongOnly lets each of 4 assets go short by v: 4v = 0.5.
    Infeasible("cash-floor-above-equity", account(), [LongOnly(), CashFloor(1.5)],
               {"CashFloor": 0.5, "LongOnly": 0.125}),
    # A held at 0.5, capped at 0.2: selling 0.3 is turnover 0.15 > 0.1.
    # Alone: turnover 0.05; the bound, selling only 0.2, is left at 0.3 -> 0.1.
    Infeasible("turnover-cap-too-small-for-a-bound", account({"A": 0.5}),
               [LongOnly(), CashFloor(), WeightBounds(upper={"A": 0.2}), TurnoverLimit(0.1)],
               {"WeightBounds": 0.1, "TurnoverLimit": 0.05}),
    # Long-only with A forced to <= -0.1: each must give 0.1.
    Infeasible("long-only-with-a-forced-short", account(),
               [LongOnly(), CashFloor(), WeightBounds(upper={"A": -0.1})],
               {"LongOnly": 0.1, "WeightBounds": 0.1}),
    # A held at 0.5 on the no-sell list, capped at 0.2: each must give 0.3.
    Infeasible("no-sell-versus-a-cap", account({"A": 0.5}),
               [LongOnly(), CashFloor(), Restricted(no_sell=["A"]),
                WeightBounds(upper={"A": 0.2})],
               {"Restricted": 0.3, "WeightBounds": 0.3}),
    # A held at 0.5 (5,000 shares), ADV 1,000: 10% participation trades 100 shares
    # = 0.01 of equity; the cap needs a 0.3 sale. Alone: 0.29 each.
    Infeasible("participation-too-small-for-a-bound",
               account({"A": 0.5}, adv={"A": 1_000.0, "B": 1e6, "C": 1e6, "D": 1e6}),
               [LongOnly(), CashFloor(), ParticipationLimit(0.1), WeightBounds(upper={"A": 0.2})],
               {"ParticipationLimit": 0.29, "WeightBounds": 0.29}),
    # A, B >= 0.3 each but gross leverage <= 0.5. Alone: leverage 0.1; both
    # floors lowered by v: 0.6 - 2v = 0.5 -> 0.05.
    Infeasible("leverage-below-required-floors", account(),
               [LongOnly(), CashFloor(), WeightBounds(lower={"A": 0.3, "B": 0.3}),
                Leverage(gross=0.5)],
               {"Leverage": 0.1, "WeightBounds": 0.05}),
    # Margin book: A, B <= -0.2 each (0.4 short) but total short <= 0.1.
    # Alone: ShortLimit 0.3; both caps raised by v: 0.4 - 2v = 0.1 -> 0.15.
    Infeasible("short-limit-versus-forced-shorts", account(),
               [CashFloor(-1.0), ShortLimit(total=0.1), WeightBounds(upper={"A": -0.2, "B": -0.2})],
               {"ShortLimit": 0.3, "WeightBounds": 0.15}),
    # Tech at 0.6 may not trade but must come down to 0.4. Alone: the group
    # bound 0.2; the no-trade rows |z_A|, |z_B| <= v with z_A + z_B = -0.2: 0.1.
    Infeasible("sector-cap-versus-no-trade", account({"A": 0.3, "B": 0.3}),
               [LongOnly(), CashFloor(), GroupBounds(upper={"Tech": 0.4}),
                Restricted(no_trade=["A", "B"])],
               {"GroupBounds": 0.2, "Restricted": 0.1}),
    # (Tech between 0.6 and 0.4, contradictory by itself, is now rejected when the
    # GroupBounds is made: test_rel_bad_inputs.py, case group-bounds-min-above-max.)
    # Tech must be the whole book from cash, with a 10 bps half spread paid from
    # cash. Alone: CashFloor borrows the cost h (buying 1.0 costs h); the group
    # floor gives 1 - 1/(1+h); LongOnly shorts Fin and Energy by v each, with their
    # own spread: 1 - 1 - h + 2v - 2hv = 0 -> v = h / (2 (1 - h)).
    Infeasible("costs-make-a-full-sector-floor-unfundable", account(),
               [LongOnly(), CashFloor(), GroupBounds(lower={"Tech": 1.0})],
               {"CashFloor": h, "GroupBounds": 1 - 1 / (1 + h), "LongOnly": h / (2 * (1 - h))},
               costs=(Spread(SPREAD_BPS),)),
]


def _data(state: PortfolioState) -> dict[str, dict[str, Any]]:
    return {a: {"close": float(state.prices[i]), "adv": float(state.adv[i]),
                "volatility": float(state.volatility[i]), "sector": state.groups[i]}
            for i, a in enumerate(state.assets)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_infeasible_names_conflicts_with_the_smallest_violation(case: Infeasible, make_broker):
    count("infeasible")
    reb = OptimalRebalancer(constraints=case.constraints, costs=list(case.costs))
    targets = {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}
    plans = []
    with pytest.raises(InfeasibleError) as info:
        plans.append(reb.plan(case.state, targets))
    assert plans == []
    got = {c.constraint: c for c in info.value.conflicts}
    named = {}
    for prefix, amount in case.expect.items():
        hits = [k for k in got if k.startswith(prefix)]
        assert hits, f"{prefix} not named in {list(got)}"
        named[prefix] = got[hits[0]]
        # the elastic solves are interior-point accurate: about 1e-4 relative (measured)
        assert got[hits[0]].violation == pytest.approx(amount, rel=5e-4, abs=1e-7), hits[0]
        assert "cannot be fixed alone" not in hits[0]
    assert len(got) == len(case.expect), f"unexpected conflicts: {list(got)}"
    for prefix, c in named.items():
        assert prefix in str(info.value) and np.isfinite(c.violation)
    # the seed's executor path sends nothing (no cancel either)
    broker = make_broker({a: q for a, q in zip(case.state.assets, case.state.holdings) if q},
                         case.state.cash)
    with pytest.raises(InfeasibleError):
        reb.execute(targets, _data(case.state), broker)
    assert broker.calls == []


# ------------------------------------------------------------- backtest policy
def _feed(T: int = 40) -> DataFeed:
    idx = pd.bdate_range("2024-01-01", periods=T)
    rng = np.random.default_rng(3)
    close = pd.DataFrame(50 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, 3)), axis=0)),
                         index=idx, columns=["A", "B", "C"])
    vol = pd.DataFrame(1e6, index=idx, columns=close.columns)
    return DataFeed.from_wide(close, volume=vol)


def _strategy(on_error: str, floor_for: Any) -> tuple[PortfolioStrategy, CashFloor]:
    floor = CashFloor()
    reb = OptimalRebalancer(constraints=[LongOnly(), floor], costs=[Spread(5.0)])
    calls = []

    def optimizer(returns, data, context, broker):
        k = len(calls)
        calls.append(k)
        floor.floor = floor_for(k)  # a Parameter value: the program is not rebuilt
        return {"A": 0.3, "B": 0.3, "C": 0.3} if k % 2 == 0 else {"A": 0.5, "B": 0.2}

    return PortfolioStrategy(reb, optimizer=optimizer, lookback=1, schedule=5,
                             on_error=on_error), floor


def test_backtest_hold_policy_holds_logs_and_counts(caplog):
    count("infeasible")
    strat, _ = _strategy("hold", lambda k: 1.5 if k % 2 else 0.0)  # every other one impossible
    broker = SimulatedBroker(100_000.0, costs=[Spread(5.0)], fractional=True)
    with caplog.at_level(logging.WARNING, logger="rebalopt.backtest.strategy"):
        res = Engine(_feed(), strat, broker, progress=False).run()
    held = [r for r in res.rebalances if r["status"] == "held"]
    ok = [r for r in res.rebalances if r["status"] == "ok"]
    assert len(held) >= 3 and len(ok) >= 3
    assert res.n_held == len(held) == res.metrics()["n_held"]
    for r in held:
        assert r["n_orders"] == 0 and "InfeasibleError" in r["error"] and "CashFloor" in r["error"]
        assert not [o for o in res.orders if o.tag == r["rebalance"]]  # no order at all
    for r in ok:
        assert r["n_orders"] > 0
    assert sum("held" in m for m in caplog.messages) == len(held)
    # nothing traded on a held bar: holdings unchanged across it
    for r in held:
        t = r["bar"]
        np.testing.assert_array_equal(res.holdings[t], res.holdings[t - 1])


def test_backtest_raise_policy_raises_before_any_order():
    count("infeasible")
    strat, _ = _strategy("raise", lambda k: 1.5)
    broker = SimulatedBroker(100_000.0, fractional=True)
    with pytest.raises(InfeasibleError, match="CashFloor"):
        Engine(_feed(), strat, broker, progress=False).run()
    assert broker.orders == [] and broker.fills == []


def test_relaxing_by_the_reported_amount_makes_the_program_feasible():
    count("infeasible")
    state = account({"A": 0.5})
    targets = {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}
    hard = [LongOnly(), CashFloor(), WeightBounds(upper={"A": 0.2})]
    with pytest.raises(InfeasibleError) as info:
        OptimalRebalancer(constraints=[*hard, TurnoverLimit(0.1)]).plan(state, targets)
    (amount,) = [c.violation for c in info.value.conflicts
                 if c.constraint.startswith("TurnoverLimit")]
    plan = OptimalRebalancer(constraints=[*hard, TurnoverLimit(0.1 + amount)]).plan(state,
                                                                                   targets)
    assert plan.turnover <= 0.1 + amount + 1e-7
