"""The backtest tests' feed helper, for reliability tests (one copy, imported by path)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backtest"))
from bt_helpers import Scripted, ledger_equity, wide_feed

__all__ = ["Scripted", "ledger_equity", "wide_feed"]
