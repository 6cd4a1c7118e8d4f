"""A Clarabel solver kept per program structure answers bit for bit what a fresh one does.

Oracles: a fresh rebalancer (a fresh solver) on the same state, in every re-solve
order; Clarabel with its own equilibration on the unscaled program (a second
construction of the same optimum); closed-form Ruiz scales on a hand-sized matrix.
"""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from test_clarabel_direct import random_problem

from rebalopt import MarketImpact, PortfolioState, Spread
from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
from rebalopt.rebalance._equilibrate import equilibrate
from rebalopt.rebalance._native import KeptClarabel, cone_blocks, solve_native
from rebalopt.rebalance.optimal import OptimalRebalancer

N = 30


def _rebalancer(risk) -> OptimalRebalancer:
    return OptimalRebalancer(risk=risk, costs=[Spread(5.0), MarketImpact(coef=1.0)],
                             constraints=[LongOnly(), CashFloor(), TurnoverLimit(0.3),
                                          WeightBounds(upper=0.1), GroupBounds(upper=0.5)],
                             risk_aversion=50.0, backend="direct")


def _books(count: int, seed: int = 3):
    """States of one universe (holdings and prices drifted), the targets and the risk."""
    state, targets, risk, _ = random_problem(N, 11)
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(count):
        hold = state.holdings * rng.uniform(0.5, 1.5, N)
        px = state.prices * np.exp(rng.normal(0, 0.05, N))
        states.append(PortfolioState.from_arrays(
            state.assets, hold, state.cash, px, adv=state.adv, volatility=state.volatility,
            groups=state.groups))
    return states, targets, risk


def test_kept_solver_answers_what_a_fresh_one_does_in_any_order() -> None:
    states, targets, risk = _books(5)
    fresh = [_rebalancer(risk).solve(s, targets) for s in states]
    kept = _rebalancer(risk)
    for i in [2, 0, 4, 4, 1, 3, 0, 2]:
        sol = kept.solve(states[i], targets)
        assert np.array_equal(sol.z, fresh[i].z)
        assert sol.objective == fresh[i].objective
        assert sol.iterations == fresh[i].iterations
    assert kept._direct.kept.updates >= 7  # every solve after the first reused the solver


def test_a_change_of_structure_builds_a_new_solver_and_back() -> None:
    states, targets, risk = _books(3)
    reb = _rebalancer(risk)
    reb.solve(states[0], targets)
    updates = reb._direct.kept.updates
    # other settings (a time limit) are another structure: a fresh solver, same answer
    default = reb.time_limit
    reb.time_limit = 60.0
    other = reb.solve(states[1], targets)
    reb.time_limit = default
    again = reb.solve(states[1], targets)
    assert np.array_equal(other.z, again.z)
    assert np.array_equal(again.z, _rebalancer(risk).solve(states[1], targets).z)
    assert reb._direct.kept.updates == updates  # both were new solvers
    reb.solve(states[2], targets)
    assert reb._direct.kept.updates == updates + 1


def test_a_failed_solve_is_not_kept() -> None:
    # stopped by the iteration limit, a solver is dropped: the next solve (same settings,
    # same structure) builds a new one and answers what a fresh solver does
    first, second = _program(0), _program(1)
    kept = KeptClarabel()
    stopped = solve_native(first, "CLARABEL", {"max_iter": 3}, kept)
    assert stopped.solver_status == "MaxIterations" and kept._solver is None
    again = solve_native(second, "CLARABEL", {"max_iter": 3}, kept)
    alone = solve_native(second, "CLARABEL", {"max_iter": 3})
    assert np.array_equal(again.x, alone.x) and kept.updates == 0
    ok = solve_native(first, "CLARABEL", {}, kept)
    ok2 = solve_native(second, "CLARABEL", {}, kept)  # kept after a clean solve
    assert ok.status == ok2.status == "optimal" and kept.updates == 1
    assert np.array_equal(ok2.x, solve_native(second, "CLARABEL", {}).x)


def _in_threads(solver, states, targets) -> dict[int, np.ndarray]:
    """Each state solved by ``solver`` in its own thread, all started at once."""
    out: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        out[i] = solver.solve(states[i], targets).z

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(states))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_threads_sharing_a_rebalancer_get_the_fresh_answers() -> None:
    # the rebalancer keeps per-call values: threads take turns (a lock); before the lock
    # a thread could solve with another thread's cost terms
    states, targets, risk = _books(6, seed=5)
    fresh = [_rebalancer(risk).solve(s, targets).z for s in states]
    reb = _rebalancer(risk)
    reb.solve(states[0], targets)
    out = _in_threads(reb, states, targets)
    for i in range(6):
        assert np.array_equal(out[i], fresh[i])


