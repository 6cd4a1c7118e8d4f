"""The builder's kept structure (ProgramTemplate): a builder that has assembled other
states answers, for each state, bit for bit the program assembled from scratch by the
row blocks one at a time (the reference below, written from :mod:`rebalopt.program.blocks`
and :meth:`MatrixLayout.resolve`, the way the builder assembled every state before it
kept its structure), including soft and elastic slacks, frozen assets, a cost model's
own block, a holding block and a user constraint whose columns move with the state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalopt import PortfolioState
from rebalopt.constraints import (
    CashFloor,
    Constraint,
    GroupBounds,
    Point,
    ShortLimit,
    TurnoverLimit,
    WeightBounds,
)
from rebalopt.costs import BorrowCost, MarketImpact, Spread
from rebalopt.program import MatrixRows
from rebalopt.program.blocks import (
    append_abs_rows,
    append_constraint_rows,
    append_holding_rows,
    append_power_rows,
    append_resolved,
    append_risk_rows,
    append_slack_floor,
)
from rebalopt.program.builder import ELASTIC_CAP, SCALE, ProgramBuilder

N, K = 9, 2
NAMES = [f"A{i}" for i in range(N)]
INDEX = pd.Index(NAMES, dtype=object, name="asset")
GROUPS = np.array([f"g{i % 3}" for i in range(N)], dtype=object)


@dataclass
class TopCap(Constraint):
    """A user constraint whose column moves with the state: the asset held most
    (by pre-trade weight) ends at most ``cap``; also a row on cash and cost."""

    cap: float = 0.3
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None

    def rows(self, layout, state, targets):
        i = int(np.argmax(state.weights))
        return [MatrixRows.dense_rows(layout.w[[i]], [[1.0]], [self.cap]),
                MatrixRows.dense_rows(np.r_[layout.cash, layout.cost], [[-1.0, 2.0]], [0.5])]

    def evaluate(self, point: Point):
        i = int(np.argmax(point.state.weights))
        return np.array([point.w[i], 0.0]), np.array([self.cap, 0.5])


@dataclass
class SpreadViaAux(Spread):
    """A half spread with its own block ``u >= |z|`` (a cost model's auxiliary rows)."""

    def terms(self, state):
        from rebalopt.program import AuxTerm, CostTerms

        n = state.n

        def rows(layout):
            u = layout.aux((id(self), "u"), n)
            i = np.arange(n)
            return [MatrixRows(np.r_[i, i, n + i, n + i], np.r_[layout.z, u, layout.z, u],
                               np.r_[np.ones(n), -np.ones(n), -np.ones(n), -np.ones(n)],
                               np.zeros(2 * n), main=False)]

        return CostTerms(aux=(AuxTerm((id(self), "u"), n,
                                      np.full(n, self.half_spread_bps * 1e-4), rows, True),))


def _state(seed: int) -> tuple[PortfolioState, np.ndarray]:
    rng = np.random.default_rng(seed)
    prices = rng.uniform(10.0, 100.0, N)
    equity = float(rng.uniform(1e5, 1e6))
    w0 = rng.dirichlet(np.ones(N)) * rng.uniform(0.8, 1.0)
    w0[rng.integers(N)] *= -0.5  # one short
    holdings = np.round(w0 * equity / prices)
    state = PortfolioState.from_arrays(
        INDEX, holdings, equity - float(holdings @ prices), prices,
        adv=rng.uniform(1e4, 1e6, N), volatility=rng.uniform(0.01, 0.03, N), groups=GROUPS)
    return state, rng.dirichlet(np.ones(N)) * 0.95


COSTS = [Spread(5.0), MarketImpact(coef=1.0), BorrowCost(rate=0.03), SpreadViaAux(2.0)]
CONSTRAINTS = [ShortLimit(total=0.2), CashFloor(), WeightBounds(upper=0.4, soft=True),
               TurnoverLimit(cap=0.6), GroupBounds(upper=0.1, lower=-0.1, relative=True),
               TopCap()]


def reference(builder: ProgramBuilder, state, targets, G, s, gamma, T, frozen,
              all_frozen_rows, caps, varying):
    """The program's rows assembled block by block from scratch (no kept structure)."""
    n, L = builder.n, builder.layout
    w0 = state.weights
    d0 = w0 - targets
    root = np.sqrt(SCALE * 0.5 * gamma * T)
    s_sc, G_sc = root * s, root * G
    builder._set_cost(state)
    R, C, V, B, F, BF = [], [], [], [], [], []
    Fo, BFo = (F, BF) if varying else (None, None)
    r0 = append_risk_rows(L.z, builder.y, builder.e, G_sc, s_sc, d0, 0, R, C, V, B, Fo, BFo)
    mask = np.zeros(n, dtype=bool) if frozen is None else frozen
    if all_frozen_rows:
        R.append(r0 + np.arange(n))
        C.append(L.z)
        V.append(mask.astype(float))
        B.append(np.zeros(n))
        if varying:
            F.append(np.full(n, True))
            BF.append(np.full(n, False))
        r0 += n
    elif mask.any():
        fz = np.flatnonzero(mask)
        R.append(r0 + np.arange(fz.size))
        C.append(L.z[fz])
        V.append(np.ones(fz.size))
        B.append(np.zeros(fz.size))
        if varying:
            F.append(np.full(fz.size, True))
            BF.append(np.full(fz.size, False))
        r0 += fz.size
    r0 = append_abs_rows(L.z, L.t, r0, R, C, V, B, None, Fo, BFo)
    if builder.h.size:
        r0 = append_holding_rows(L.z, builder.h, w0, r0, R, C, V, B, Fo, BFo)
    c0 = state.cash_weight
    for a in builder._aux_terms:
        for b in a.rows(L):
            r0 = append_resolved(L, b, w0, c0, r0, R, C, V, B, Fo)
            if varying:
                BF.append(np.ones(b.m, dtype=bool))
    r0, slack_rows = append_constraint_rows(builder.constraints, builder.slack_cols,
                                            builder._row_counts, L, state, targets, w0, c0,
                                            r0, R, C, V, B, Fo, BFo)
    r0 = append_slack_floor(slack_rows, r0, R, C, V, B, Fo, BFo)
    if builder.elastic:
        cap = np.full(len(slack_rows), ELASTIC_CAP) if caps is None else caps
        R.append(r0 + np.arange(len(slack_rows)))
        C.append(np.asarray(slack_rows, dtype=int))
        V.append(np.ones(len(slack_rows)))
        B.append(cap)
        if varying:
            F.append(np.full(len(slack_rows), False))
            BF.append(np.full(len(slack_rows), True))
        r0 += len(slack_rows)
    for _, u, _v in builder.impact:
        r0 = append_power_rows(u, L.t, r0, R, C, V, B, Fo, BFo)
    cat = np.concatenate
    return (cat(R), cat(C), cat(V), cat(B), cat(F) if varying else None,
            cat(BF) if varying else None)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.asarray(a).tobytes() == np.asarray(b).tobytes()


@settings(max_examples=30, deadline=None)
@given(seeds=st.lists(st.integers(0, 10_000), min_size=2, max_size=5),
       risk_form=st.sampled_from(["aux", "diag"]), elastic=st.booleans(),
       all_frozen_rows=st.booleans(), varying=st.booleans())
def test_kept_structure_assembles_what_the_blocks_assemble(seeds, risk_form, elastic,
                                                          all_frozen_rows, varying):
    rng = np.random.default_rng(seeds[0])
    G = rng.normal(0.0, 0.1, (N, K))
    s = rng.uniform(0.1, 0.3, N)
    state0, t0 = _state(seeds[0])
    builder = ProgramBuilder(state0, t0, K, COSTS, CONSTRAINTS, has_alpha=False,
                             risk_form=risk_form, elastic=elastic)
    for i, seed in enumerate(seeds):
        state, targets = _state(seed)
        frozen = np.random.default_rng(seed).random(N) < 0.2 if i % 2 else None
        caps = np.random.default_rng(seed).uniform(0.0, 1.0, len(CONSTRAINTS)) if (
            elastic and i % 2) else None
        got = builder.program(state, targets, G, s, 50.0, 1 / 12, None, frozen,
                              all_frozen_rows=all_frozen_rows, caps=caps, varying=varying)
        R, C, V, B, F, BF = reference(builder, state, targets, G, s, 50.0, 1 / 12, frozen,
                                      all_frozen_rows, caps, varying)
        assert _same(got.R, R) and _same(got.C, C)
        assert _same(got.V, V) and _same(got.b, B)
        if varying:
            assert _same(got.varying, F) and _same(got.b_varying, BF)
        else:
            assert got.varying is None and got.b_varying is None
        with pytest.raises(ValueError):  # the kept coordinates cannot be edited
            got.R[0] = 0


def test_template_is_kept_while_the_coordinates_stay_and_rebuilt_when_they_move():
    state0, t0 = _state(1)
    G, s = np.zeros((N, K)), np.full(N, 0.2)
    builder = ProgramBuilder(state0, t0, K, COSTS[:2], CONSTRAINTS[1:5], has_alpha=False)
    builder.program(state0, t0, G, s, 50.0, 1 / 12, None)
    first = builder._template
    for seed in range(2, 6):
        state, targets = _state(seed)
        builder.program(state, targets, G, s, 50.0, 1 / 12, None)
    assert builder._template is first and first.hits == 4
    # a user constraint whose column follows the largest holding: a new template
    # whenever that asset changes, and the reference's rows every time
    moving = ProgramBuilder(state0, t0, K, COSTS[:2], [TopCap()], has_alpha=False)
    tops = []
    for seed in range(1, 8):
        state, targets = _state(seed)
        got = moving.program(state, targets, G, s, 50.0, 1 / 12, None)
        R, C, V, B, _, _ = reference(moving, state, targets, G, s, 50.0, 1 / 12, None, False,
                                     None, False)
        assert _same(got.R, R) and _same(got.C, C) and _same(got.V, V) and _same(got.b, B)
        tops.append(int(np.argmax(state.weights)))
    assert len(set(tops)) > 1  # the column did move
