"""Group (sector) bounds on post-trade weights, absolute or relative to the target.

Units: weights are fractions of pre-trade equity.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rebalopt._checks import number
from rebalopt._typing import FloatArray
from rebalopt.constraints._base import (
    Constraint,
    MatrixLayout,
    MatrixRows,
    Point,
    universe_memo,
)
from rebalopt.errors import InputError
from rebalopt.program.search import Kernel, LinearRows
from rebalopt.state import PortfolioState

__all__ = ["GroupBounds"]

GroupBound = float | Mapping[str, float] | None

UNLABELED = ("raise", "ignore", "own group")
"""Policies of :class:`GroupBounds` for an asset with no group label."""

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?"
_REL = rf"target\s*(?:(?P<sign>[-+])\s*(?P<off>{_NUM}))?"


def _number(text: str) -> float:
    text = text.strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    return float(text)


def _rhs(text: str) -> tuple[float, bool]:
    """A right-hand side: a number (absolute) or ``target [+-] number`` (relative)."""
    text = text.strip()
    m = re.fullmatch(_REL, text)
    if m:
        off = _number(m.group("off")) if m.group("off") else 0.0
        return (-off if m.group("sign") == "-" else off), True
    if re.fullmatch(_NUM, text):
        return _number(text), False
    raise InputError(f"cannot read bound {text!r}: expected a number or 'target +/- number'",
                     field="GroupBounds")


@dataclass
class GroupBounds(Constraint):
    r"""Bounds on the total post-trade weight of each group (for example a sector).

    .. math:: l_g \le \sum_{i \in g} w_i \le u_g

    With ``relative=True`` the bounds are offsets from the target's group weight:
    :math:`\sum_{i\in g} w^*_i + l_g \le \sum_{i \in g} w_i \le \sum_{i\in g} w^*_i + u_g`.

    Parameters
    ----------
    upper, lower
        Per group: a number for every group present in the universe, or a mapping
        group -> bound (fraction of equity; offsets when ``relative``). ``None``:
        no bound on that side.
    relative
        Bounds relative to the target's group weights.
    labels
        Group label per ticker; ``None`` uses ``state.groups``.
    unlabeled
        What an asset of the universe with no group label means:

        - ``"raise"`` (default): an :class:`~rebalopt.errors.InputError` naming the
          asset and this constraint (field ``"GroupBounds"``). An unlabeled asset
          would otherwise escape every group bound.
        - ``"ignore"``: the asset belongs to no group and no group bound limits it.
        - ``"own group"``: the asset is a group of its own, named by its ticker; a
          scalar ``upper`` / ``lower`` (a bound on every group) applies to it, a
          mapping does not name it.

    Examples
    --------
    >>> GroupBounds.from_text(["Information Technology <= 0.25", "Energy >= 2%"])
    ... # doctest: +SKIP
    >>> GroupBounds.from_text("Financials <= target + 0.05; Financials >= target - 0.05")
    ... # doctest: +SKIP
    """

    upper: GroupBound = None
    lower: GroupBound = None
    relative: bool = False
    labels: Mapping[str, str] | None = None
    unlabeled: str = "raise"
    soft: bool = False
    penalty: float = 1.0
    label: str | None = None
    _text: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate_soft()
        if self.upper is None and self.lower is None:
            raise InputError("give upper, lower or both", field="GroupBounds")
        if self.unlabeled not in UNLABELED:
            raise InputError(f"must be one of {', '.join(map(repr, UNLABELED))}, got "
                             f"{self.unlabeled!r}", field="GroupBounds.unlabeled")
        for side in (self.upper, self.lower):
            if side is None:
                continue
            pairs = [(None, side)] if np.isscalar(side) else list(side.items())  # type: ignore
            for g, v in pairs:
                where = "" if g is None else f"group {str(g)!r}: "
                try:
                    x = number(v, "GroupBounds")
                except InputError:
                    raise InputError(f"{where}bound must be a number, got {v!r}",
                                     field="GroupBounds") from None
                if not np.isfinite(x):
                    raise InputError(f"{where}bound must be finite, got {v}",
                                     field="GroupBounds")
        self._check_order()

    def _check_order(self) -> None:
        """Reject a group whose lower bound is above its upper bound (no state needed)."""
        if self.upper is None or self.lower is None:
            return
        scalar_up, scalar_lo = np.isscalar(self.upper), np.isscalar(self.lower)
        up = {} if scalar_up else {str(g): float(v) for g, v in self.upper.items()}  # type: ignore[union-attr]
        lo = {} if scalar_lo else {str(g): float(v) for g, v in self.lower.items()}  # type: ignore[union-attr]
        if scalar_up and scalar_lo:
            pairs = [("every group", float(self.lower), float(self.upper))]  # type: ignore[arg-type]
        elif scalar_up:
            pairs = [(g, v, float(self.upper)) for g, v in lo.items()]  # type: ignore[arg-type]
        elif scalar_lo:
            pairs = [(g, float(self.lower), v) for g, v in up.items()]  # type: ignore[arg-type]
        else:
            pairs = [(g, lo[g], up[g]) for g in lo if g in up]
        for g, a, b in pairs:
            if a > b:
                where = g if g == "every group" else f"group {g!r}"
                raise InputError(f"{where}: lower bound {a:g} above upper bound {b:g}",
                                 field="GroupBounds")

    # ------------------------------------------------------------------ text
    @classmethod
    def from_text(cls, text: str | Iterable[str], *, labels: Mapping[str, str] | None = None,
                  soft: bool = False, penalty: float = 1.0,
                  label: str | None = None, unlabeled: str = "raise") -> GroupBounds:
        """Parse lines like ``"Information Technology <= 0.25"``.

        Accepted forms, one per line (or separated by ``;``): ``G <= x``,
        ``G >= x``, ``x <= G <= y``, where ``x`` is a number (``0.25`` or ``25%``)
        or ``target``, ``target + 0.05``, ``target - 5%`` (relative to the target's
        group weight). All lines of one object must be all absolute or all relative,
        and give each group at most one upper and one lower bound (a second one is an
        :class:`~rebalopt.errors.InputError` naming the group, never the later
        overwriting the earlier). ``<`` and ``>`` are read as ``<=`` and ``>=``.
        ``unlabeled`` is the policy for assets with no group label (see the class).
        """
        lines = [text] if isinstance(text, str) else list(text)
        parts = [p.strip() for line in lines for p in re.split(r"[;\n]", line) if p.strip()]
        upper: dict[str, float] = {}
        lower: dict[str, float] = {}
        rel: set[bool] = set()

        def put(bounds: dict[str, float], g: str, x: float, side: str) -> None:
            # a second bound on the same side would overwrite the first: the looser one
            # of "Energy <= 0.2" and "Energy <= 0.3" could win, silently
            if g in bounds:
                raise InputError(f"group {g!r} has two {side} bounds ({bounds[g]:g} and "
                                 f"{x:g}): keep one", asset=g, field="GroupBounds")
            bounds[g] = x

        for p in parts:
            m = re.fullmatch(r"(?P<a>.+?)\s*<=\s*(?P<g>.+?)\s*<=\s*(?P<b>.+)", p)
            if m:
                (lo, r1), (hi, r2) = _rhs(m.group("a")), _rhs(m.group("b"))
                g = m.group("g").strip()
                put(lower, g, lo, "lower")
                put(upper, g, hi, "upper")
                rel |= {r1, r2}
                continue
            m = re.fullmatch(r"(?P<g>.+?)\s*(?P<op><=|>=|<|>)\s*(?P<x>.+)", p)
            if not m:
                raise InputError(f"cannot read group bound {p!r}: expected 'Group <= x'",
                                 field="GroupBounds")
            x, r = _rhs(m.group("x"))
            g = m.group("g").strip()
            if m.group("op").startswith("<"):
                put(upper, g, x, "upper")
            else:
                put(lower, g, x, "lower")
            rel.add(r)
        if len(rel) > 1:
            raise InputError("mixes absolute and target-relative bounds; use two GroupBounds",
                             field="GroupBounds")
        return cls(upper=upper or None, lower=lower or None, relative=rel == {True},
                   labels=labels, unlabeled=unlabeled, soft=soft, penalty=penalty,
                   label=label, _text="; ".join(parts))

    def describe(self) -> str:
        if self._text:
            return f"GroupBounds[{self._text}]"
        kind = "relative" if self.relative else "absolute"
        return f"GroupBounds({kind})"

    # ------------------------------------------------------------ numerics
    def _labels(self, state: PortfolioState) -> np.ndarray:
        if self.labels is None:
            labels = state.groups
        else:
            import pandas as pd

            s = pd.Series(self.labels, dtype=object)
            s.index = s.index.map(str)
            labels = np.array([None if pd.isna(v) else str(v)
                               for v in s.reindex(state.assets).to_numpy()], dtype=object)
        missing = np.array([g is None for g in labels], dtype=bool)
        if not missing.any() or missing.all() or self.unlabeled == "ignore":
            return labels  # all missing: _layout says "no group labels"
        if self.unlabeled == "raise":
            asset = str(state.assets[np.flatnonzero(missing)[0]])
            raise InputError(
                f"asset has no group label, so {self.name} cannot bound it "
                f"({int(missing.sum())} unlabeled asset(s)); label it (groups= of the state "
                "or labels=) or choose GroupBounds(unlabeled='ignore' or 'own group')",
                asset=asset, field="GroupBounds")
        labels = labels.copy()
        labels[missing] = [str(a) for a in state.assets[missing]]  # "own group"
        return labels

    def _side(self, side: GroupBound, present: list[str]) -> dict[str, float]:
        if side is None:
            return {}
        if np.isscalar(side):
            return {g: float(side) for g in present}  # type: ignore[arg-type]
        out = {str(g): float(v) for g, v in side.items()}  # type: ignore[union-attr]
        for g in out:
            if g not in present:
                raise InputError(f"group {g!r} has no asset in the universe "
                                 f"(groups: {', '.join(present[:12])})", field="GroupBounds")
        return out

    def _inputs(self) -> tuple[object, ...]:
        """The fields the group rows are computed from (besides the universe)."""
        return (self.upper, self.lower, self.labels, self.unlabeled)

    def _layout(self, state: PortfolioState) -> tuple[np.ndarray, list[str], dict[str, float],
                                                     dict[str, float]]:
        """Labels, groups present, and each side's bound per group: once per universe."""
        return universe_memo(self, state, "layout", self._inputs(),
                             lambda: self._layout_of(state))

    def _layout_of(self, state: PortfolioState) -> tuple[np.ndarray, list[str],
                                                         dict[str, float], dict[str, float]]:
        labels = self._labels(state)
        present = sorted({g for g in labels if g is not None})
        if not present:
            raise InputError("no group labels: pass groups= to PortfolioState or labels=",
                             field="GroupBounds")
        return labels, present, self._side(self.upper, present), self._side(self.lower, present)

    @staticmethod
    def _matrix(labels: np.ndarray, names: list[str]) -> sp.csr_matrix:
        code = {g: k for k, g in enumerate(names)}
        cols = [i for i, g in enumerate(labels) if g in code]
        rows = [code[labels[i]] for i in cols]
        return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(names), len(labels)))

    def _compiled(self, state: PortfolioState) -> tuple[FloatArray, FloatArray,
                                                         sp.csr_matrix, sp.csr_matrix,
                                                         list[str]]:
        """Upper and lower bounds (absolute, or offsets from the target's group weights),
        their group matrices and row labels, compiled once per universe
        (:func:`~rebalopt.constraints._base.universe_memo`: the labels and the bounds
        only), looked up once per state (``PortfolioState.memo``)."""
        def compile_() -> tuple[FloatArray, FloatArray, sp.csr_matrix, sp.csr_matrix,
                                list[str]]:
            labels, _, up, lo = self._layout(state)
            Au, Al = self._matrix(labels, list(up)), self._matrix(labels, list(lo))
            names = [f"{g} <= upper" for g in up] + [f"{g} >= lower" for g in lo]
            return (np.array(list(up.values()), dtype=float),
                    np.array(list(lo.values()), dtype=float), Au, Al, names)

        def shared() -> tuple[FloatArray, FloatArray, sp.csr_matrix, sp.csr_matrix,
                              list[str]]:
            return universe_memo(self, state, "group_rows", self._inputs(), compile_)

        return state.memo(self, "group_rows", self._inputs(), shared)

    def _rhs(self, state: PortfolioState, targets: FloatArray) -> tuple[FloatArray, FloatArray,
                                                                        sp.csr_matrix,
                                                                        sp.csr_matrix]:
        hi, lw, Au, Al, _ = self._compiled(state)
        if self.relative:
            hi = hi + Au @ targets
            lw = lw + Al @ targets
        return hi, lw, Au, Al

    def structure(self, state: PortfolioState, targets: FloatArray) -> Hashable:
        return universe_memo(self, state, "structure", self._inputs(),
                             lambda: self._structure_of(state))

    def _structure_of(self, state: PortfolioState) -> Hashable:
        labels, _, up, lo = self._layout(state)
        return tuple(labels), tuple(up), tuple(lo)

    def rows(self, layout: MatrixLayout, state: PortfolioState,
             targets: FloatArray) -> list[MatrixRows]:
        hi, lw, _, _ = self._rhs(state, targets)
        out: list[MatrixRows] = []
        for (row, col, val), rhs in zip(self._coords(state), (hi, -lw)):
            if rhs.size:  # group sums of post-trade weights
                out.append(MatrixRows(row, layout.w[col], val, np.array(rhs, dtype=float)))
        return out

    def _coords(self, state: PortfolioState) -> tuple[tuple[np.ndarray, ...], ...]:
        """``(row, col, val)`` of the upper rows' matrix and of the lower rows' (negated),
        once per universe."""
        def build() -> tuple[tuple[np.ndarray, ...], ...]:
            _, _, Au, Al, _ = self._compiled(state)
            out = []
            for M in (Au, -Al):
                coo = M.tocoo()
                out.append((coo.row, coo.col, coo.data.astype(float)))
            return tuple(out)

        return universe_memo(self, state, "coords", self._inputs(), build)

    def evaluate(self, point: Point) -> tuple[FloatArray, FloatArray]:
        hi, lw, Au, Al = self._rhs(point.state, point.targets)
        return (np.concatenate([Au @ point.w, -(Al @ point.w)]), np.concatenate([hi, -lw]))

    def row_labels(self, state: PortfolioState, targets: FloatArray) -> list[str]:
        return list(self._compiled(state)[4])

    def search_kernel(self, state: PortfolioState, targets: FloatArray) -> list[Kernel]:
        """The group rows as sparse linear rows on ``w`` (:mod:`rebalopt.program.search`),
        built once per state (absolute bounds; target-relative ones follow the target)."""
        def build() -> tuple[LinearRows]:
            hi, lw, Au, Al = self._rhs(state, targets)
            return (LinearRows(sp.vstack([Au, -Al]), np.concatenate([hi, -lw]), state.n),)

        if self.relative:
            return list(build())
        return list(state.memo(self, "search_kernel", (self.upper, self.lower, self.labels,
                                                       self.unlabeled, self.relative), build))
