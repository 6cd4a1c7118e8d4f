"""The one model: declared cost terms and constraint rows, and what builds programs from them.

* :mod:`rebalopt.program.terms`: what a cost model declares (:class:`CostTerms`).
* :mod:`rebalopt.program.layout`: the named blocks (``z``, ``t``, ``w``, ``cash``,
  ``cost``, ``aux``) constraint rows are declared over (:class:`MatrixLayout`,
  :class:`MatrixRows`).
* :mod:`rebalopt.program.builder`: the one program builder (:class:`ProgramBuilder`),
  declared terms and rows -> the conic program (:class:`ConicProgram`), normal or elastic.
* :mod:`rebalopt.program.blocks`: its row blocks (cost columns, risk rows, ``t >= |z|``,
  power cones, constraint rows with slacks), which the stacked multi-period program
  appends once per period view of the layout.
* :mod:`rebalopt.program.cvxpy_backend`: that program in cvxpy (``to_cvxpy``, the
  parametric :class:`~rebalopt.program.cvxpy_backend.ParametricProgram`).
* :mod:`rebalopt.program.cvxpy_costs`: the cvxpy face of cost terms (:class:`CvxpyCost`).
"""

from rebalopt.program.builder import ConicProgram, ProgramBuilder
from rebalopt.program.cvxpy_costs import CvxpyCost, cost_expression
from rebalopt.program.layout import MatrixLayout, MatrixRows
from rebalopt.program.terms import AuxTerm, CostTerms, PerOrder, PowerTerm, combine_terms

__all__ = [
    "AuxTerm",
    "ConicProgram",
    "CostTerms",
    "CvxpyCost",
    "MatrixLayout",
    "MatrixRows",
    "PerOrder",
    "PowerTerm",
    "ProgramBuilder",
    "combine_terms",
    "cost_expression",
]
