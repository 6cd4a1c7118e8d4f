"""Error hierarchy: every failure names what went wrong and where.

``RebalanceError`` is the root. Input errors are also ``ValueError`` so generic
callers can catch them the usual way.
"""

from __future__ import annotations

from dataclasses import dataclass


class RebalanceError(Exception):
    """Root of every error raised by rebalopt."""


class InputError(RebalanceError, ValueError):
    """Invalid input, naming the asset (when there is one) and the field.

    Parameters
    ----------
    message
        What is wrong, in words.
    asset
        The ticker concerned, or ``None`` for a portfolio-wide problem.
    field
        The input field concerned (``"price"``, ``"holdings"``, ``"target weight"``...).
    """

    def __init__(self, message: str, *, asset: str | None = None, field: str | None = None):
        self.asset = asset
        self.field = field
        where = []
        if asset is not None:
            where.append(f"asset {asset!r}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message)


@dataclass(frozen=True)
class Conflict:
    """One constraint that must be violated to make a program feasible.

    ``violation`` is the smallest amount (in the constraint's own units, stated in
    ``units``) by which it has to give way.
    """

    constraint: str
    violation: float
    units: str = "weight"

    def __str__(self) -> str:
        return f"{self.constraint} (violated by {self.violation:.6g} {self.units})"


class InfeasibleError(RebalanceError):
    """No trade satisfies the hard constraints; ``conflicts`` names the culprits."""

    def __init__(self, message: str, conflicts: list[Conflict] | None = None):
        self.conflicts = list(conflicts or [])
        detail = "; ".join(str(c) for c in self.conflicts)
        super().__init__(f"{message}: {detail}" if detail else message)


class SolverError(RebalanceError):
    """Every solver in the fallback chain failed or returned an unverifiable answer."""

    def __init__(self, message: str, attempts: list[tuple[str, str]] | None = None):
        self.attempts = list(attempts or [])
        detail = ", ".join(f"{s}: {st}" for s, st in self.attempts)
        super().__init__(f"{message} ({detail})" if detail else message)


def solver_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised inside a solver call, is the solver failing.

    Any ``Exception`` (``RuntimeError``, ``MemoryError``, ``KeyError``, ``OSError``,
    cvxpy's ``SolverError``...) and a Rust panic surfacing through PyO3
    (``pyo3_runtime.PanicException``, a ``BaseException``) are: the fallback chain
    records them and tries the next solver, and :class:`SolverError` is raised when
    every solver failed. ``KeyboardInterrupt``, ``SystemExit`` and
    ``GeneratorExit`` are not (they stop the program as usual).
    """
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        return False
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"
