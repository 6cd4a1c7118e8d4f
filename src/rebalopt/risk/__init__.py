"""Tracking-error risk models, served as factored roots ``Sigma = G G' + diag(s^2)``.

Every model is annualized ((fraction of equity)^2 per year) except :class:`Identity`
(plain squared weight distance). ``model.root(state)`` gives a :class:`RiskRoot`
aligned to ``state.assets`` and cached per asset order.
"""

from rebalopt.risk.base import MissingPolicy, RiskModel
from rebalopt.risk.covariance import Covariance, PsdPolicy
from rebalopt.risk.diagonal import Diagonal
from rebalopt.risk.estimators import (
    NanPolicy,
    ledoit_wolf_shrinkage,
    pca_factor_model,
    sample_covariance,
)
from rebalopt.risk.factor import FactorModel
from rebalopt.risk.identity import Identity
from rebalopt.risk.root import RiskRoot

__all__ = [
    "Covariance",
    "Diagonal",
    "FactorModel",
    "Identity",
    "MissingPolicy",
    "NanPolicy",
    "PsdPolicy",
    "RiskModel",
    "RiskRoot",
    "ledoit_wolf_shrinkage",
    "pca_factor_model",
    "sample_covariance",
]
