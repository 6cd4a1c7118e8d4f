"""Plots of a comparison (matplotlib, headless Agg backend).

Each function takes a :class:`~rebalopt.research.compare.Comparison` and returns
a ``matplotlib.figure.Figure``; nothing is shown or written. Units: tracking
error in % per year, cost in bps of average equity per year, turnover in % of
equity, weights in % of equity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: a report is written without a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from rebalopt.errors import InputError
from rebalopt.research.quality import efficient_points

if TYPE_CHECKING:
    from rebalopt.research.compare import Comparison

__all__ = [
    "count_overlaps",
    "highlight_runs",
    "plot_drawdowns",
    "plot_drift",
    "plot_equity",
    "plot_frontier",
    "plot_turnover",
    "spread_labels",
]

_COLORS = {"naive": "tab:red", "band": "tab:orange", "optimal": "tab:blue", "custom": "tab:gray"}


def highlight_runs(cmp: Comparison, n_optimal: int = 1) -> list[str]:
    """A few representative runs: naive monthly and slowest naive, the band and the
    optimal run(s) whose TE is closest to the slowest naive's."""
    t = cmp.table
    out: list[str] = []
    naive = t[t["kind"] == "naive"].sort_values("every")
    if not naive.empty:
        out.append(str(naive.index[0]))
        if len(naive) > 1:
            out.append(str(naive.index[-1]))
    ref_te = float(naive["tracking_error"].iloc[-1]) if not naive.empty else float(
        t["tracking_error"].median())
    for kind, k in (("band", 1), ("optimal", n_optimal)):
        sub = t[t["kind"] == kind]
        if not sub.empty:
            near = (sub["tracking_error"] - ref_te).abs().sort_values()
            out += [str(x) for x in near.index[:k]]
    if not out:
        out = [str(x) for x in t.index[:3]]
    return out


def plot_frontier(cmp: Comparison) -> Figure:
    """Realized tracking error (x) against cost paid (y) for every run.

    The optimal runs are joined in order of risk aversion and their efficient
    frontier is drawn; naive and band runs are single markers, labelled.
    """
    t = cmp.table
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    markers = {"naive": "s", "band": "^", "optimal": "o", "custom": "D"}
    labels: list = []
    for kind, sub in t.groupby("kind", sort=False):
        x, y = 100 * sub["tracking_error"], sub["cost_bps"]
        if kind == "optimal":
            s = sub.sort_values("knob")
            ax.plot(100 * s["tracking_error"], s["cost_bps"], "-", color=_COLORS["optimal"],
                    alpha=0.35, lw=1)
            ex, ey = efficient_points(s["tracking_error"].to_numpy(), s["cost_bps"].to_numpy())
            ax.plot(100 * ex, ey, "-", color=_COLORS["optimal"], lw=2,
                    label="optimal (efficient frontier)")
            for name, r in s.iterrows():
                labels.append(ax.annotate(
                    f"γ={r['knob']:g}", (100 * r["tracking_error"], r["cost_bps"]),
                    fontsize=7, color=_COLORS["optimal"], xytext=(3, 3),
                    textcoords="offset points"))
        ax.scatter(x, y, marker=markers.get(str(kind), "o"), color=_COLORS.get(str(kind), "k"),
                   label=str(kind), zorder=3, s=28)
        if kind != "optimal":
            for name, r in sub.iterrows():
                labels.append(ax.annotate(
                    str(name).replace("band ", ""), (100 * r["tracking_error"], r["cost_bps"]),
                    fontsize=6.5, xytext=(3, -8), textcoords="offset points", alpha=0.8))
    ax.set_xlabel("realized tracking error to the paper portfolio (% per year)")
    ax.set_ylabel("cost paid (bps of average equity per year)")
    ax.set_title("Cost against tracking error, every run")
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    # minor ticks 2, 3, 5, 8 of every decade, below 1% too (0.2, 0.3, ...)
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if v > 0 and f"{v:.0e}"[0] in "2358" else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    spread_labels(fig, labels)
    return fig


