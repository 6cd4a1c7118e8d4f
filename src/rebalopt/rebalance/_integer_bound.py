"""Lower bounds for the integer stage and the certificate reported on the plan.

Three bounds, each valid over a stated set of plans:

* the continuous relaxation's objective (every plan meeting the hard constraints,
  whole lots or not), less the relaxation solver's tolerance;
* an exhaustive enumeration of a box that provably holds the optimum
  (:meth:`rebalopt.rebalance._integer_exact.Enumeration.exact`): the plan *is*
  the optimum;
* a MIP solver's dual bound (``exact`` mode). It covers the plans the MIP
  represents: whole-lot trades, so not the close of an odd-lot position when one is
  possible; its cost is exact at whole lots (a 3/2-power impact by secants through
  consecutive lot counts) or below the real cost (tangents), so the bound holds for
  the real cost either way. The solver's "optimal" status is a proof about its own
  model; the plan is reported proven only when the *real* objective of the plan,
  re-priced with the cost models, is within ``PROOF_TOL`` of a valid bound.

Units: fractions of pre-trade equity.
"""

from __future__ import annotations

import numpy as np

from rebalopt._typing import FloatArray
from rebalopt.rebalance._integer_exact import Certificate

__all__ = ["PROOF_TOL", "RELAX_TOL", "certificate", "inverse_diagonal"]

PROOF_TOL = 1e-9
"""Relative gap (to ``|objective|``, plus ``1e-13``) under which a plan counts as proven."""

RELAX_TOL = 1e-7
"""Relative allowance for the relaxation solver's own optimality gap in its bound."""


def inverse_diagonal(G: np.ndarray, s: FloatArray, max_dense: int = 400) -> FloatArray | None:
    """``diag(Sigma^-1)`` for ``Sigma = G G' + diag(s^2)``, or ``None`` when singular.

    Dense inverse up to ``max_dense`` assets; beyond, Woodbury when every ``s > 0``.
    """
    n = s.shape[0]
    if n <= max_dense:
        S = G @ G.T + np.diag(s * s)
        try:
            c = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            return None
        Li = np.linalg.solve(c, np.eye(n))
        return (Li * Li).sum(axis=0)
    if not (s > 0).all():
        return None
    Dinv = 1.0 / (s * s)
    GD = G * Dinv[:, None]
    K = np.eye(G.shape[1]) + G.T @ GD
    try:
        M = np.linalg.solve(K, GD.T)  # (k, n)
    except np.linalg.LinAlgError:
        return None
    return Dinv - (GD * M.T).sum(axis=1)


def certificate(objective: float, relaxation: float, *, enumeration: bool = False,
                mip_bound: float | None = None, mip_covers_all: bool = False) -> Certificate:
    """The tightest valid bound at hand and whether it proves ``objective`` optimal."""
    relax_lb = relaxation - RELAX_TOL * abs(relaxation) - 1e-13
    best = Certificate(relax_lb, "relaxation",
                       "every plan meeting the hard constraints (fractional shares too)")
    if mip_bound is not None and np.isfinite(mip_bound):
        lb = mip_bound - PROOF_TOL * abs(mip_bound) - 1e-13
        if mip_covers_all and lb > best.lower_bound:
            best = Certificate(lb, "mip", "every whole-lot plan meeting the hard constraints")
        elif not mip_covers_all and lb > best.lower_bound:
            best.covers += ("; the MIP bound (not used) covers only whole-lot trades, not "
                            "closing an odd-lot position")
    if enumeration:
        best = Certificate(objective, "enumeration",
                           "every plan meeting the hard constraints (whole lots and closes "
                           "of odd-lot positions), by enumerating a box that holds the "
                           "optimum")
    tol = PROOF_TOL * abs(objective) + 1e-13
    best.proven_optimal = objective - best.lower_bound <= tol + PROOF_TOL * abs(objective)
    return best
