"""IntegerRebalancer: whole shares and round lots, minimum trade value, maximum trade
count and per-order fees, with a certified gap to the continuous relaxation.

.. math::

    \\min_{q \\in \\mathbb Z^n}\\ \\text{cost}(z) + \\frac{\\gamma}{2} T (w - w^*)^\\top
    \\Sigma (w - w^*) \\,[-\\,\\alpha^\\top w] \\quad z_i = q_i\\,\\ell_i,\\ w = w_0 + z

where ``q_i`` is a number of lots, ``ell_i = lot_i * price_i * multiplier_i / V`` the
weight of one lot, and ``cost`` the *full* cost the broker charges (a commission's
minimum and per-order fee included, unlike the convex program). The continuous
program (:class:`~rebalopt.rebalance.optimal.OptimalRebalancer`, the relaxation)
gives a lower bound on this objective for any integer plan: its feasible set
contains every integer plan's (its cash is charged only the convex part of the cost,
and the integer-only constraints are dropped) and its cost is never above the full
cost. So ``integer objective - relaxation objective`` bounds how far the plan can be
from the integer optimum (up to the relaxation solver's tolerance, about 1e-8).

Modes:

* ``"round"`` (default): solve the relaxation, round each trade to the nearest lot,
  repair every hard constraint by greedy single-asset lot moves, then improve by
  single moves and buy/sell pairs while feasible and improving
  (:mod:`rebalopt.rebalance._integer_search`), then by large-neighbourhood moves:
  multi-lot moves, the sale of a lot worth many small ones with its cash re-invested,
  exchanges of which assets trade, and every combination of a few lot counts over
  pairs and triples of the assets that matter; on small books, an
  exhaustive enumeration of a box that provably holds the optimum, which proves it
  (:mod:`rebalopt.rebalance._integer_lns`, :mod:`rebalopt.rebalance._integer_exact`). Every budget is a count, so the plan is
  deterministic. If the repair gets stuck, restarts and (small books) enumeration
  look for a plan; then the MIP is asked for one or for a proof that none exists.
* Closing a position to exactly zero is always a candidate, whatever the lot size
  (130 shares held in 100-share lots can be sold in full).
* ``"exact"``: the round plan, then a mixed-integer program through cvxpy
  (:mod:`rebalopt.rebalance._integer_mip`): SCIP for a quadratic objective, HiGHS for
  a linear one, with a time limit; the better verified plan wins. On a timeout the
  best plan found and SCIP's proven bound are reported; with no solver or an
  unsupported term, the round plan is used and ``plan.info["fallback"]`` says why.

Every answer is checked in NumPy against every hard constraint (with the full
cost charged to cash) and re-priced with the cost models' ``evaluate``; a solver's
bound is discarded if a verified plan beats it. The plan carries a certificate
(:mod:`rebalopt.rebalance._integer_bound`): the tightest valid lower bound, what it
covers, and "proven optimal" only when the re-priced objective meets a bound that
holds for the real cost.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rebalopt._checks import flag
from rebalopt._naming import unique_names
from rebalopt._typing import FloatArray
from rebalopt.constraints import Constraint, Point, Slack
from rebalopt.constraints.integer import IntegerConstraint, LotSize, MaxTrades, MinTradeValue
from rebalopt.costs import CostModel
from rebalopt.errors import Conflict, InfeasibleError, InputError
from rebalopt.rebalance._integer_bound import certificate
from rebalopt.rebalance._integer_lns import (
    default_work,
    shares_of,
)
from rebalopt.rebalance._integer_mip import MipResult
from rebalopt.rebalance._integer_phases import SearchPhases, _sets_lots
from rebalopt.rebalance._integer_search import LotSearch, SearchResult
from rebalopt.rebalance._integer_solution import IntegerSolution
from rebalopt.rebalance.optimal import OptimalRebalancer
from rebalopt.rebalance.plan import RebalancePlan, evaluate_costs
from rebalopt.state import PortfolioState

__all__ = ["IntegerRebalancer", "IntegerSolution"]


def _same_knob(a: Any, b: Any) -> bool:
    """Whether two values of an integer-stage knob (a number, a Series or a mapping
    of lot sizes) are equal."""
    if isinstance(a, pd.Series) or isinstance(b, pd.Series):
        return (isinstance(a, pd.Series) and isinstance(b, pd.Series)
                and a.index.equals(b.index) and bool((a.to_numpy() == b.to_numpy()).all()))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False

Mode = Literal["round", "exact"]


@dataclass
class IntegerRebalancer(SearchPhases):
    """Lot-feasible plans from a continuous :class:`OptimalRebalancer` (module docstring).

    Parameters
    ----------
    relaxation
        The continuous rebalancer: risk, costs, constraints and knobs. Integer
        constraints (:class:`~rebalopt.constraints.LotSize`, ``MinTradeValue``,
        ``MaxTrades``) found in its ``constraints`` are taken out of the relaxation
        and enforced here.
    mode
        ``"round"`` (default) or ``"exact"``.
    lots
        Lot size in shares: one number, a Series / mapping by ticker (others keep
        ``state.lot_sizes``), or ``None`` for ``state.lot_sizes`` (1 = whole shares).
    min_trade_value
        Smallest trade value in currency (no dust); ``None``: no minimum.
    max_trades
        Largest number of orders; ``None``: no limit.
    time_limit
        Ceiling in seconds on the whole integer stage (search, enumeration, MIP),
        checked between phases and passed to the MIP as what is left. Budgets are
        counts, so the plan does not depend on the clock unless this ceiling
        binds; ``plan.info["notes"]`` says when it did.
    exact_solver
        ``"SCIP"`` or ``"HIGHS"``; ``None`` picks SCIP for a quadratic objective and
        HiGHS for a linear one.
    prove_infeasible
        In ``round``, when the repair cannot restore the hard constraints, ask the
        MIP for a plan (or a proof that none exists) before raising.
    max_moves
        Cap on the search's moves per phase.
    work
        Work budget of the neighbourhood search in asset-candidate pricings (a
        count, not seconds: the same inputs give the same plan on any machine);
        ``None`` (default): in proportion to the book, 3,000 per asset between
        20,000 and 300,000 (:func:`~rebalopt.rebalance._integer_lns.default_work`).
        The exact enumeration has its own cap (``EXACT_WORK``, books of at most
        ``EXACT_ASSETS`` assets); 0 turns both off.
    chain_width
        Most one-lot sells (buys) each chain pass tries partners for, on books of up
        to 100 assets; never fewer than 16 (or the book's size), and 16 beyond 100
        assets (each is a full pricing of every asset): a smaller value is raised to
        16.
    mip_nodes
        Branch-and-bound node budget of the MIP (a count, so a MIP stopped by its
        budget returns the same plan on every run). A MIP stopped by ``time_limit``
        instead has its plan discarded (kept: its bound) and the round plan is used.
    tolerance
        Largest violation of a hard constraint accepted on an integer plan, in the
        constraint's units (fractions of equity for cash and weights). An integer
        plan is computed exactly in floating point, not by an iterative solver, so
        this is float round-off only (the relaxation's ``feasibility_tol``, 1e-7 of
        equity, would let a $100M cash account go $10 negative).
    pending
        What :meth:`execute` does with the broker's pending orders.
    min_saving
        Smallest saving, in currency, for which the search's descent makes one more
        move (default one cent; 0: any saving above float round-off). Measured on a
        $100M book in whole shares: the descent made ~2,000 moves per plan, ~90% of
        them saving under a cent each (together ~$5, 0.25% of the objective), and took
        80% of a 20-year backtest's time.
    """

    relaxation: OptimalRebalancer = field(default_factory=OptimalRebalancer)
    mode: Mode = "round"
    lots: float | pd.Series | Mapping[str, float] | None = None
    min_trade_value: float | None = None
    max_trades: int | None = None
    time_limit: float = 20.0
    exact_solver: str | None = None
    prove_infeasible: bool = True
    max_moves: int = 20_000
    tolerance: float = 1e-12
    pending: str = "cancel"
    work: int | None = None
    chain_width: int = 64
    mip_nodes: int = 20_000
    min_saving: float = 0.01

    method = "optimal-integer"

    def __post_init__(self) -> None:
        if not isinstance(self.relaxation, OptimalRebalancer):
            raise InputError("expected an OptimalRebalancer",
                             field="IntegerRebalancer.relaxation")
        for name in ("cvxpy_constraints", "cvxpy_objective"):
            if list(getattr(self.relaxation, name) or ()):
                # the search, the MIP and the NumPy check read declarations only: a
                # cvxpy term would bind the relaxation and be dropped from the plan
                raise InputError("the whole-share stage checks and prices declared "
                                 "constraints and cost models only, so a cvxpy escape-hatch "
                                 "term would be dropped from its plan: declare it as a "
                                 "Constraint / CostModel (docs/howto/extending.md), or plan "
                                 "fractional shares", field=f"OptimalRebalancer.{name}")
        if self.mode not in ("round", "exact"):
            raise InputError(f"must be 'round' or 'exact', got {self.mode!r}",
                             field="IntegerRebalancer.mode")
        if not (np.isfinite(self.time_limit) and self.time_limit > 0):
            raise InputError("must be finite and > 0", field="IntegerRebalancer.time_limit")
        if self.exact_solver is not None and self.exact_solver.upper() not in ("SCIP", "HIGHS"):
            raise InputError("must be 'SCIP', 'HIGHS' or None",
                             field="IntegerRebalancer.exact_solver")
        if not (np.isfinite(self.tolerance) and self.tolerance >= 0):
            raise InputError("must be finite and >= 0", field="IntegerRebalancer.tolerance")
        if self.work is not None and not (isinstance(self.work, (int, np.integer))
                                          and self.work >= 0):
            raise InputError("must be an integer >= 0 or None", field="IntegerRebalancer.work")
        if self.pending not in ("cancel", "account"):
            raise InputError("must be 'cancel' or 'account'", field="IntegerRebalancer.pending")
        if isinstance(self.min_saving, bool) or not isinstance(self.min_saving, (int, float)) \
                or not (np.isfinite(self.min_saving) and self.min_saving >= 0):
            raise InputError("must be a finite amount of currency >= 0",
                             field="IntegerRebalancer.min_saving")
        for name in ("max_moves", "mip_nodes", "chain_width"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) \
                    or v < (1 if name == "chain_width" else 0):
                low = 1 if name == "chain_width" else 0
                raise InputError(f"must be an integer >= {low}, got {v!r}",
                                 field=f"IntegerRebalancer.{name}")
        flag(self.prove_infeasible, "IntegerRebalancer.prove_infeasible")
        if isinstance(self.time_limit, (bool, np.bool_)):
            raise InputError("must be a number of seconds, got a bool",
                             field="IntegerRebalancer.time_limit")
        self._adopt_relaxation_stage()
        if self.max_trades is not None and (
                isinstance(self.max_trades, (bool, np.bool_))
                or not isinstance(self.max_trades, (int, np.integer))):
            # int(2.7) would silently plan with at most 2 trades
            raise InputError(f"must be an integer >= 0 or None, got {self.max_trades!r}",
                             field="IntegerRebalancer.max_trades")
        self._own_constraints: list[IntegerConstraint] = []
        if self.lots is not None:
            self._own_constraints.append(LotSize(self.lots))
        if self.min_trade_value is not None:
            self._own_constraints.append(MinTradeValue(float(self.min_trade_value)))
        if self.max_trades is not None:
            self._own_constraints.append(MaxTrades(self.max_trades))
        self._relax_cache: tuple[tuple[int, ...], OptimalRebalancer] | None = None

    def _adopt_relaxation_stage(self) -> None:
        """Read the relaxation's own integer-stage knobs instead of dropping them.

        ``OptimalRebalancer(max_trades=5)`` (or ``lots``, ``min_trade_value``) given as
        the relaxation would otherwise be silently ignored here: such a field is used
        when this object leaves it ``None``, and an :class:`InputError` names it when
        both give a different value. Its ``integer`` mode must be ``"off"`` or this
        object's ``mode`` (``OptimalRebalancer(integer="exact")`` under the default
        ``mode="round"`` would plan in round mode).
        """
        relax = self.relaxation
        if relax.integer not in ("off", self.mode):
            raise InputError(f"the relaxation asks for integer={relax.integer!r} but this "
                             f"stage runs mode={self.mode!r}: set "
                             f"IntegerRebalancer(mode={relax.integer!r})",
                             field="IntegerRebalancer.mode")
        for name in ("lots", "min_trade_value", "max_trades"):
            inner, own = getattr(relax, name), getattr(self, name)
            if inner is None:
                continue
            if own is None:
                setattr(self, name, inner)
            elif own is not inner and not _same_knob(own, inner):
                raise InputError(f"{own!r} here and {inner!r} on the relaxation "
                                 f"(OptimalRebalancer.{name}): give it once",
                                 field=f"IntegerRebalancer.{name}")

    # ----------------------------------------------------------------- pieces
    @property
    def costs(self) -> list[CostModel]:
        """The cost models (the relaxation's): charged in full on the plan."""
        return self.relaxation.costs

    def relaxed(self) -> OptimalRebalancer:
        """The continuous rebalancer without integer constraints (cached)."""
        key = tuple(id(c) for c in self.relaxation.constraints)
        if any(isinstance(c, IntegerConstraint) for c in self.relaxation.constraints):
            if self._relax_cache is None or self._relax_cache[0] != key:
                keep = [c for c in self.relaxation.constraints
                        if not isinstance(c, IntegerConstraint)]
                self._relax_cache = (key, dataclasses.replace(self.relaxation, constraints=keep))
            return self._relax_cache[1]
        return self.relaxation

    def _work(self, n: int) -> int:
        """The neighbourhood work budget for a book of ``n`` assets (``work`` or the default)."""
        return default_work(n) if self.work is None else int(self.work)

    def integer_constraints(self) -> list[IntegerConstraint]:
        """Integer constraints in force: the relaxation's, then this object's fields."""
        inside = [c for c in self.relaxation.constraints if isinstance(c, IntegerConstraint)]
        return inside + self._own_constraints

    def lot_sizes(self, state: PortfolioState) -> FloatArray:
        """Lot size per asset in shares (the last ``LotSize`` given wins; else the state's)."""
        grids = [g for g in (c.lot_sizes(state) for c in self.integer_constraints())
                 if g is not None]
        return grids[-1] if grids else np.asarray(state.lot_sizes, dtype=float)

    def constraints(self, state: PortfolioState) -> list[Constraint]:
        """Every constraint an integer plan must meet (continuous, integer, lot multiple)."""
        out: list[Constraint] = list(self.relaxed().constraints) + self.integer_constraints()
        if not any(_sets_lots(c, state) for c in out):
            out.append(LotSize())
        return out

    def _point(self, shares: FloatArray, state: PortfolioState, w_t: FloatArray) -> Point:
        unit = state.prices * state.multipliers
        z = np.asarray(shares, float) * unit / state.equity
        cost = sum(v.sum() for v in evaluate_costs(self.costs, shares, state).values())
        return Point.from_trades(state, w_t, z, float(cost) / state.equity)

    def check(self, shares: FloatArray, state: PortfolioState, targets: Any) -> dict[str, Slack]:
        """Slack of every constraint at ``shares`` with the full cost paid from cash (NumPy)."""
        w_t = targets if isinstance(targets, np.ndarray) else state.target_weights(targets)
        point = self._point(shares, state, w_t)
        cons = self.constraints(state)
        tol = self.tolerance
        return {nm: c.check(point, tol) for nm, c in zip(unique_names(cons), cons)}

    def objective_terms(self, shares: FloatArray, state: PortfolioState,
                        targets: Any) -> dict[str, float]:
        """The integer objective at ``shares`` with the full cost (fractions of equity).

        Risk and alpha come from :meth:`OptimalRebalancer.objective_terms`; the cost is
        the cost models' ``evaluate`` (what the broker charges); soft constraints are
        priced at the full-cost point.
        """
        w_t = targets if isinstance(targets, np.ndarray) else state.target_weights(targets)
        relax = self.relaxed()
        point = self._point(shares, state, w_t)
        base = relax.objective_terms(point.z, state, w_t)
        cost = state.cash_weight - float(point.z.sum()) - point.cash
        pen = float(sum(c.penalty * c.check(point).violation
                        for c in self.constraints(state) if c.soft))
        total = cost + base["holding"] + base["risk"] + base["alpha"] + pen
        return {"cost": cost, "holding": base["holding"], "risk": base["risk"],
                "alpha": base["alpha"], "penalty": pen, "total": total}

    def objective(self, shares: FloatArray, state: PortfolioState, targets: Any) -> float:
        """Integer objective at ``shares`` (fraction of equity)."""
        return self.objective_terms(shares, state, targets)["total"]

    # ------------------------------------------------------------------ solve
    def solve(self, state: PortfolioState, targets: Any) -> IntegerSolution:
        """Solve the relaxation, then the integer stage; verify and return the best plan.

        Raises
        ------
        InfeasibleError
            No integer plan meets the hard constraints (proven by the MIP, or the
            relaxation is infeasible), or the repair could not find one and the MIP
            could not decide; ``conflicts`` names the constraints left violated.
        """
        t0 = time.perf_counter()
        relax = self.relaxed()
        sol = relax.solve(state, targets)
        t1 = time.perf_counter()
        deadline = t0 + self.time_limit
        w_t = sol.targets
        lots = self.lot_sizes(state)
        notes: list[str] = []
        extra: dict[str, Any] = {}
        search, hard_c, res, ell = self._search(state, sol, lots, notes, extra, deadline)

        def to_shares(q: FloatArray) -> FloatArray:
            return shares_of(q, lots, state.holdings, search.close)

        round_obj = None
        round_terms: dict[str, float] | None = None
        best: tuple[float, FloatArray, str, dict[str, Slack]] | None = None
        if res.feasible:
            shares = to_shares(res.q)
            slacks, bad = self._verified(shares, state, w_t)
            if bad:
                notes.append(f"round plan failed the numeric check: {bad[0].constraint}")
            else:
                round_terms = self.objective_terms(shares, state, w_t)
                round_obj = round_terms["total"]
                best = (round_obj, shares, "round", slacks)
        else:
            notes.append("round: repair could not restore every hard constraint")
        enumerated = bool(extra.get("enumerated")) and best is not None
        mip = None
        want_mip = self.mode == "exact" or (best is None and self.prove_infeasible
                                             and not extra.get("infeasible_proven"))
        left = deadline - time.perf_counter()
        if want_mip and left <= 0:
            notes.append("time_limit reached before the MIP: not run")
        elif want_mip:
            mip = self._mip(state, sol, lots, ell, None if best is None else best[0], notes,
                            left)
            if mip is None and self.mode == "exact":
                notes.append("fell back to round")
            elif mip is not None:
                if mip.q is not None and mip.status == "timelimit":
                    timed = to_shares(mip.q)
                    if not self._verified(timed, state, w_t)[1]:
                        extra["mip_timed_out_objective"] = self.objective(timed, state, w_t)
                    notes.append(f"{mip.solver} stopped by time_limit before its node budget: "
                                 "its plan is not used (it would depend on timing); bound kept")
                    mip.q = None
                if mip.q is not None:
                    shares = to_shares(mip.q)
                    slacks, bad = self._verified(shares, state, w_t)
                    if bad:
                        notes.append(f"{mip.solver} answer failed the numeric check "
                                     f"({bad[0].constraint} by {bad[0].violation:.2e}): ignored")
                    else:
                        f = self.objective(shares, state, w_t)
                        if best is None or f < best[0] - 1e-12 * (1 + abs(best[0])):
                            best = (f, shares, "exact", slacks)
                            enumerated = False
                elif self.mode == "exact":
                    notes.append(f"{mip.solver} returned no plan ({mip.status}): fell back "
                                 "to round")
                if mip.bound is not None and best is not None:
                    slack = 1e-7 * (1 + abs(best[0])) + 1e-9
                    if mip.bound > best[0] + slack:
                        notes.append(f"{mip.solver} bound {mip.bound:.6g} above a verified "
                                     f"plan's objective {best[0]:.6g}: discarded")
                        mip.bound, mip.proven = None, False
        if best is None:
            raise self._infeasible(state, w_t, search, hard_c, res, mip,
                                   bool(extra.get("infeasible_proven")))
        f, shares, how, slacks = best
        shares = np.where(shares == 0, 0.0, shares)
        terms = (round_terms if how == "round" and round_terms is not None
                 else self.objective_terms(shares, state, w_t))  # round's: no -0.0 to clean
        no_close = search.close is None
        cert = certificate(terms["total"], sol.objective, enumeration=enumerated,
                           mip_bound=None if mip is None else mip.bound,
                           mip_covers_all=no_close)
        t2 = time.perf_counter()
        return IntegerSolution(
            shares=shares, lots=lots, z=shares * state.prices * state.multipliers / state.equity,
            terms=terms, relaxation=sol, method=how,
            mip=mip, slacks=slacks, notes=notes, relaxation_time=t1 - t0,
            integer_time=t2 - t1,
            moves={"repair": res.repair_moves, "improve": res.improve_moves,
                   "pair": res.pair_moves, "neighbourhood": int(extra.get("lns_moves", 0))},
            round_objective=round_obj, certificate=cert,
            work={k: int(v) for k, v in extra.items()
                  if k not in ("enumerated", "mip_timed_out_objective")},
            mip_timed_out_objective=extra.get("mip_timed_out_objective"),
        )

    def _infeasible(self, state: PortfolioState, w_t: FloatArray, search: LotSearch,
                    hard_c: Sequence[Constraint], res: SearchResult,
                    mip: MipResult | None, enumerated: bool = False) -> InfeasibleError:
        shares = shares_of(res.q, self.lot_sizes(state), state.holdings, search.close)
        point = self._point(shares, state, w_t)
        conflicts = []
        for i in sorted(res.violations, key=lambda i: -res.violations[i]):
            c = hard_c[i]
            sl = c.check(point)
            conflicts.append(Conflict(f"{c.name} [{sl.row}]" if sl.row else c.name,
                                      sl.violation, c.units))
        if enumerated:
            how = ("no plan meets the hard constraints (proven by enumerating every "
                   "whole-lot plan and odd-lot close within the per-asset limits)")
        elif mip is not None and mip.status in ("infeasible",) and mip.proven:
            how = f"no whole-lot plan meets the hard constraints (proven by {mip.solver})"
            if search.close is not None:
                how += "; closing an odd-lot position, not covered by that proof, did not help"
        elif mip is not None:
            how = ("no whole-lot plan found: the repair got stuck and "
                   f"{mip.solver} found none ({mip.status}; not proven)")
        else:
            how = "no whole-lot plan found: the repair got stuck (not proven: no MIP solver)"
        return InfeasibleError(how, conflicts or [Conflict("unknown", float("nan"))])

    # ------------------------------------------------------------------- plan
    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan:
        """Plan whole-lot trades (shares) from ``state`` towards ``targets``."""
        sol = self.solve(state, targets)
        relax = self.relaxed()
        root = relax.root(state)
        w_after = state.weights + sol.z
        rs = sol.relaxation
        info: dict[str, Any] = {
            "solver": rs.solver,
            "status": rs.status,
            "solve_time": rs.solve_time,
            "integer_mode": self.mode,
            "integer_method": sol.method,
            "relaxation_objective": sol.lower_bound,
            "integer_objective": sol.objective,
            "objective": sol.objective,
            "objective_bps": 1e4 * sol.objective,
            "objective_terms": sol.terms,
            "integer_gap": sol.gap,
            "integer_gap_bps": 1e4 * sol.gap,
            "integer_gap_rel": sol.gap_rel,
            "best_bound": sol.best_bound,
            "certified_gap": sol.certified_gap,
            "certified_gap_rel": (sol.certified_gap / abs(sol.objective)
                                  if sol.objective != 0 else 0.0),
            "proven_optimal": bool(sol.certificate and sol.certificate.proven_optimal),
            "bound_source": None if sol.certificate is None else sol.certificate.source,
            "bound_covers": None if sol.certificate is None else sol.certificate.covers,
            "work": sol.work,
            "round_objective": sol.round_objective,
            "relaxation_time": sol.relaxation_time,
            "integer_time": sol.integer_time,
            "moves": sol.moves,
            "lots": sol.lots,
            "tracking_error_before": float(np.sqrt(root.variance(state.weights - rs.targets))),
            "tracking_error_after": float(np.sqrt(root.variance(w_after - rs.targets))),
            "slacks": {k: s.slack for k, s in sol.slacks.items()},
            "binding": [k for k, s in sol.slacks.items() if s.binding],
            "exact_costs": True,
            "untradable": dict(rs.untradable),
            "notes": sol.notes,
        }
        if sol.mip is not None:
            m = sol.mip
            info.update({
                "mip_solver": m.solver, "mip_status": m.status, "mip_bound": m.bound,
                "mip_proven_optimal": bool(m.proven and m.q is not None and m.bound is not None
                                           and sol.objective - m.bound
                                           <= 2e-9 * abs(sol.objective) + 1e-13),
                "mip_time": m.wall_time,
                "mip_timed_out_objective": sol.mip_timed_out_objective,
                "gap_to_mip_bound": None if m.bound is None else sol.objective - m.bound,
            })
        if self.mode == "exact" and (sol.mip is None or sol.mip.q is None):
            info["fallback"] = "round: " + ("; ".join(sol.notes) or "no MIP plan")
        return RebalancePlan.from_trades(state, rs.targets, sol.shares, self.costs,
                                         self.method, info)

    def execute(self, target_weights: Mapping[str, float], data: Mapping[str, Any],
                broker: Any) -> list[Any]:
        """The seed's executor call: plan from the broker's book and submit the orders."""
        from rebalopt.rebalance._execute import execute_plan

        return execute_plan(self, target_weights, data, broker, self.pending)
