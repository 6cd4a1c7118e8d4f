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

from rebalopt.errors import InputError
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

__all__ = ["PLOT_IDS", "combine", "runs_table", "summary_table", "write_report"]

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


def html_table(df: pd.DataFrame, table_id: str) -> str:
    """A frame as an HTML table (text escaped)."""
    return df.to_html(table_id=table_id, escape=True)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def summary_table(cmp: Comparison) -> pd.DataFrame:
    """The report's table: one row per run, readable units (% and bps)."""
    t = cmp.table
    # per-model columns only: "cost_bps" itself is the total, shown once
    cost_cols = [c for c in t.columns
                 if c.startswith("cost_") and c.endswith("_bps") and c != "cost_bps"]
    out = pd.DataFrame({
        "kind": t["kind"],
        "TE (%/yr)": 100 * t["tracking_error"],
        "cost (bps/yr)": t["cost_bps"],
        **{c[5:-4] + " (bps/yr)": t[c] for c in cost_cols},
        "cost ($)": t["cost"],
        "turnover (%/yr)": 100 * t["turnover"],
        "orders": t["n_orders"],
        "rebalances": t["n_rebalances"],
        "held": t["n_held"],
        "net return (%/yr)": 100 * t["net_return"],
        "max DD (%)": 100 * t["max_drawdown"],
        **({"cash avg (%)": 100 * t["cash_avg"], "cash max (%)": 100 * t["cash_max"]}
           if "cash_avg" in t else {}),
        "final equity ($)": t["final_equity"],
    })
    out.index.name = "run"
    return out


def runs_table(cmp: Comparison) -> pd.DataFrame:
    """Per run: the rebalancer, the constraints it plans under and the cost models it
    plans with, in words (the broker charges the comparison's costs on every run)."""
    from rebalopt.research.disclose import run_constraints, run_costs

    rows = []
    for run in cmp.runs:
        reb = run.rebalancer
        method = getattr(reb, "method", None)
        rows.append({"run": run.name, "kind": run.kind,
                     "rebalancer": method if isinstance(method, str) else type(reb).__name__,
                     "trades every": f"{run.every} decision date(s)",
                     "constraints": run_constraints(reb), "planning costs": run_costs(reb)})
    return pd.DataFrame(rows).set_index("run")


def combine(cmp: Comparison, other: Comparison) -> Comparison:
    """One comparison from two run on the same data (e.g. :func:`compare` and
    :func:`frontier`): rows, results and runs of both; run names must differ.

    Raises
    ------
    InputError
        Different feeds, targets, initial cash or cost models, or a run name in both.
    """
    from rebalopt.research.compare import Comparison as _Comparison

    same = (cmp.feed.dates.equals(other.feed.dates)
            and list(cmp.feed.assets) == list(other.feed.assets)
            and cmp.targets.equals(other.targets) and cmp.start == other.start)
    if not same:
        raise InputError("the two comparisons were run on different data or targets",
                         field="frontier")
    for key in ("initial_cash", "account", "fractional", "costs"):
        if cmp.settings.get(key) != other.settings.get(key):
            raise InputError(f"the two comparisons differ in {key}: "
                             f"{cmp.settings.get(key)!r} vs {other.settings.get(key)!r}",
                             field="frontier")
    clash = [n for n in other.results if n in cmp.results]
    if clash:
        raise InputError(f"run {clash[0]!r} is in both comparisons", field="frontier")
    return _Comparison(table=pd.concat([cmp.table, other.table]),
                       results={**cmp.results, **other.results},
                       runs=[*cmp.runs, *other.runs], paper=cmp.paper, targets=cmp.targets,
                       feed=cmp.feed, start=cmp.start, seen={**cmp.seen, **other.seen},
                       settings=dict(cmp.settings))


def write_report(cmp: Comparison, path: str | Path, title: str = "rebalopt: naive vs band vs "
                 "optimal rebalancing", description: str = "", *,
                 frontier: Comparison | None = None, interpolation: str = "linear") -> Path:
    """Write the HTML report of ``cmp`` to ``path`` (folders created) and return the path.

    Contents: the set-up (broker settings included), each run's rebalancer,
    constraints and planning cost models (``id="runs"``), the cost / tracking-error
    frontier of every run, equity and drawdown curves, turnover per rebalance, the
    weight-drift heatmap, the summary table (``id="summary"``, with cash and dollar
    totals) and, when optimal runs exist, the comparison at equal tracking error
    (``id="equal-te"``).

    Parameters
    ----------
    cmp
        The comparison.
    path
        HTML file to write.
    title, description
        Page title and an optional paragraph under it.
    frontier
        A :func:`~rebalopt.research.frontier` run on the same data: its runs join
        the report (:func:`combine`).
    interpolation
        ``"linear"`` or ``"loglog"`` along the optimal frontier in the equal-TE table.
    """
    if frontier is not None:
        cmp = combine(cmp, frontier)
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
        f"<li>Broker: participation cap "
        f"{'none' if s.get('participation') is None else format(s['participation'], '.1%')}"
        f" of each bar's volume; ADV over {s.get('adv_window', 20)} bars, volatility over "
        f"{s.get('vol_window', 20)} bars; no interest on cash.</li>"
        "<li>Every run sees the same targets on the same dates and makes the same funding "
        "trade on the first one (its cost, <code>initial_cost_bps</code>, is left out).</li>"
        "<li>Tracking error: sample standard deviation of daily return differences against "
        "the cost-free paper portfolio (exactly the targets after every decision date, "
        "drifting in between), times sqrt(252). Cost: bps of average equity per year.</li>"
        "</ul>")
    parts.append("<h2>Runs: constraints and cost models</h2><p class='note'>What each run "
                 "plans under. Tolerance bands marked 'cash invested' put the cash they "
                 "leave idle back into the assets below target (the cash columns of the "
                 "summary show what each run held).</p>")
    parts.append(html_table(runs_table(cmp), "runs"))
    for pid, caption, fig in figs:
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(f"<img id='{pid}' alt='{html.escape(caption)}' "
                     f"src='data:image/png;base64,{_png(fig)}'>")
    parts.append("<h2>Summary</h2>")
    parts.append(summary_table(cmp).to_html(table_id="summary", float_format=lambda x: f"{x:,.2f}"))
    if (cmp.table["kind"] == "optimal").any() and (cmp.table["kind"] != "optimal").any():
        eq = equal_te_table(cmp.table, interpolation=interpolation)
        view = pd.DataFrame({
            "kind": eq["kind"], "TE (%/yr)": 100 * eq["tracking_error"],
            "cost (bps/yr)": eq["cost_bps"], "optimal at same TE (bps/yr)": eq["optimal_cost_bps"],
            "optimal / run": eq["ratio"], "how": eq["how"],
        })
        parts.append("<h2>At equal tracking error</h2><p class='note'>The optimal frontier's "
                     "cost at each run's own realized tracking error, interpolated "
                     f"{'in log TE and log cost' if interpolation == 'loglog' else 'linearly'} "
                     "between efficient optimal runs; a ratio below 1 means the optimal "
                     "rebalancer pays less for the same tracking. 'bound': the run's TE is "
                     "beyond the frontier's largest; the cost shown is that of the frontier "
                     "point with lower TE.</p>")
        parts.append(view.to_html(table_id="equal-te", float_format=lambda x: f"{x:,.3f}"))
    parts.append("<p class='note'>Generated by rebalopt.research.write_report.</p></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
