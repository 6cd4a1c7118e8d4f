"""The accounts a batch rebalances and what it returns (:func:`~rebalopt.rebalance.batch.rebalance_many`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from rebalopt.errors import InputError
from rebalopt.rebalance.plan import RebalancePlan
from rebalopt.state import PortfolioState

__all__ = ["Account", "AccountError", "BatchResult", "Rebalancer"]


class Rebalancer(Protocol):
    """Anything with ``plan(state, targets) -> RebalancePlan`` (naive, band, optimal)."""

    def plan(self, state: PortfolioState, targets: Any) -> RebalancePlan: ...


@dataclass(frozen=True)
class Account:
    """One account to rebalance.

    Parameters
    ----------
    name
        Unique identifier of the account (used to key the results).
    state
        Holdings (shares), cash (currency) and prices of the account.
    targets
        Target weights (fractions of the account's equity): a Series or mapping
        keyed by ticker, or an optimizer's object (skfolio, riskfolio-lib,
        PyPortfolioOpt); names are matched, a bare array is an error.
    constraints
        Constraints added to the rebalancer's own for this account only (for
        example a restricted list or a cash floor). Accounts with equal extra
        constraints and the same universe share one compiled problem; the
        rebalancer must be a dataclass with a ``constraints`` field.
    """

    name: str
    state: PortfolioState
    targets: Any
    constraints: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"account name must be a non-empty string, got {self.name!r}",
                             field="account")
        if not isinstance(self.state, PortfolioState):
            raise InputError(
                f"account {self.name!r}: state must be a PortfolioState, "
                f"got {type(self.state).__name__}", field="state",
            )
        object.__setattr__(self, "constraints", tuple(self.constraints))


@dataclass(frozen=True)
class AccountError:
    """Why one account has no plan: the exception's type name and message."""

    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass
class BatchResult:
    """Plans of the accounts that succeeded, errors of those that failed, one frame.

    ``frame`` has one row per account in input order, with columns ``account``,
    ``status`` (``"ok"`` / ``"error"``), ``n_trades``, ``turnover`` (one-way,
    fraction of equity), ``cost`` (currency), one ``cost_<model>`` column per cost
    model (currency), ``equity`` (currency), ``error_type``, ``error``,
    ``seconds`` (wall time of the account's ``plan`` call), ``worker`` (process id)
    ``reused`` (whether the account re-used a rebalancer copy, i.e. a compiled
    problem, already built in that process) and ``compilations`` (the copy's own
    count of compiled programs after this account, for rebalancers that keep one,
    such as :class:`~rebalopt.rebalance.optimal.OptimalRebalancer`).
    """

    plans: dict[str, RebalancePlan]
    errors: dict[str, AccountError]
    frame: pd.DataFrame = field(repr=False)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every account got a plan."""
        return not self.errors

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (f"BatchResult(accounts={len(self.frame)}, ok={len(self.plans)}, "
                f"errors={len(self.errors)}, wall_seconds={self.wall_seconds:.3f})")
