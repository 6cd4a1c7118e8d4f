"""Reliability suite (issue 9): what rebalopt does when things go wrong.

A rebalancer handles money. Under bad data, impossible constraints, failing
solvers or partial fills it must say clearly what happened and never emit half a
plan or an order for a NaN. The modules of this folder check exactly that:

``test_rel_bad_inputs.py``
    A catalogue of bad inputs (one pytest id per case and per entry point:
    naive / band / optimal ``plan``, their ``execute`` through a recording fake
    broker, and ``state_from_broker``). Each must raise
    :class:`rebalopt.errors.InputError` whose ``.asset`` and ``.field`` name the
    culprit, build no plan and make no broker call (no submit, no cancel).
``test_rel_infeasible.py``
    Contradictory constraint sets. ``InfeasibleError.conflicts`` must name the
    conflicting constraints, each with the smallest violation that makes the
    program feasible, checked against amounts worked out by hand; no order is
    sent; a backtest with ``on_error="hold"`` holds (no trade, logged, counted)
    and with ``"raise"`` raises.
``test_rel_diagnosis_oracle.py``
    Random infeasible books: every amount the diagnosis reports is checked against
    the hard program (relaxed by it: feasible; by 0.99 of it: not), every "cannot
    be fixed alone" too.
``test_rel_solver_failure.py``
    A failing solver simulated by wrapping the compiled cvxpy problem's
    ``solve``: raising ``cvxpy.SolverError``, a bad status, a NaN point,
    ``optimal_inaccurate`` (or ``optimal``) with a violated constraint or a wrong
    objective. The fallback chain must be used and recorded on the plan,
    unverifiable answers rejected, ``SolverError`` raised when all fail, no order.
``test_rel_partial_fills.py``
    Participation-capped partial fills in the backtest: each rebalance sees the
    true holdings (and, in ``"account"`` mode, the pending orders); holdings +
    pending never exceed what the plan wanted (no double allocation).
``test_rel_determinism.py``
    Same inputs, same orders bit for bit: repeated calls, fresh objects, and a
    fresh Python process.
``test_rel_properties.py``, ``test_rel_backtest_properties.py``
    Hypothesis: random states, targets, cost models and constraint sets. Every
    hard constraint is re-checked on the emitted trades by formulas written here
    (not the library's ``Constraint.check``), with the costs recomputed from the
    cost models' closed forms; cash identity; no NaN / zero order quantities.
    Random backtests: the accounting identity at every bar against a ledger
    rebuilt from the fills, and costs equal to the models' sums.

Documented behaviours the suite pins down (rather than errors):

* Negative target weights with shorting off: ``NaiveRebalancer`` and
  ``BandRebalancer`` clip them to 0 (``RebalanceConfig.allow_short=False``, as in
  the seed); ``OptimalRebalancer`` with ``LongOnly`` treats the target as a goal
  and ``LongOnly`` as the hard constraint, so the asset lands at 0 (the
  projection), never short.
* A covariance that is not PSD: ``Covariance`` repairs it by clipping
  eigenvalues at zero (nearest PSD matrix in the Frobenius norm) with a
  ``UserWarning`` by default; ``psd="raise"`` rejects it with an ``InputError``.
* A not-held asset with an invalid price is left out of the universe; a target
  for it is then the error (field ``"target weight"``, message naming the price).

Counting. Every catalogue case, infeasible case and solver-failure case calls
:func:`count`, and every hypothesis example too; ``conftest.py`` prints the
totals at the end of the run (``reliability tally``), the figures the issue's
acceptance asks for.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["BASE_PRICES", "TALLY", "cost_by_hand", "count", "tally_path"]

TALLY: Counter[str] = Counter()
"""What this run tried, by kind (``bad_input``, ``infeasible``, ``solver_failure``,
``hypothesis:<test>``)."""


def count(kind: str, n: int = 1) -> None:
    """Add ``n`` to the tally of ``kind``."""
    TALLY[kind] += n


def tally_path() -> Path:
    """Where ``conftest.py`` writes the tally (JSON), per worker."""
    return Path(os.environ.get("REL_TALLY", "/tmp/rebalopt-reliability-tally.json"))


def dump_tally() -> str:
    """The tally as JSON text."""
    return json.dumps(dict(sorted(TALLY.items())), indent=1)


BASE_PRICES = {"A": 10.0, "B": 20.0, "C": 40.0}


def cost_by_hand(trades: np.ndarray, prices: np.ndarray, mult: np.ndarray, adv: np.ndarray,
                 vol: np.ndarray, models: list) -> np.ndarray:
    """Currency cost per asset of ``trades`` (shares) from the closed forms, not the library.

    Spread: ``hs * 1e-4 * |q| p m``; Commission: ``max(ps |q| + bps 1e-4 |q| p m, min) +
    per_order`` on traded assets; MarketImpact: ``coef sigma |q| p m (|q|/ADV)^(e-1)``.
    """
    from rebalopt.costs import Commission, MarketImpact, Spread

    q = np.abs(np.asarray(trades, dtype=float))
    notional = q * prices * mult
    out = np.zeros(len(q))
    for m in models:
        if isinstance(m, Spread):
            out += float(m.half_spread_bps) * 1e-4 * notional
        elif isinstance(m, Commission):
            lin = m.per_share * q + m.bps * 1e-4 * notional
            out += np.where(q > 0, np.maximum(lin, m.minimum) + m.per_order, 0.0)
        elif isinstance(m, MarketImpact):
            with np.errstate(divide="ignore", invalid="ignore"):
                part = np.where(q > 0, (q / adv) ** (m.exponent - 1.0), 0.0)
            out += np.where(q > 0, m.coef * vol * notional * part, 0.0)
        else:  # pragma: no cover - the suite only draws these three
            raise TypeError(type(m))
    return out
