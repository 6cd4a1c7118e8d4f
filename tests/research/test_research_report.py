"""The HTML report: a self-contained file with every plot (real PNGs) and the tables."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest
from research_costs import real_costs

from rebalopt.backtest import DataFeed
from rebalopt.research import (
    band_runs,
    compare,
    naive_runs,
    optimal_runs,
    risk_schedule,
    run_demo,
    target_schedule,
    write_report,
)
from rebalopt.research.report import PLOT_IDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_report(text: str, runs: list[str]) -> None:
    for pid in PLOT_IDS:
        m = re.search(rf"<img id='{pid}'[^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
        assert m is not None, f"plot {pid} missing"
        png = base64.b64decode(m.group(1))
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000, pid
    assert 'id="summary"' in text
    summary = text[text.index('id="summary"'):]
    summary = summary[: summary.index("</table>")]
    for name in runs:
        assert f"<th>{name}</th>" in summary, name
    assert "http://" not in text and "https://" not in text  # nothing fetched by the browser


def test_write_report_embeds_every_plot_and_the_table(tmp_path: Path, small_feed: DataFeed,
                                                      small_prices: pd.DataFrame) -> None:
    targets = target_schedule(small_prices, "inverse_volatility", 60)
    costs = real_costs()
    risk = risk_schedule(small_prices, targets.index, 60)
    runs = (naive_runs(costs, every=(1, 3)) + band_runs(costs, absolute=(0.01,), relative=(),
                                                        to=("edge",))
            + optimal_runs(costs, risk, (10.0, 1000.0)))
    cmp = compare(small_feed, targets, costs, runs, initial_cash=2e7, on_error="raise")
    path = write_report(cmp, tmp_path / "sub" / "report.html", description="a <test> & more")
    assert path.exists()
    text = path.read_text(encoding="utf-8")
    _check_report(text, [r.name for r in runs])
    assert 'id="equal-te"' in text
    assert "a &lt;test&gt; &amp; more" in text


@pytest.mark.slow
def test_run_demo_quick_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = run_demo(tmp_path, quick=True)
    assert path == tmp_path / "demo.html" and path.exists()
    assert (tmp_path / "demo.csv").exists()
    table = pd.read_csv(tmp_path / "demo.csv", index_col=0)
    assert set(table["kind"]) == {"naive", "band", "optimal"}
    assert (table["n_held"] == 0).all()
    _check_report(path.read_text(encoding="utf-8"), list(table.index))
    out = capsys.readouterr().out
    assert str(path) in out
