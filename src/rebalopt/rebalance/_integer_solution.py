"""What the integer stage returns: a verified whole-lot plan and its certificate."""

from __future__ import annotations

from dataclasses import dataclass, field

from rebalopt._typing import FloatArray
from rebalopt.constraints import Slack
from rebalopt.rebalance._integer_exact import Certificate
from rebalopt.rebalance._integer_mip import MipResult
from rebalopt.rebalance.optimal import OptimalSolution

__all__ = ["IntegerSolution"]


@dataclass
class IntegerSolution:
    """A verified integer plan and how it compares with the relaxation.

    Attributes
    ----------
    shares
        Trades in shares, each a whole number of lots.
    lots
        Lot size per asset, shares.
    z
        Trade weights (fractions of pre-trade equity).
    terms
        The integer objective at ``shares`` with the full cost (fractions of equity):
        ``cost``, ``risk``, ``alpha``, ``penalty``, ``total``.
    relaxation
        The continuous solution; its objective is the lower bound.
    method
        Which mode produced the plan: ``"round"`` or ``"exact"``.
    mip
        The MIP's result when it ran.
    slacks
        Slack of every constraint (full-cost point), by name.
    notes
        Fallbacks and discarded answers, in words.
    relaxation_time, integer_time
        Seconds in the relaxation, and beyond it (search, MIP, verification).
    moves
        ``repair``, ``improve``, ``pair`` and ``neighbourhood`` move counts of the
        round search.
    round_objective
        The round plan's objective (full cost), when it met every hard constraint.
    certificate
        The tightest valid lower bound, what it covers, and whether the plan is
        proven optimal (:mod:`rebalopt.rebalance._integer_bound`).
    work
        Work counts of the neighbourhood search and enumeration.
    mip_timed_out_objective
        Objective of the plan the MIP held when ``time_limit`` stopped it (not used,
        as it depends on timing), for comparison; ``None`` otherwise.
    """

    shares: FloatArray
    lots: FloatArray
    z: FloatArray
    terms: dict[str, float]
    relaxation: OptimalSolution
    method: str
    mip: MipResult | None
    slacks: dict[str, Slack]
    notes: list[str]
    relaxation_time: float
    integer_time: float
    moves: dict[str, int] = field(default_factory=dict)
    round_objective: float | None = None
    certificate: Certificate | None = None
    work: dict[str, int] = field(default_factory=dict)
    mip_timed_out_objective: float | None = None

    @property
    def objective(self) -> float:
        """Integer objective, fraction of equity (full cost)."""
        return self.terms["total"]

    @property
    def lower_bound(self) -> float:
        """The relaxation's objective: no integer plan does better (fraction of equity)."""
        return self.relaxation.objective

    @property
    def mip_bound(self) -> float | None:
        """The MIP solver's proven bound, when it ran and the bound survived the check."""
        return None if self.mip is None else self.mip.bound

    @property
    def best_bound(self) -> float:
        """The tightest valid lower bound (the certificate's; else relaxation or MIP)."""
        if self.certificate is not None:
            return self.certificate.lower_bound
        b = self.mip_bound
        return self.lower_bound if b is None else max(self.lower_bound, b)

    @property
    def certified_gap(self) -> float:
        """``objective - best_bound`` (fraction of equity): how far from optimal at most."""
        return self.objective - self.best_bound

    @property
    def gap(self) -> float:
        """``objective - lower_bound`` (fraction of equity); >= 0 up to solver tolerance."""
        return self.objective - self.lower_bound

    @property
    def gap_rel(self) -> float:
        """``gap / |objective|`` (0 when both are 0)."""
        return self.gap / abs(self.objective) if self.objective != 0 else 0.0
