"""A program's structure kept between the states of one structure: coordinates once,
values per state.

Between two states of one structure (the accounts of a batch on one universe, a
backtest's rebalances between universe changes) the rows, columns and cones of the
:class:`~rebalopt.program.builder.ProgramBuilder`'s program do not move: only numbers
do (risk, cost rates, right-hand sides). A :class:`ProgramTemplate` holds what one
state's assembly fixed (coordinates, constant values, where each varying number goes,
and how every declared block resolves: :class:`~rebalopt.program.layout.Resolution`),
so a later state only computes its numbers and writes them in place.

Nothing here knows a cost or a constraint by type: the declared blocks
(:class:`~rebalopt.program.layout.MatrixRows`, a cost model's auxiliary rows and every
constraint's :meth:`~rebalopt.constraints.Constraint.rows`) are still asked for on
every state, the one declaration, and the template is used only while each block has
the same coordinates as when it was kept (compared by value, or by identity when the
declaration hands back the same arrays); anything else builds the template again.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.program.layout import MatrixRows, Resolution

__all__ = ["ProgramTemplate", "declared_values"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def declared_values(blocks: Sequence[MatrixRows]) -> tuple[FloatArray, FloatArray]:
    """The declared blocks' current values and right-hand sides, concatenated in order
    (what the template's stacked :class:`~rebalopt.program.layout.Resolution` reads)."""
    if not blocks:
        return np.zeros(0), np.zeros(0)
    return (np.concatenate([np.asarray(b.val, dtype=float).reshape(-1) for b in blocks]),
            np.concatenate([np.asarray(b.b, dtype=float).reshape(-1) for b in blocks]))


@dataclass
class ProgramTemplate:
    """One structure's program with the numbers of the state that built it.

    ``R``, ``C`` (read-only), ``V0``, ``B0``, ``F``, ``BF``, ``cones`` as in
    :class:`~rebalopt.program.builder.ConicProgram`; the ``v_*`` / ``b_*`` fields say
    where each varying number goes in ``V`` / ``b`` (``None``: absent); ``declared``
    resolves the declared blocks, whose values go to ``v_declared`` / ``b_declared``.
    """

    key: Hashable
    rows: list[tuple[np.ndarray, np.ndarray, int, bool]]
    """Each declared block's ``(row, col, m, main)`` when the template was built."""
    R: np.ndarray
    C: np.ndarray
    V0: FloatArray
    B0: FloatArray
    F: np.ndarray | None
    BF: np.ndarray | None
    cones: list[tuple[str, int, float]]
    declared: Resolution
    """The declared blocks' resolutions stacked (:meth:`Resolution.stacked`)."""
    v_declared: np.ndarray
    b_declared: slice
    v_G: slice | None = None
    b_G: slice | None = None
    v_s: slice | None = None
    b_s: slice | None = None
    v_mask: slice | None = None
    b_hold: slice | None = None
    b_caps: slice | None = None
    hits: int = 0
    """States answered from this template (for tests)."""

    @staticmethod
    def block_key(blocks: Sequence[MatrixRows]) -> list[tuple[np.ndarray, np.ndarray, int, bool]]:
        """What the template compares a state's declared blocks by (copies)."""
        def kept(a: np.ndarray) -> np.ndarray:
            if isinstance(a, np.ndarray) and not a.flags.writeable:
                return a  # cannot change: compared by identity first
            return np.array(a, dtype=np.int64).reshape(-1)

        return [(kept(b.row), kept(b.col), b.m, bool(b.main)) for b in blocks]

    def fits(self, key: Hashable, blocks: Sequence[MatrixRows]) -> bool:
        """Whether a state with ``key`` and declared ``blocks`` has this structure."""
        if key != self.key or len(blocks) != len(self.rows):
            return False
        for b, (row, col, m, main) in zip(blocks, self.rows):
            if b.m != m or bool(b.main) != main:
                return False
            if not (b.col is col or np.array_equal(b.col, col)):
                return False
            if not (b.row is row or np.array_equal(b.row, row)):
                return False
        return True
