"""Documented choices of issue 13 (not errors): unlabeled assets under group bounds,
the one rounding tolerance on target sums. Checked from the user's side with
independent oracles (weights recomputed from shares and prices here)."""

from __future__ import annotations

import numpy as np
import pytest
from rel_helpers import count

from rebalopt import (
    BandRebalancer,
    InputError,
    NaiveRebalancer,
    PortfolioState,
    RebalanceConfig,
)
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly
from rebalopt.rebalance import TARGET_SUM_TOL
from rebalopt.rebalance.batch import rebalance_many
from rebalopt.rebalance.optimal import OptimalRebalancer

PRICES = {"A": 10.0, "B": 20.0, "C": 40.0, "D": 25.0}


def _post_weights(plan, state) -> dict[str, float]:
    """Post-trade weights from shares and prices (not from the plan's own weights)."""
    value = (state.holdings + plan.trades) * state.prices
    return dict(zip(state.assets, value / state.equity))


# ------------------------------------------------------------ item 1: unlabeled assets
def _tech_state(groups):
    return PortfolioState({"A": 100.0}, 10_000.0, PRICES, groups=groups)


TARGETS = {"A": 0.3, "B": 0.3, "C": 0.2, "D": 0.2}  # Tech (A, B) wants 0.6


def test_unlabeled_asset_under_a_group_cap_is_an_error_by_default():
    """The issue's case: B is a Tech stock missing from the sector map."""
    count("bad_input")
    state = _tech_state({"A": "Tech", "C": "Energy", "D": "Energy"})
    reb = OptimalRebalancer(constraints=[LongOnly(), CashFloor(),
                                         GroupBounds.from_text("Tech <= 0.4")])
    with pytest.raises(InputError) as info:
        reb.plan(state, TARGETS)
    assert (info.value.asset, info.value.field) == ("B", "GroupBounds")
    assert "Tech <= 0.4" in str(info.value) and "unlabeled" in str(info.value)


def test_unlabeled_ignore_is_the_explicit_old_behaviour():
    count("bad_input")
    state = _tech_state({"A": "Tech", "C": "Energy", "D": "Energy"})
    reb = OptimalRebalancer(constraints=[LongOnly(), CashFloor(), GroupBounds.from_text(
        "Tech <= 0.4", unlabeled="ignore")])
    w = _post_weights(reb.plan(state, TARGETS), state)
    assert w["A"] <= 0.4 + 1e-6  # labelled Tech is capped ...
    assert w["B"] == pytest.approx(0.3, abs=1e-3)  # ... B is not in any group (as asked)


def test_unlabeled_own_group_gets_the_bound_every_group_gets():
    count("bad_input")
    state = _tech_state({"A": "Tech", "C": "Energy", "D": "Energy"})
    targets = {"A": 0.1, "B": 0.6, "C": 0.15, "D": 0.15}
    reb = OptimalRebalancer(constraints=[LongOnly(), CashFloor(),
                                         GroupBounds(upper=0.35, unlabeled="own group")])
    plan = reb.plan(state, targets)
    w = _post_weights(plan, state)
    assert w["B"] <= 0.35 + 1e-6  # B alone is a group capped like every group
    assert w["C"] + w["D"] <= 0.35 + 1e-6 and w["A"] <= 0.35 + 1e-6
    assert w["B"] == pytest.approx(0.35, abs=1e-4)  # the cap binds (target 0.6)


def test_unlabeled_flat_asset_counts_too():
    """An unlabeled asset with no holding and no target could still be bought into."""
    count("bad_input")
    state = _tech_state({"A": "Tech", "B": "Tech", "C": "Energy"})  # D unlabeled, flat
    reb = OptimalRebalancer(constraints=[LongOnly(), GroupBounds(upper={"Tech": 0.5})])
    with pytest.raises(InputError) as info:
        reb.plan(state, {"A": 0.3, "B": 0.3, "C": 0.2})
    assert (info.value.asset, info.value.field) == ("D", "GroupBounds")


# ------------------------------------------- item 12: one tolerance on target sums
RAW = {"A": 0.23160063354908356, "B": 0.49807811517677786, "C": 0.27021537038875604,
       "D": 0.00010588088538266464}


