"""A self-contained HTML report of a comparison: plots as base64 PNG, tables inline.

The file needs no server and no other file: open it in any browser.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from rebalopt.research.plots import (
    plot_drift,
    plot_equity,
    plot_frontier,
    plot_turnover,
)
from rebalopt.research.quality import equal_te_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebalopt.research.compare import Comparison

__all__ = ["PLOT_IDS", "summary_table", "write_report"]

PLOT_IDS = ("plot-frontier", "plot-equity", "plot-turnover", "plot-drift")
"""The ``id`` of each embedded plot, in order (tests look for every one)."""

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:0.92em}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def summary_table(cmp: Comparison) -> pd.DataFrame:
    """The report's table: one row per run, readable units (% and bps)."""
    t = cmp.table
    cost_cols = [c for c in t.columns if c.startswith("cost_") and c.endswith("_bps")]
    out = pd.DataFrame({
        "kind": t["kind"],
        "TE (%/yr)": 100 * t["tracking_error"],
        "cost (bps/yr)": t["cost_bps"],
        **{c[5:-4] + " (bps/yr)": t[c] for c in cost_cols},
        "turnover (%/yr)": 100 * t["turnover"],
        "orders": t["n_orders"],
        "rebalances": t["n_rebalances"],
        "held": t["n_held"],
        "net return (%/yr)": 100 * t["net_return"],
        "max DD (%)": 100 * t["max_drawdown"],
    })
    out.index.name = "run"
    return out


def write_report(cmp: Comparison, path: str | Path, title: str = "rebalopt: naive vs band vs "
                 "optimal rebalancing", description: str = "") -> Path:
    """Write the HTML report of ``cmp`` to ``path`` (folders created) and return the path.

    Contents: the set-up, the cost / tracking-error frontier of every run, equity
    and drawdown curves, turnover per rebalance, the weight-drift heatmap, the
    summary table (``id="summary"``) and, when optimal runs exist, the comparison
    at equal tracking error (``id="equal-te"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figs = [
        ("plot-frontier", "Cost against realized tracking error", plot_frontier(cmp)),
        ("plot-equity", "Equity and drawdown", plot_equity(cmp)),
        ("plot-turnover", "Turnover per rebalance", plot_turnover(cmp)),
        ("plot-drift", "Weight drift", plot_drift(cmp)),
    ]
    feed = cmp.feed
    s = cmp.settings
    dates = cmp.targets.index
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    parts.append(
        "<h2>Set-up</h2><ul>"
        f"<li>{feed.n_assets} assets, {feed.n_bars} daily bars "
        f"{feed.dates[0].date()} to {feed.dates[-1].date()}; {len(dates)} decision dates "
        f"from {dates[0].date()} to {dates[-1].date()}.</li>"
        f"<li>Initial book {s['initial_cash']:,.0f} in cash; {s['account']} account; "
        f"{'fractional' if s['fractional'] else 'whole'} shares; fills at the decision "
        "date's close.</li>"
        f"<li>Costs charged by the broker on every fill: "
        f"{html.escape('; '.join(s['costs']))}.</li>"
        "<li>Every run sees the same targets on the same dates and makes the same funding "
        "trade on the first one (its cost, <code>initial_cost_bps</code>, is left out).</li>"
        "<li>Tracking error: sample standard deviation of daily return differences against "
        "the cost-free paper portfolio (exactly the targets after every decision date, "
        "drifting in between), times sqrt(252). Cost: bps of average equity per year.</li>"
        "</ul>")
    for pid, caption, fig in figs:
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(f"<img id='{pid}' alt='{html.escape(caption)}' "
                     f"src='data:image/png;base64,{_png(fig)}'>")
    parts.append("<h2>Summary</h2>")
    parts.append(summary_table(cmp).to_html(table_id="summary", float_format=lambda x: f"{x:,.2f}"))
    if (cmp.table["kind"] == "optimal").any() and (cmp.table["kind"] != "optimal").any():
        eq = equal_te_table(cmp.table)
        view = pd.DataFrame({
            "kind": eq["kind"], "TE (%/yr)": 100 * eq["tracking_error"],
            "cost (bps/yr)": eq["cost_bps"], "optimal at same TE (bps/yr)": eq["optimal_cost_bps"],
            "optimal / run": eq["ratio"], "how": eq["how"],
        })
        parts.append("<h2>At equal tracking error</h2><p class='note'>The optimal frontier's "
                     "cost at each run's own realized tracking error, interpolated linearly "
                     "between efficient optimal runs; a ratio below 1 means the optimal "
                     "rebalancer pays less for the same tracking. 'bound': the run's TE is "
                     "beyond the frontier's largest; the cost shown is that of the frontier "
                     "point with lower TE.</p>")
        parts.append(view.to_html(table_id="equal-te", float_format=lambda x: f"{x:,.3f}"))
    parts.append("<p class='note'>Generated by rebalopt.research.write_report.</p></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
