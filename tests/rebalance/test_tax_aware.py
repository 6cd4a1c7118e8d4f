"""TaxAwareRebalancer on the one builder: properties of its plans (hypothesis)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalopt.costs import Spread
from rebalopt.costs.tax import TaxCost
from rebalopt.errors import InputError
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.rebalance.tax_aware import TaxAwareRebalancer
from rebalopt.risk import Identity
from rebalopt.state import PortfolioState
from rebalopt.taxes import Lot, TaxLots, TaxRates, realize, select_lots

AS_OF = pd.Timestamp("2024-06-03")
RATES = TaxRates(short_term=0.40, long_term=0.20)
TICKERS = ["A", "B", "C", "D", "E"]


def rebalancer(tax, gamma=12.0, **kw):
    inner = OptimalRebalancer(risk=Identity(), costs=[Spread(5.0), tax], risk_aversion=gamma,
                              horizon=1.0)
    return TaxAwareRebalancer(inner, tax, **kw)


@st.composite
def books(draw):
    n = draw(st.integers(2, 5))
    lots, prices = {}, {}
    for a in TICKERS[:n]:
        prices[a] = draw(st.sampled_from([50.0, 80.0, 100.0, 120.0]))
        k = draw(st.integers(0, 3))
        lots[a] = [Lot(f"{a}{j}", draw(st.integers(5, 200)), draw(st.floats(40.0, 160.0)),
                       AS_OF - pd.Timedelta(days=draw(st.integers(1, 900))))
                   for j in range(k)]
    loss_sales = {a: [AS_OF - pd.Timedelta(days=draw(st.integers(1, 60)))]
                  for a in TICKERS[:n] if draw(st.booleans())}
    tl = TaxLots(lots, as_of=AS_OF, loss_sales=loss_sales)
    state = PortfolioState({a: tl.shares(a) for a in tl}, draw(st.floats(100.0, 20_000.0)),
                           prices, lots=tl)
    raw = np.array([draw(st.floats(0.0, 1.0)) for _ in range(n)])
    targets = pd.Series(0.98 * raw / max(raw.sum(), 1e-9), index=TICKERS[:n])
    return state, targets


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(books(), st.booleans())
def test_plans_make_no_wash_sale_and_report_the_lots_gains(book, rule_on):
    state, targets = book
    tax = TaxCost(RATES) if rule_on else TaxCost(RATES, wash_sale=None)
    plan = rebalancer(tax).plan(state, targets)
    sales = plan.info["tax_lots"]
    sold_at_loss = set(sales.loc[sales["gain"] < 0, "asset"])
    bought = {str(a) for a, q in zip(state.assets, plan.trades, strict=True) if q > 1e-6}
    assert not (sold_at_loss & bought)                 # nothing sold at a loss is bought
    if rule_on:                                        # nor anything sold at a loss lately
        restricted = {a for a, ds in state.lots.loss_sales.items()
                      if any((AS_OF - d).days <= 30 for d in ds)}
        assert not (restricted & bought)
    # the plan's gains = the gains recomputed from the lots it names (relief functions)
    for asset, grp in sales.groupby("asset"):
        i = state.index_of(asset)
        assert grp["shares"].sum() == pytest.approx(-plan.trades[i], rel=1e-9, abs=1e-9)
        lots = state.lots[asset]
        picks = select_lots(lots, grp["shares"].sum(),
                            dict(zip(grp["lot_id"], grp["shares"], strict=True)))
        recs = realize(lots, picks, state.prices[i], AS_OF)
        assert grp["gain"].sum() == pytest.approx(sum(r.gain for r in recs), abs=1e-6)
    assert plan.info["tax"]["realized_gain"] == pytest.approx(sales["gain"].sum())


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(books())
def test_zero_rates_give_the_tax_unaware_plan(book):
    state, targets = book
    state = PortfolioState(dict(zip(state.assets, state.holdings, strict=True)), state.cash,
                           dict(zip(state.assets, state.prices, strict=True)),
                           lots=state.lots.on(AS_OF, loss_sales={}))
    aware = rebalancer(TaxCost(TaxRates(0.0, 0.0))).plan(state, targets)
    plain = OptimalRebalancer(risk=Identity(), costs=[Spread(5.0)], risk_aversion=12.0,
                              horizon=1.0).plan(state, targets)
    unit = state.prices / state.equity
    assert np.abs((aware.trades - plain.trades) * unit).max() < 1e-6


def _book():
    lots = {"LOSER": (Lot("l1", 300, 150.0, pd.Timestamp("2023-01-03")),),
            "PEER": (Lot("p1", 100, 90.0, pd.Timestamp("2020-01-02")),)}
    tl = TaxLots(lots, as_of=AS_OF)
    return PortfolioState({"LOSER": 300, "PEER": 100}, 5_000.0,
                          {"LOSER": 100.0, "PEER": 100.0, "SUB": 100.0}, lots=tl)


def test_harvests_a_loss_and_keeps_exposure_with_a_substitute():
    state = _book()                       # LOSER: a 1/3 loss on 300 shares, at its target
    targets = pd.Series({"LOSER": 0.6, "PEER": 0.2, "SUB": 0.2 * 0.9})
    plain = rebalancer(TaxCost(TaxRates(0.0, 0.0)), gamma=1.0).plan(state, targets)
    aware = rebalancer(TaxCost(RATES), gamma=1.0).plan(state, targets)
    i = state.index_of("LOSER")
    assert aware.trades[i] < plain.trades[i] - 10          # sells LOSER to harvest
    assert aware.info["tax"]["tax"] < 0                    # the harvested loss saves tax
    assert "LOSER" in aware.info["tax"]["harvest_candidates"]
    # a month later within the window: LOSER restricted, its shortfall goes to SUB
    later = state.lots.on(AS_OF + pd.Timedelta(days=10),
                          loss_sales={"LOSER": [AS_OF]})
    s2 = state.replace(lots=later)
    plan = rebalancer(TaxCost(RATES), substitutes={"LOSER": "SUB"}).plan(
        s2, pd.Series({"LOSER": 0.9, "PEER": 0.05, "SUB": 0.0}))
    assert plan.trades[i] <= 1e-9 and plan.info["tax"]["substituted"] == ["LOSER"]
    assert plan.trades[s2.index_of("SUB")] > 0


@pytest.mark.parametrize("value", ["no", 0, None])
def test_harvest_switch_must_be_a_bool(value):
    """``harvest="no"`` used to be truthy: the harvesting solve ran. Now an InputError."""
    from rebalopt.errors import InputError

    state = _book()
    targets = pd.Series({"LOSER": 0.6, "PEER": 0.2, "SUB": 0.18})
    with pytest.raises(InputError) as e:
        rebalancer(TaxCost(RATES), gamma=1.0, harvest=value).plan(state, targets)
    assert e.value.field == "TaxAwareRebalancer.harvest"
    # the switch off is honoured: no harvesting solve, so no harvest candidates
    off = rebalancer(TaxCost(RATES), gamma=1.0, harvest=False).plan(state, targets)
    assert off.info["tax"]["harvest_candidates"] == []


def test_a_restricted_substitute_is_reported_not_silently_used():
    """LOSER and its substitute SUB both sold at a loss inside the window: neither can be
    bought. Before, LOSER's shortfall moved to SUB (which the plan cannot buy either), the
    weight stayed in cash and info said "substituted". Oracle: the same plan with no
    substitute at all, and the wash-sale rule (no buy of either)."""
    lots = {"LOSER": (Lot("l1", 300, 150.0, pd.Timestamp("2023-01-03")),),
            "SUB": (Lot("s1", 50, 150.0, pd.Timestamp("2023-01-03")),),
            "PEER": (Lot("p1", 100, 90.0, pd.Timestamp("2020-01-02")),)}
    state = PortfolioState({"LOSER": 300, "SUB": 50, "PEER": 100}, 5_000.0,
                           {"LOSER": 100.0, "PEER": 100.0, "SUB": 100.0},
                           lots=TaxLots(lots, as_of=AS_OF))
    later = state.lots.on(AS_OF + pd.Timedelta(days=10),
                          loss_sales={"LOSER": [AS_OF], "SUB": [AS_OF]})
    s2 = state.replace(lots=later)
    targets = pd.Series({"LOSER": 0.8, "PEER": 0.05, "SUB": 0.1})
    plan = rebalancer(TaxCost(RATES), substitutes={"LOSER": "SUB"}).plan(s2, targets)
    tax = plan.info["tax"]
    assert tax["substituted"] == [] and "LOSER" in tax["not_substituted"]
    assert "SUB" in tax["not_substituted"]["LOSER"]
    for a in ("LOSER", "SUB"):
        assert plan.trades[s2.index_of(a)] <= 1e-9  # the rule holds: neither is bought
    alone = rebalancer(TaxCost(RATES)).plan(s2, targets)
    np.testing.assert_allclose(plan.trades, alone.trades, atol=1e-9)


def test_the_tax_must_be_the_wrapped_rebalancers_own():
    # AAA 100 @ 10 bought at 1 this year: 9.00 of short-term gain a share, 3.60 of tax
    lots = TaxLots({"AAA": [Lot("a1", 100, 1.0, pd.Timestamp("2024-01-02"))],
                    "BBB": [Lot("b1", 100, 30.0, pd.Timestamp("2020-01-02"))]}, as_of=AS_OF)
    state = PortfolioState({"AAA": 100.0, "BBB": 100.0}, 0.0, {"AAA": 10.0, "BBB": 20.0},
                           lots=lots)
    targets = {"AAA": 0.2, "BBB": 0.8}
    tax = TaxCost(RATES)
    # not in the costs: the plan ignored the tax (sold 40 AAA) and info["tax"] reported
    # its 144.00 (40 x 9.00 x 0.40) as if the plan had weighed it
    with pytest.raises(InputError, match="do not include tax") as e:
        TaxAwareRebalancer(OptimalRebalancer(risk=Identity(), costs=[Spread(5.0)]), tax
                           ).plan(state, targets)
    assert e.value.field == "tax"
    # another TaxCost: the harvest was set on the wrapper's, the plan read its own, and
    # info["tax"]["harvest_candidates"] named BBB while nothing was sold
    with pytest.raises(InputError, match="another TaxCost"):
        TaxAwareRebalancer(OptimalRebalancer(risk=Identity(), costs=[TaxCost(RATES)]), tax
                           ).plan(state, targets)
    # the model itself, also inside a whole-share stage's relaxation
    from rebalopt.rebalance.integer import IntegerRebalancer

    inner = OptimalRebalancer(risk=Identity(), costs=[Spread(5.0), tax], horizon=1.0)
    for reb in (inner, IntegerRebalancer(relaxation=inner)):
        plan = TaxAwareRebalancer(reb, tax).plan(state, targets)
        sold = plan.info["tax_lots"]
        # the reported tax is the rates on the lots sold, recomputed by hand
        by_hand = sum((10.0 - 1.0) * q * 0.40 if a == "AAA" else (20.0 - 30.0) * q * 0.20
                      for a, q in zip(sold["asset"], sold["shares"], strict=True)
                      if a == "AAA" or "BBB" in plan.info["tax"]["harvest_candidates"])
        assert plan.info["tax"]["tax"] == pytest.approx(by_hand, abs=1e-6)


def _restricted_book(seed: int) -> tuple[PortfolioState, dict[str, float]]:
    """Three held assets with lots, one unheld asset sold at a loss 9 days ago (a
    wash-sale window: no purchase), random prices and targets."""
    rng = np.random.default_rng(seed)
    px = dict(zip(["AAA", "BBB", "CCC", "DDD"], np.round(rng.uniform(5, 60, 4), 2),
                  strict=True))
    held = {a: float(rng.integers(20, 200)) for a in ("AAA", "BBB", "CCC")}
    lots = TaxLots({a: [Lot(f"{a}1", n, float(np.round(px[a] * rng.uniform(0.6, 1.4), 2)),
                            "2021-03-01")] for a, n in held.items()},
                   as_of="2024-06-03", loss_sales={"DDD": ["2024-05-25"]})
    state = PortfolioState(held, 2_000.0, px, lots=lots)
    w = rng.dirichlet(np.ones(4)) * 0.95
    return state, dict(zip(px, w, strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_whole_shares_keep_the_tax_blocks_rows(seed):
    """The tax block's rows (no purchase in a wash-sale window, no sale beyond the
    lots) hold in whole shares too: the integer stage prices the tax through its
    numeric face, so it must keep its lot search inside the rows' bounds. It bought
    180 shares of an asset in its wash-sale window that the fractional plan left at
    0, and inside TaxAwareRebalancer that plan was then refused. Oracle: the rows,
    checked on the plan's shares, and the whole-share plan of the same program with
    the restriction written as a constraint instead."""
    from rebalopt.constraints import Restricted
    from rebalopt.rebalance.integer import IntegerRebalancer

    state, targets = _restricted_book(seed)
    tax = TaxCost(TaxRates(0.4, 0.2))
    inner = OptimalRebalancer(risk=Identity(), costs=[Spread(5.0), tax], risk_aversion=1e6,
                              horizon=1.0)
    plan = IntegerRebalancer(relaxation=inner).plan(state, targets)
    trades = pd.Series(plan.trades, index=state.assets)
    assert trades["DDD"] <= 0.0
    assert (trades + pd.Series(state.holdings, index=state.assets) >= -1e-9).all()
    wrapped = TaxAwareRebalancer(IntegerRebalancer(relaxation=inner), tax).plan(state, targets)
    np.testing.assert_array_equal(wrapped.trades, plan.trades)
    twin = OptimalRebalancer(risk=Identity(), costs=[Spread(5.0), tax], risk_aversion=1e6,
                             horizon=1.0, constraints=[Restricted(no_buy=["DDD"])])
    np.testing.assert_array_equal(IntegerRebalancer(relaxation=twin).plan(state, targets).trades,
                                  plan.trades)
