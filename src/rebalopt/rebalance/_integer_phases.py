"""The integer stage's phases: the lot search (round, repair, improve, restarts,
neighbourhoods) and the exact MIP (mixed into
:class:`~rebalopt.rebalance.integer.IntegerRebalancer`)."""

from __future__ import annotations

import time
from typing import Any

import cvxpy as cp
import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.constraints import Constraint, Slack
from rebalopt.constraints.integer import IntegerConstraint
from rebalopt.program import CostTerms
from rebalopt.rebalance._integer_bound import inverse_diagonal
from rebalopt.rebalance._integer_costs import CostTable
from rebalopt.rebalance._integer_descent import descend
from rebalopt.rebalance._integer_exact import EXACT_ASSETS
from rebalopt.rebalance._integer_kernels import kernel_for
from rebalopt.rebalance._integer_lns import Neighbourhoods, close_lots
from rebalopt.rebalance._integer_mip import MipResult, Unsupported, implied_box, solve_mip
from rebalopt.rebalance._integer_search import LotSearch, SearchResult
from rebalopt.rebalance._integer_start import GUIDED_ASSETS, guided_box, sequential_round
from rebalopt.rebalance.optimal import OptimalSolution
from rebalopt.state import PortfolioState

__all__: list[str] = []


class SearchPhases:
    """The search and MIP phases of :class:`~rebalopt.rebalance.integer.IntegerRebalancer`."""

    def _search(self, state: PortfolioState, sol: OptimalSolution, lots: FloatArray,
                notes: list[str], extra: dict[str, Any] | None = None,
                deadline: float | None = None,
                ) -> tuple[LotSearch, list[Constraint], SearchResult, FloatArray]:
        """Round, repair and improve from the relaxation; from no trade when that is better.

        When the rounded relaxation cannot be repaired, or ends above the no-trade
        plan's objective, and no trade meets every hard constraint, the search also
        runs from no trade (improve only takes feasible, improving moves, with a
        jump to the rounded relaxation's lot count as one of them) and keeps the
        better plan: round mode is never worse than doing nothing when doing
        nothing is allowed.
        """
        relax = self.relaxed()
        w_t = sol.targets
        unit = state.prices * state.multipliers
        ell = lots * unit / state.equity
        root = relax.root(state)
        cons = [c for c in self.constraints(state) if not _sets_lots(c, state)]
        hard_c = [c for c in cons if not c.soft]
        hard = [kernel_for(c, state, w_t) for c in hard_c]
        soft = [(kernel_for(c, state, w_t), float(c.penalty)) for c in cons if c.soft]
        mins = [m for m in (c.min_lots(state, lots) for c in cons
                            if isinstance(c, IntegerConstraint)) if m is not None]
        kmin = np.max(mins, axis=0) if mins else None
        z_box = implied_box(hard_c, state, w_t, self.costs)
        z_lo = z_box[0]
        if sol.frozen is not None:
            z_lo = np.where(sol.frozen, 0.0, z_lo)
        close = close_lots(state.holdings, lots, z_lo / ell)
        search = LotSearch(
            w0=state.weights, c0=state.cash_weight, targets=w_t, ell=ell,
            costs=CostTable(self.costs, state, relax.horizon), G=np.asarray(root.G, float),
            s=np.asarray(root.s, float), gT=relax.risk_aversion * relax.horizon,
            alpha=relax._alpha(state), hard=hard, soft=soft, kmin=kmin,
            tol=0.5 * self.tolerance, max_moves=self.max_moves,
            box=self._lot_box(z_box, ell, sol.frozen), close=close,
            chain_width=16 if state.n > 100 else max(16, min(state.n, self.chain_width)),
            min_gain=self.min_saving / state.equity,
        )
        k = sol.z / ell
        q0 = np.round(k)
        q0 = np.where(np.abs(k - close) < np.abs(k - q0), close, q0)  # NaN compares False
        res = self._guided(search, q0, k) if state.n > GUIDED_ASSETS else search.run(q0)
        zero = np.zeros(state.n)
        if search.feasible(zero):
            f0 = search.objective(zero)
            if not res.feasible or res.objective > f0:
                alt = search.run(zero, anchor=q0)
                if alt.feasible and (not res.feasible or alt.objective < res.objective):
                    notes.append("round: the search from no trade beat the rounded relaxation"
                                 if res.feasible else
                                 "round: repair of the rounded relaxation got stuck; "
                                 "searched from no trade instead")
                    res = alt
        extra = {} if extra is None else extra
        if not res.feasible and self._work(state.n) > 0:
            res = self._restart(search, res, q0, sol, state, notes, extra)
        if res.feasible and self._work(state.n) > 0:
            self._neighbourhoods(search, res, q0, state, sol, notes, extra, deadline)
        return search, hard_c, res, ell

    @staticmethod
    def _guided(search: LotSearch, q0: FloatArray, k: FloatArray) -> SearchResult:
        """The search on a large book (:mod:`rebalopt.rebalance._integer_start`): the
        relaxation rounded asset by asset inside the guided box, repaired and descended
        by single moves there, then searched in full (repair, descent, pairs, chains)
        from that plan; from ``q0`` as before when the box holds no feasible plan.

        On bench_integer (b) (500 names, 100-share lots) the plan before the
        neighbourhoods went from 3.7-4.4 bps to 2.4-2.5, and the neighbourhoods that
        sold the big lots bought to fill cash have little left to do.
        """
        lo, hi = search.lo, search.hi
        box = guided_box(search, k, q0)
        start = sequential_round(search, k, box[0], box[1], search.clip(q0))
        search.lo, search.hi = box
        search._table = None  # its refused moves are the box's
        try:
            q, nrep, ok = search.repair(start)
            if ok:
                q, _, nimp = descend(search, q, search.objective(q), search.max_moves,
                                     search.min_gain)
        finally:
            search.lo, search.hi = lo, hi
            search._table = None
        if not ok:
            return search.run(q0)
        res = search.run(q)
        res.repair_moves += nrep
        res.improve_moves += nimp
        return res

    def _restart(self, search: LotSearch, res: SearchResult, q0: FloatArray,
                 sol: OptimalSolution, state: PortfolioState, notes: list[str],
                 extra: dict[str, Any]) -> SearchResult:
        """A stuck repair: restart from no trade and from the relaxation with its odd
        lots closed, then enumerate the per-asset box when small (which also proves
        that no plan exists when it finds none)."""
        starts = [np.zeros(state.n)]
        if search.close is not None:
            closing = ~np.isnan(search.close) & (sol.z < 0)
            starts.append(np.where(closing, search.close, q0))
        for start in starts:
            alt = search.run(start, anchor=q0)
            if alt.feasible:
                notes.append("round: repair of the rounded relaxation got stuck; "
                             "a restart found a plan")
                return alt
        if state.n <= EXACT_ASSETS:
            nb = Neighbourhoods(search, work=self._work(state.n))
            q, covered = nb.find_feasible(res.q)
            if q is not None:
                notes.append("round: repair got stuck; enumeration found a plan")
                return SearchResult(q, search.objective(q), True, res.repair_moves, 0, 0)
            extra["infeasible_proven"] = covered
        return res

    def _neighbourhoods(self, search: LotSearch, res: SearchResult, q0: FloatArray,
                        state: PortfolioState, sol: OptimalSolution, notes: list[str],
                        extra: dict[str, Any], deadline: float | None) -> None:
        """Large-neighbourhood moves, then an exact enumeration when the box is small.

        Updates ``res`` in place; ``extra["enumerated"]`` says whether the
        enumeration covered a box holding the optimum (a proof).
        """
        nb = Neighbourhoods(search, anchor=search.clip(q0), work=self._work(state.n))
        if deadline is not None and time.perf_counter() > deadline:
            notes.append("round: time_limit reached before the neighbourhood search")
            return
        q = nb.run(res.q)
        proven = False
        provable = (search.alpha is None and search.gT > 0 and not search.costs.generic
                    and state.n <= EXACT_ASSETS)
        if provable and (deadline is None or time.perf_counter() <= deadline):
            Sinv = inverse_diagonal(search.G, search.s)
            if Sinv is not None:
                q, proven = nb.exact(q, Sinv)
        res.q, res.objective = q, search.objective(q)
        res.improve_moves += nb.accepted
        extra.update({"enumerated": proven, "lns_moves": nb.accepted, "lns_work": nb.used,
                      "lns_sets": nb.sets_tried, **nb.stats})

    @staticmethod
    def _lot_box(z_box: tuple[FloatArray, FloatArray], ell: FloatArray,
                 frozen: np.ndarray | None = None) -> tuple[FloatArray, FloatArray]:
        """Lot-count bounds from the trade-weight box ``z_box`` the per-asset hard
        constraints imply (:func:`implied_box`), always holding 0.

        An asset whose bounds hold no whole lot count is left unbounded, so the
        repair reports its constraint instead of the box hiding it. A frozen asset
        (one a cost model cannot price) is boxed at 0: it is never traded.
        """
        lo, hi = z_box
        q_lo = np.ceil(lo / ell - 1e-9)
        q_hi = np.floor(hi / ell + 1e-9)
        empty = q_lo > q_hi
        q_lo, q_hi = np.minimum(q_lo, 0.0), np.maximum(q_hi, 0.0)
        q_lo[empty], q_hi[empty] = -np.inf, np.inf
        if frozen is not None:
            q_lo[frozen], q_hi[frozen] = 0.0, 0.0
        return q_lo, q_hi

    def _verified(self, shares: FloatArray, state: PortfolioState, w_t: FloatArray
                  ) -> tuple[dict[str, Slack], list[Slack]]:
        slacks = self.check(shares, state, w_t)
        cons = self.constraints(state)
        bad = [s for c, s in zip(cons, slacks.values()) if not c.soft and not s.satisfied]
        return slacks, bad

    def _solver(self, gT: float, state: PortfolioState) -> str | None:
        installed = set(cp.installed_solvers())
        quadratic = gT > 0 or any(_quadratic_cost(m.terms(state)) for m in self.costs)
        want = (self.exact_solver.upper() if self.exact_solver
                else ("SCIP" if quadratic else "HIGHS"))
        if want == "HIGHS" and quadratic:
            want = "SCIP"
        if want in installed:
            return want
        if not quadratic and "SCIP" in installed:
            return "SCIP"
        return None

    def _mip(self, state: PortfolioState, sol: OptimalSolution, lots: FloatArray,
             ell: FloatArray, incumbent: float | None, notes: list[str],
             time_left: float | None = None) -> MipResult | None:
        relax = self.relaxed()
        gT = relax.risk_aversion * relax.horizon
        solver = self._solver(gT, state)
        if solver is None:
            notes.append("no MIP solver installed (pip install pyscipopt highspy)")
            return None
        w_t = sol.targets
        root = relax.root(state)
        G, s = np.asarray(root.G, float), np.asarray(root.s, float)
        alpha = relax._alpha(state)
        cons = list(relax.constraints)
        icons = self.integer_constraints()
        lo, hi = implied_box(cons, state, w_t, self.costs)
        if any(c.forbids_shorts() and not c.soft for c in cons):
            floors = [f for c in cons if not c.soft and (f := c.cash_floor()) is not None]
            if floors:
                budget = state.cash_weight - max(floors) + np.maximum(state.weights, 0).sum()
                hi = np.minimum(hi, max(budget, 0.0))
        if incumbent is not None and alpha is None and gT > 0 and (s > 0).all():
            r = np.sqrt(2.0 * max(incumbent, 0.0) / (gT * s * s)) * (1 + 1e-9) + 1e-12
            d0 = w_t - state.weights
            lo, hi = np.maximum(lo, d0 - r), np.minimum(hi, d0 + r)
        q_lo = np.ceil(lo / ell - 1e-9)
        q_hi = np.floor(hi / ell + 1e-9)
        q_lo = np.where(q_lo > q_hi, q_hi, q_lo)
        if sol.frozen is not None:  # untradable: never traded
            q_lo, q_hi = np.where(sol.frozen, 0.0, q_lo), np.where(sol.frozen, 0.0, q_hi)
        need_bin = (any(c.needs_binaries for c in icons)
                    or any(not m.exact_in_optimizer for m in self.costs))
        try:
            return solve_mip(state=state, w_t=w_t, G=G, s=s, gT=gT, alpha=alpha,
                             costs=self.costs, constraints=cons, int_constraints=icons,
                             ell=ell, q_box=(q_lo, q_hi), solver=solver,
                             time_limit=self.time_limit if time_left is None else time_left,
                             need_binaries=need_bin, node_limit=self.mip_nodes,
                             horizon=relax.horizon)
        except Unsupported as exc:
            notes.append(f"exact mode unavailable: {exc}")
            return None


def _quadratic_cost(terms: CostTerms) -> bool:
    """Whether declared cost terms make the MIP objective quadratic (exponent 2)."""
    return ((terms.quadratic is not None and bool(np.any(terms.quadratic != 0)))
            or any(p.exponent == 2.0 and bool(np.any(p.coef != 0)) for p in terms.power))


def _sets_lots(c: Constraint, state: PortfolioState) -> bool:
    """Whether ``c`` sets the lot grid (the moves are made of its lots)."""
    return isinstance(c, IntegerConstraint) and c.lot_sizes(state) is not None