def test_kept_solver_pickles_empty() -> None:
    states, targets, risk = _books(1)
    reb = _rebalancer(risk)
    first = reb.solve(states[0], targets)
    kept = pickle.loads(pickle.dumps(reb._direct.kept))
    assert isinstance(kept, KeptClarabel) and kept.updates == 0
    again = pickle.loads(pickle.dumps(reb)).solve(states[0], targets)
    assert np.array_equal(first.z, again.z)


def _program(seed: int):
    states, targets, risk = _books(1, seed)
    reb = _rebalancer(risk)
    captured = []
    import rebalopt.rebalance._native as native

    real = native._solve_clarabel

    def spy(prog, options, kept=None):
        captured.append(prog)
        return real(prog, options, kept)

    native._solve_clarabel = spy
    try:
        reb.solve(states[0], targets)
    finally:
        native._solve_clarabel = real
    return captured[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_own_equilibration_reaches_clarabels_optimum(seed: int) -> None:
    import clarabel

    from rebalopt.rebalance._native import clarabel_cones, clarabel_settings

    prog = _program(seed)
    ours = solve_native(prog, "CLARABEL", {})
    settings = clarabel_settings({})  # Clarabel's own equilibration, unscaled data
    theirs = clarabel.DefaultSolver(prog.P, prog.q, prog.A, prog.b,
                                    clarabel_cones(prog.cones), settings).solve()
    assert ours.status == "optimal" and str(theirs.status) == "Solved"
    scale = max(1.0, abs(theirs.obj_val))
    assert ours.objective == pytest.approx(theirs.obj_val, abs=1e-7 * scale)
    np.testing.assert_allclose(ours.x[:N], np.asarray(theirs.x)[:N], atol=1e-5)


def test_equilibration_by_hand() -> None:
    # one iteration on P = diag(4, 1), A = [[2, 0], [0, 8], [1, 1]]:
    # KKT column norms: x1 max(4, 2, 1) = 4, x2 max(1, 8, 1) = 8; rows 2, 8, 1
    P = sp.csc_matrix(np.diag([4.0, 1.0]))
    A = sp.csc_matrix(np.array([[2.0, 0.0], [0.0, 8.0], [1.0, 1.0]]))
    q, b = np.array([1.0, -2.0]), np.array([1.0, 1.0, 1.0])
    Pd, qs, Ad, bs, sc = equilibrate(P, q, A, b, np.zeros((0, 3), dtype=int), max_iter=1)
    d = 1 / np.sqrt([4.0, 8.0])
    e = 1 / np.sqrt([2.0, 8.0, 1.0])
    # cost scale: mean column norm of D P D = mean(1, 1/8); |D q|_inf = max(1/2, 2/sqrt 8)
    c = 1 / max(np.mean([1.0, 1 / 8]), max(0.5, 2 / np.sqrt(8)))
    np.testing.assert_allclose(sc.d, d)
    np.testing.assert_allclose(sc.e, e)
    assert sc.c == pytest.approx(c)
    np.testing.assert_allclose(Pd, c * np.array([4.0, 1.0]) * d ** 2)
    np.testing.assert_allclose(qs, c * q * d)
    np.testing.assert_allclose(sp.csc_matrix((Ad, A.indices, A.indptr), shape=A.shape)
                               .toarray(), np.diag(e) @ A.toarray() @ np.diag(d))
    np.testing.assert_allclose(bs, e * b)


def test_cone_rows_share_one_scale() -> None:
    prog = _program(0)
    blocks = cone_blocks(prog.cones)
    assert blocks.shape[0] > 0
    *_, sc = equilibrate(prog.P, prog.q, prog.A, prog.b, blocks)
    rows = sc.e[blocks]
    assert np.all(rows == rows[:, :1])
    assert np.all((sc.d >= 1e-4) & (sc.d <= 1e4))


def test_threads_sharing_a_multi_period_rebalancer_get_the_fresh_answers() -> None:
    # before its lock, threads sharing one planner wrote the kept stacked program's
    # buffers in turn: 16 of 24 schedules differed from a fresh planner's (one failed
    # the numeric check); the schedules must be each state's own
    from rebalopt.rebalance.multiperiod import MultiPeriodRebalancer

    states, targets, risk = _books(6, seed=5)

    def planner() -> MultiPeriodRebalancer:
        return MultiPeriodRebalancer(periods=3, risk=risk,
                                     costs=[Spread(5.0), MarketImpact(coef=1.0)],
                                     constraints=[LongOnly(), CashFloor(),
                                                  WeightBounds(upper=0.1)],
                                     risk_aversion=50.0)

    fresh = [planner().solve(s, targets).z for s in states]
    mp = planner()
    mp.solve(states[0], targets)
    out = _in_threads(mp, states, targets)
    for i in range(6):
        assert np.array_equal(out[i], fresh[i])
    again = pickle.loads(pickle.dumps(mp)).solve(states[2], targets).z
    assert np.array_equal(again, fresh[2])