def spread_labels(fig: Figure, labels: list, max_moves: int = 30) -> int:
    """Move point labels down (then up) until no two overlap; returns how many overlap
    after the moves (0 unless there is no room). Works in display pixels."""
    if not labels:
        return 0
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    placed: list = []
    for ann in sorted(labels, key=lambda a: a.get_window_extent(renderer).x0):
        dx, dy = ann.xyann
        for k in range(max_moves):
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                break
            step = box.height * 0.8 + 1
            sign = -1 if k % 2 == 0 else 1
            ann.xyann = (dx, dy + sign * step * (k // 2 + 1))
        placed.append(ann.get_window_extent(renderer))
    return count_overlaps(fig, labels)


def count_overlaps(fig: Figure, labels: list) -> int:
    """Pairs of labels whose boxes overlap (display pixels)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [a.get_window_extent(renderer) for a in labels]
    return sum(1 for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j]))


def plot_equity(cmp: Comparison, runs: Sequence[str] | None = None) -> Figure:
    """Equity curves (top) and drawdowns (bottom) of ``runs`` and the paper portfolio."""
    runs = list(runs) if runs is not None else highlight_runs(cmp)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    s = cmp.start
    paper = cmp.paper_equity().iloc[s:]
    curves = {"paper (cost-free)": paper}
    for name in runs:
        curves[name] = cmp.results[name].equity_curve.iloc[s:]
    for name, eq in curves.items():
        style = {"color": "k", "lw": 1.2, "ls": "--"} if name.startswith("paper") else {"lw": 1}
        ax1.plot(eq.index, eq / 1e6, label=name, **style)
        dd = eq / eq.cummax() - 1.0
        ax2.plot(dd.index, 100 * dd, **style)
    ax1.set_ylabel("equity (millions)")
    ax1.set_title("Equity and drawdown")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("drawdown (%)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_drawdowns(cmp: Comparison, runs: Sequence[str] | None = None) -> Figure:
    """Alias of :func:`plot_equity` (the drawdown panel is part of it)."""
    return plot_equity(cmp, runs)


def plot_turnover(cmp: Comparison, runs: Sequence[str] | None = None) -> Figure:
    """Realized one-way turnover at each decision date for ``runs``."""
    runs = list(runs) if runs is not None else highlight_runs(cmp)
    to = cmp.rebalance_turnover()[runs]
    fig, ax = plt.subplots(figsize=(9, 4))
    for name in runs:
        ax.plot(to.index, 100 * to[name], marker=".", lw=0.8, label=name)
    ax.set_ylabel("one-way turnover (% of equity)")
    ax.set_title("Turnover per rebalance")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_drift(cmp: Comparison, run: str | None = None, max_assets: int = 40) -> Figure:
    """Heatmap of a run's weight drift: held minus paper weights (percentage points).

    Rows are assets (the ``max_assets`` with the largest average target), columns
    weekly samples after the first decision date.
    """
    if run is None:
        # a highlighted run recorded with holdings (a frontier joined to a comparison
        # is usually run without them)
        recorded = [r for r in highlight_runs(cmp) if cmp.results[r].holdings is not None]
        hl = recorded or [r for r, res in cmp.results.items() if res.holdings is not None]
        if not hl:
            raise InputError("no run was recorded with holdings", field="record_holdings")
        opt = [r for r in hl if cmp.table.loc[r, "kind"] == "optimal"]
        run = opt[0] if opt else hl[0]
    if run not in cmp.results:
        raise InputError("no such run", field=str(run))
    held = cmp.held_weights(run).iloc[cmp.start:]
    paper = cmp.paper_weights().iloc[cmp.start:]
    drift = 100 * (held - paper)
    keep = cmp.targets.abs().mean().sort_values(ascending=False).index[:max_assets]
    drift = drift[[str(k) for k in keep]].resample("W").last().dropna(how="all")
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.22 * drift.shape[1] + 1.5)))
    lim = float(np.nanpercentile(np.abs(drift.to_numpy()), 99)) or 1.0
    im = ax.imshow(drift.T.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   interpolation="nearest")
    ax.set_yticks(range(drift.shape[1]))
    ax.set_yticklabels(drift.columns, fontsize=6)
    n = drift.shape[0]
    ticks = np.linspace(0, n - 1, min(8, n)).astype(int)
    ax.set_xticks(ticks)
    ax.set_xticklabels([pd.Timestamp(drift.index[i]).strftime("%Y-%m") for i in ticks],
                       fontsize=7)
    ax.set_title(f"Weight drift of {run}: held minus paper weight (pp)")
    fig.colorbar(im, ax=ax, label="percentage points")
    fig.tight_layout()
    return fig
