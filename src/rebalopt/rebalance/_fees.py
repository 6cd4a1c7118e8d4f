"""OptimalRebalancer's fee reserve: non-convex fees held back from cash."""

from __future__ import annotations

from typing import Any

import numpy as np

from rebalopt._naming import unique_names
from rebalopt._typing import FloatArray
from rebalopt.constraints import Point, Slack
from rebalopt.errors import InfeasibleError, SolverError
from rebalopt.rebalance._problem import (
    RawSolution,
    convex_costs,
)
from rebalopt.rebalance._solution import (
    FEE_RESERVE_ROUNDS,
    OptimalSolution,
    _Root,
)
from rebalopt.rebalance.plan import evaluate_costs
from rebalopt.state import PortfolioState

__all__: list[str] = []


def no_trade_or_raise(hold: Any, exc: InfeasibleError, reserve: float, rounds: int,
                      what: str) -> Any:
    """The way out when no plan holds with the fees reserved: not trading (no fee),
    ``hold``, when it satisfies every hard constraint (``None`` if not), recorded
    with the reserve and the round; else :class:`InfeasibleError` naming ``what``
    (``"trade"``, ``"schedule"``) with ``exc``'s conflicts."""
    if hold is None:
        raise InfeasibleError(
            f"no {what} satisfies the hard constraints once commission minimums and "
            f"per-order fees ({reserve:.6g} of equity) are reserved from cash",
            exc.conflicts) from exc
    hold.fee_reserve, hold.fee_rounds = reserve, rounds
    return hold


class FeeReserve:
    """The fee reserve: commission minimums and per-order fees held back from cash as
    an extra right-hand side (mixed into OptimalRebalancer)."""

    def _full_cost(self, z: FloatArray, state: PortfolioState) -> float:
        """Every cost model's full charge (``evaluate``: minimums and per-order fees
        included) on the trades ``z``, a fraction of equity, as the plan charges it."""
        paid = [m for m in self.costs if m.paid_at_trade]
        if not paid:
            return 0.0
        unit = state.prices * state.multipliers
        shares = z * state.equity / unit
        return float(sum(evaluate_costs(paid, shares, state).values()).sum()
                     ) / state.equity

    def _no_trade(self, state: PortfolioState, w_t: FloatArray, root: _Root,
                  alpha: FloatArray | None) -> OptimalSolution | None:
        """The no-trade solution when it satisfies every hard constraint, else ``None``."""
        raw = RawSolution(solver="none", status="optimal", z=np.zeros(state.n),
                          objective=None, solve_time=0.0, iterations=0, wall_time=0.0)
        sol, _ = self._verify(raw, state, w_t, root, alpha, [])
        if sol is not None:
            sol.slacks.update(self._floor_slacks(sol, state, w_t))
        return sol

    def _floor_slacks(self, sol: OptimalSolution, state: PortfolioState, w_t: FloatArray
                      ) -> dict[str, Slack]:
        """Slack of every cash floor with the full charged cost paid from cash."""
        point = Point.from_trades(state, w_t, sol.z, self._full_cost(sol.z, state))
        names = unique_names(self.constraints)
        return {nm: c.check(point, self.feasibility_tol)
                for nm, c in zip(names, self.constraints) if c.cash_floor() is not None}

    def _reserve_fees(self, sol: OptimalSolution, state: PortfolioState, w_t: FloatArray,
                      root: _Root, alpha: FloatArray | None,
                      frozen: np.ndarray | None = None) -> OptimalSolution:
        """Hold every hard :class:`~rebalopt.constraints.CashFloor` with the cost the
        plan is really charged.

        Commission minimums and per-order fees are not convex, so the program pays
        only their linear part from cash. When the full charge breaks a hard floor,
        the program is solved again with every floor raised by the non-convex part of
        the fees (full minus convex cost at the last solution, never lowered between
        rounds; a later round adds what is still missing, since the convex part moves
        with the trades), up to :data:`FEE_RESERVE_ROUNDS` times, until the floor holds
        within a tenth of ``feasibility_tol``. ``sol.fee_reserve`` and ``sol.fee_rounds``
        say what was done. When the constraints cannot hold with the fees reserved,
        not trading (no fee) is returned if it satisfies every hard constraint, else
        :class:`~rebalopt.errors.InfeasibleError`; :class:`~rebalopt.errors.SolverError`
        if the floor still does not hold after the rounds. The reserve is an extra
        right-hand side of the program (cash held back from every row on post-trade
        cash); the constraint objects are never modified.
        """
        floors = [c for c in self.constraints if c.cash_floor() is not None]
        if not floors or all(m.exact_in_optimizer for m in self.costs):
            return sol
        sol.slacks.update(self._floor_slacks(sol, state, w_t))
        reserve = 0.0
        attempts = list(sol.attempts)
        for rounds in range(1, FEE_RESERVE_ROUNDS + 1):
            bad = [nm for nm, c in zip(unique_names(self.constraints), self.constraints)
                   if c.cash_floor() is not None and not c.soft
                   and sol.slacks[nm].violation > 0.1 * self.feasibility_tol]
            if not bad:
                return sol
            convex = float(sum(convex_costs(self.costs, sol.z, state).values()))
            short = max(sol.slacks[nm].violation for nm in bad)
            # the fees the program cannot see at this solution; or, when the reserve
            # already holds them, what is still missing (the convex part moved)
            reserve = max(reserve + short, self._full_cost(sol.z, state) - convex)
            reserve += 0.5 * self.feasibility_tol  # land inside the floor, not on it
            try:
                sol = self._solve_chain(state, w_t, root, alpha, frozen, reserve)
            except InfeasibleError as exc:
                hold = no_trade_or_raise(self._no_trade(state, w_t, root, alpha), exc,
                                         reserve, rounds, "trade")
                hold.attempts = [*attempts, ("no trade [fees cannot be reserved]",
                                             hold.status)]
                return hold
            # the slacks against the floors as given (names too), with the full charge
            point = self.point(sol.z, state, w_t)
            sol.slacks = {nm: c.check(point, self.feasibility_tol)
                          for nm, c in zip(unique_names(self.constraints), self.constraints)}
            sol.slacks.update(self._floor_slacks(sol, state, w_t))
            attempts += [(f"{label} [fee reserve {reserve:.3g}]", st)
                         for label, st in sol.attempts]
            sol.attempts = attempts
            sol.fee_reserve, sol.fee_rounds = reserve, rounds
        bad = [nm for nm, c in zip(unique_names(self.constraints), self.constraints)
               if c.cash_floor() is not None and not c.soft and not sol.slacks[nm].satisfied]
        if bad:
            worst = sol.slacks[bad[0]]
            raise SolverError(
                f"{worst.constraint} violated by {worst.violation:.3g} with the commission "
                f"actually charged after {FEE_RESERVE_ROUNDS} rounds of fee reserve",
                attempts)
        return sol