def _clean_weights() -> dict[str, float]:
    """PyPortfolioOpt's ``clean_weights`` of RAW (5 decimals): they sum above 1."""
    base = pytest.importorskip("pypfopt.base_optimizer")
    opt = base.BaseOptimizer(4, list(RAW))
    opt.set_weights(RAW)
    w = dict(opt.clean_weights(rounding=5))
    assert 1.0 < sum(w.values()) <= 1.0 + TARGET_SUM_TOL  # the case of the issue
    return w


REBALANCERS = {
    "naive": lambda: NaiveRebalancer(RebalanceConfig(min_trade_value=0.0, min_weight_change=0.0,
                                                     fractional=True)),
    "band": lambda: BandRebalancer(width=0.0, config=RebalanceConfig(
        min_trade_value=0.0, min_weight_change=0.0, fractional=True)),
    "optimal": lambda: OptimalRebalancer(),
}


@pytest.mark.parametrize("kind", list(REBALANCERS))
def test_clean_weights_rounding_is_accepted_by_every_rebalancer_and_entry_point(
        kind, make_broker):
    count("bad_input")
    targets = _clean_weights()
    state = PortfolioState({"A": 100.0}, 50_000.0, PRICES)
    plan = REBALANCERS[kind]().plan(state, targets)
    # never more invested than the equity: cash stays >= 0 (no costs here)
    assert plan.post_cash >= -1e-6 * state.equity
    if kind != "optimal":  # the documented scale to the cap, visible on the plan
        assert plan.info["target_scale"] == pytest.approx(1 / sum(targets.values()), rel=1e-12)
        assert float(np.sum(plan.targets)) <= 1.0 + 1e-12
    broker = make_broker({"A": 100.0}, 50_000.0)
    orders = REBALANCERS[kind]().execute(targets, {a: {"close": p} for a, p in PRICES.items()},
                                         broker)
    assert orders and len(broker.calls) >= 1
    res = rebalance_many([("x", state, targets)], REBALANCERS[kind]())
    assert res.ok, res.errors


@pytest.mark.parametrize("kind", list(REBALANCERS))
def test_above_the_tolerance_is_an_error_everywhere(kind):
    count("bad_input")
    state = PortfolioState({"A": 100.0}, 50_000.0, PRICES)
    over = {"A": 0.5, "B": 0.3, "C": 0.2 + 2 * TARGET_SUM_TOL}
    with pytest.raises(InputError) as info:
        REBALANCERS[kind]().plan(state, over)
    assert info.value.field == "target weight" and "tolerance" in str(info.value)
    res = rebalance_many([("x", state, over)], REBALANCERS[kind]())
    assert list(res.errors) == ["x"] and res.errors["x"].type == "InputError"


@pytest.mark.parametrize("method", ["naive", "band", "optimal"])
def test_cli_accepts_clean_weights_within_the_tolerance_and_refuses_above(tmp_path, method):
    """The CLI entry point, same rule: a targets file with PyPortfolioOpt's rounding."""
    from rebalopt.cli import main

    count("bad_input")
    w = _clean_weights()
    files = {"holdings": "ticker,shares\nA,100\n",
             "prices": "ticker,price\n" + "".join(f"{a},{p}\n" for a, p in PRICES.items()),
             "config": f'[account]\ncash = 50000.0\n\n[rebalancer]\nmethod = "{method}"\n'}
    for name, text in files.items():
        (tmp_path / f"{name}.{'toml' if name == 'config' else 'csv'}").write_text(text)

    def run(weights: dict[str, float], out: str) -> int:
        (tmp_path / "targets.csv").write_text(
            "ticker,weight\n" + "".join(f"{a},{v!r}\n" for a, v in weights.items()))
        return main(["rebalance", "--holdings", str(tmp_path / "holdings.csv"),
                     "--targets", str(tmp_path / "targets.csv"),
                     "--prices", str(tmp_path / "prices.csv"),
                     "--config", str(tmp_path / "config.toml"), "--out", str(tmp_path / out)])

    assert run(w, "ok.csv") == 0 and (tmp_path / "ok.csv").exists()
    over = {"A": 0.5, "B": 0.3, "C": 0.2 + 2 * TARGET_SUM_TOL}
    assert run(over, "no.csv") != 0 and not (tmp_path / "no.csv").exists()
