"""TaxCost inside the program: every solver of the chain reads the same aux block.

The tax term is an auxiliary block (lot-level sells) declared once and written by the
one builder for every backend. Oracles: a second solver (SCS) and the cvxpy program
against Clarabel's direct path, and the numeric face ``TaxCost.evaluate`` at the answer.
"""

import numpy as np
import pandas as pd
import pytest

from rebalopt import OptimalRebalancer, Spread
from rebalopt.costs.tax import TaxCost
from rebalopt.errors import RebalanceError
from rebalopt.risk import Identity
from rebalopt.state import PortfolioState
from rebalopt.taxes import Lot, TaxLots, TaxRates

D = pd.Timestamp
RATES = TaxRates(short_term=0.37, long_term=0.20)


def _state():
    lots = {
        "AAA": (Lot("A1", 300, 40.0, D("2020-01-15")), Lot("A2", 200, 95.0, D("2024-03-01"))),
        "BBB": (Lot("B1", 400, 20.0, D("2019-05-01")),),
        "CCC": (Lot("C1", 100, 70.0, D("2024-02-01")),),
    }
    tl = TaxLots(lots, as_of="2024-06-03")
    hold = {a: tl.shares(a) for a in tl}
    prices = {"AAA": 80.0, "BBB": 50.0, "CCC": 60.0}
    return PortfolioState(hold, 5_000.0, prices, lots=tl)


TARGETS = {"AAA": 0.35, "BBB": 0.15, "CCC": 0.45}


def _rebalancer(solver, **kw):
    tax = TaxCost(RATES, **kw)
    return OptimalRebalancer(risk=Identity(), costs=[Spread(10.0), tax], risk_aversion=50.0,
                             horizon=1.0, solver=solver), tax


def test_second_solver_reads_the_same_aux_block():
    state = _state()
    clarabel, tax = _rebalancer("CLARABEL")
    scs, _ = _rebalancer("SCS")
    a = clarabel.solve(state, TARGETS)
    b = scs.solve(state, TARGETS)
    assert a.solver == "CLARABEL" and b.solver == "SCS"
    assert np.abs(a.z - b.z).max() < 1e-4
    assert a.objective == pytest.approx(b.objective, abs=1e-6)
    # the tax in the objective is the numeric face's minimum-tax allocation
    shares = a.z * state.equity / state.prices
    tax_cash = float(tax.evaluate(shares, state).sum())
    assert a.terms["cost"] >= tax_cash / state.equity - 1e-7


def test_tax_makes_the_program_sell_less_of_the_big_gain():
    state = _state()
    taxed, _ = _rebalancer("CLARABEL")
    plain = OptimalRebalancer(risk=Identity(), costs=[Spread(10.0)], risk_aversion=50.0,
                              horizon=1.0)
    z_tax = taxed.solve(state, TARGETS).z
    z_plain = plain.solve(state, TARGETS).z
    i = list(state.assets).index("BBB")  # a long-term gain of 30/share: sold less when taxed
    assert z_plain[i] < 0 and z_tax[i] > z_plain[i] + 1e-4


def test_cvxpy_backend_reads_the_same_tax_block():
    state = _state()
    direct, _ = _rebalancer("CLARABEL")
    tax = TaxCost(RATES)
    ref = OptimalRebalancer(risk=Identity(), costs=[Spread(10.0), tax], risk_aversion=50.0,
                            horizon=1.0, backend="cvxpy")
    a = direct.solve(state, TARGETS)
    b = ref.solve(state, TARGETS)
    assert np.abs(a.z - b.z).max() < 1e-6
    assert a.objective == pytest.approx(b.objective, rel=1e-7, abs=1e-10)


def test_impossible_gains_budget_is_a_typed_error():
    # every lot but A2 and C1 holds a gain; A2 and C1 together can realize at most
    # 200 x 15 + 100 x 10 = 4,000.00 of losses, so net gains <= -10,000.00 cannot hold
    state = _state()
    opt, _ = _rebalancer(["CLARABEL", "SCS"], gains_budget=-10_000.0)
    with pytest.raises(RebalanceError, match="infeasible"):
        opt.solve(state, TARGETS)
