"""Type aliases shared across the package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
"""A one-dimensional float array indexed like ``PortfolioState.assets``."""

AssetValues = Union[pd.Series, Mapping[str, float]]
"""Per-asset values keyed by ticker: a pandas Series or a mapping."""

AssetLabels = Union[pd.Series, Mapping[str, str]]
"""Per-asset labels (for example GICS sectors) keyed by ticker."""
