"""From desk files to an order file with the command line, on real prices.

Writes holdings, targets and prices CSVs (skfolio's S&P 500 prices; targets from
skfolio's minimum-variance model) and a TOML config into a folder, then runs
``rebalopt rebalance`` on them. Run: ``python examples/order_file_from_csv.py [folder]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from skfolio.optimization import MeanRisk

from rebalopt.adapters import to_target_weights
from rebalopt.cli import main as rebalopt
from rebalopt.datasets import load_demo_prices

CONFIG = """\
[account]
cash = 20000.0

[rebalancer]
method = "optimal"

[optimal]
risk_aversion = 100.0
horizon = 0.0833

[constraints]
max_weight = 0.40
groups = ["Health Care <= 0.60"]

[costs.commission]
per_share = 0.005
minimum = 1.0

[costs.spread]
half_spread_bps = 5.0

[risk]
model = "sample"
returns = "returns.csv"
"""

SECTORS = {"JNJ": "Health Care", "MRK": "Health Care", "PFE": "Health Care",
           "UNH": "Health Care", "LLY": "Health Care"}


def write_inputs(folder: Path) -> None:
    prices = load_demo_prices()
    returns = prices.pct_change().iloc[-253:].dropna()
    targets = to_target_weights(MeanRisk().fit(returns))
    then, now = prices.iloc[-64], prices.iloc[-1]
    holdings = np.floor(980_000.0 * targets / then)
    holdings = holdings[holdings > 0]
    pd.DataFrame({"ticker": holdings.index, "shares": holdings.to_numpy()}).to_csv(
        folder / "holdings.csv", index=False)
    pd.DataFrame({"ticker": targets.index, "weight": targets.to_numpy()}).to_csv(
        folder / "targets.csv", index=False)
    pd.DataFrame({"ticker": now.index, "price": now.to_numpy(),
                  "sector": [SECTORS.get(t, "Other") for t in now.index]}).to_csv(
        folder / "prices.csv", index=False)
    returns.to_csv(folder / "returns.csv")
    (folder / "rebalance.toml").write_text(CONFIG)


def run(folder: Path) -> int:
    write_inputs(folder)
    code = rebalopt([
        "rebalance", "--holdings", str(folder / "holdings.csv"),
        "--targets", str(folder / "targets.csv"), "--prices", str(folder / "prices.csv"),
        "--config", str(folder / "rebalance.toml"), "--out", str(folder / "orders.csv"),
    ])
    if code == 0:
        print((folder / "orders.csv").read_text())
    return code


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(run(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(run(Path(tmp)))
