"""Adapters: target weights from other optimizers, and rebalopt inside other engines.

``rebalopt.adapters.ml4t`` (the ml4t.backtest executor) needs Python >= 3.12 and
``pip install 'rebalopt[ml4t]'``; it is imported on its own, not from here.
"""

from rebalopt.adapters.weights import to_target_weights

__all__ = ["to_target_weights"]
