"""load_sp500 on a small file of the shared panel's layout: the categorical ticker path
equals the plain string path and the hand-made expectation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt.datasets import load_sp500


def _panel() -> pd.DataFrame:
    rows = []
    for d, day in enumerate(pd.bdate_range("2020-01-01", periods=5)):
        for k, tic in enumerate(["MSFT", "AAPL", "NEW", "XOM"]):
            if tic == "NEW" and d < 2:
                continue
            px = 100.0 + 10 * k + d
            rows.append({"date": day, "ticker": tic, "open": px - 0.5, "high": px + 1,
                         "low": px - 1, "close": px, "adj_close": px / 2,
                         "volume": 1000 * (k + 1), "dividend": 0.0, "split": 1.0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kwargs", [{}, {"tickers": ["XOM", "NEW", "nope"]},
                                    {"start": "2020-01-03", "adjust": False},
                                    {"sectors": False}])
def test_categorical_tickers_load_as_strings(tmp_path, kwargs):
    panel = _panel()
    cat_dir, str_dir = tmp_path / "cat", tmp_path / "str"
    for folder, tick in ((cat_dir, panel["ticker"].astype("category")),
                         (str_dir, panel["ticker"].astype(object))):
        folder.mkdir()
        panel.assign(ticker=tick).to_parquet(folder / "prices.parquet")
        # NEW has no sector: NaN in both paths
        pd.DataFrame({"Symbol": ["MSFT", "AAPL", "XOM"], "Name": ["m", "a", "x"],
                      "Sector": ["Tech", "Tech", "Energy"]}).to_csv(folder / "sectors.csv",
                                                                   index=False)
    assert isinstance(pd.read_parquet(cat_dir / "prices.parquet")["ticker"].dtype,
                      pd.CategoricalDtype)  # the fast path is the one tested
    fast = load_sp500(cat_dir, **kwargs)
    slow = load_sp500(str_dir, **kwargs)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast["ticker"].dtype == "str"
    if kwargs.get("sectors", True):
        want = {"MSFT": "Tech", "AAPL": "Tech", "XOM": "Energy"}
        got = dict(zip(fast["ticker"], fast["sector"]))
        assert {t: s for t, s in got.items() if t != "NEW"} == {
            t: want[t] for t in got if t != "NEW"}
        assert "NEW" not in got or pd.isna(got["NEW"])
    if "tickers" in kwargs:
        assert sorted(set(fast["ticker"])) == ["NEW", "XOM"]
    if kwargs.get("adjust", True):  # close scaled by adj_close / close
        np.testing.assert_allclose(fast["close"], slow["close"])
        assert (fast["close"] < 100).all()


@pytest.mark.parametrize("kwargs", [{}, {"start": "2020-01-02", "end": "2020-01-06"},
                                    {"end": "2020-01-01"}, {"start": "2030-01-01"},
                                    {"tickers": ["AAPL", "XOM"], "start": "2020-01-03"}])
def test_window_and_order_match_a_filtered_sorted_read(tmp_path, kwargs):
    """The date window (a mask on the read frame) and the (date, ticker) order (skipped
    sort when the file is in that order already) against parquet's own row filters and
    a sort, on the file in (date, ticker) order and in the shuffled one."""
    panel = _panel()
    order = panel.sort_values(["date", "ticker"]).index
    for label, rows in (("sorted", order), ("shuffled", panel.index[::-1])):
        folder = tmp_path / label
        folder.mkdir()
        cats = pd.CategoricalDtype(sorted(panel["ticker"].unique()))
        panel.loc[rows].assign(ticker=panel["ticker"].astype(cats)).reset_index(
            drop=True).to_parquet(folder / "prices.parquet")
        filters = ([("date", ">=", pd.Timestamp(kwargs["start"]))] if "start" in kwargs
                   else []) + ([("date", "<=", pd.Timestamp(kwargs["end"]))]
                               if "end" in kwargs else [])
        want = pd.read_parquet(folder / "prices.parquet", filters=filters or None)
        want["ticker"] = want["ticker"].astype(str)
        if "tickers" in kwargs:
            want = want[want["ticker"].isin(kwargs["tickers"])]
        want = want.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)
        got = load_sp500(folder, adjust=False, sectors=False, **kwargs)
        assert list(got.columns) == ["date", "ticker", "open", "high", "low", "close",
                                     "volume", "adj_close"]
        assert got["date"].tolist() == want["date"].tolist()
        assert got["ticker"].tolist() == want["ticker"].tolist()
        np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
        assert got.index.equals(pd.RangeIndex(len(want)))
