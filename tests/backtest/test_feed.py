"""DataFeed: long and wide builders agree, missing bars, signals, labels, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rebalopt import InputError
from rebalopt.backtest import DataFeed
from rebalopt.datasets import load_ohlcv


def long_frame():
    rows = []
    for d, day in enumerate(pd.bdate_range("2024-03-01", periods=4)):
        for k, tic in enumerate(["MSFT", "AAPL", "XOM"]):
            if tic == "XOM" and d == 2:
                continue  # a missing bar
            px = 100.0 + 10 * k + d
            rows.append({"date": day, "ticker": tic, "open": px - 0.5, "high": px + 1,
                         "low": px - 1, "close": px, "volume": 1000.0 * (k + 1),
                         "score": d * 0.1 + k, "sector": ["Tech", "Tech", "Energy"][k]})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def test_long_frame_to_dense_arrays():
    feed = DataFeed.from_long(long_frame())
    assert list(feed.assets) == ["AAPL", "MSFT", "XOM"]
    assert feed.close.shape == (4, 3)
    assert feed.close[1, 0] == 111.0 and feed.open[1, 0] == 110.5
    assert np.isnan(feed.close[2, 2]) and not feed.available[2, 2]
    assert np.isnan(feed.volume[2, 2]) and np.isnan(feed.open[2, 2])
    assert list(feed.groups) == ["Tech", "Tech", "Energy"]
    assert feed.signals["score"][3, 2] == pytest.approx(2.3)


def test_wide_frame_matches_long_frame():
    df = long_frame()
    a = DataFeed.from_long(df)
    wide = {f: df.pivot(index="date", columns="ticker", values=f) for f in
            ("open", "high", "low", "close", "volume")}
    b = DataFeed.from_wide(wide["close"], open=wide["open"], high=wide["high"], low=wide["low"],
                           volume=wide["volume"])
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_bar_view_is_a_mapping_of_the_present_assets():
    feed = DataFeed.from_long(long_frame())
    data = feed.bar(2, adv=np.array([1.0, 2.0, np.nan]), volatility=np.array([0.1, 0.2, 0.3]))
    assert list(data) == ["AAPL", "MSFT"] and len(data) == 2 and "XOM" not in data
    bar = data["MSFT"]
    assert bar["close"] == 102.0 and bar["adv"] == 1.0 * 2 and bar["sector"] == "Tech"
    assert dict(bar)["score"] == pytest.approx(0.2)
    with pytest.raises(KeyError):
        data["XOM"]
    assert data.get("XOM") is None


def test_bad_input_names_asset_and_field():
    df = long_frame()
    dup = pd.concat([df, df.iloc[[0]]])
    with pytest.raises(InputError, match="duplicate") as e:
        DataFeed.from_long(dup)
    assert e.value.asset == str(df.iloc[0]["ticker"])
    bad = df.copy()
    bad.loc[bad.index[0], "close"] = -1.0
    with pytest.raises(InputError) as e:
        DataFeed.from_long(bad)
    assert e.value.asset == bad.iloc[0]["ticker"] and e.value.field == "close"
    with pytest.raises(InputError, match="close"):
        DataFeed.from_long(df.drop(columns="close"))
    neg = df.copy()
    neg.loc[neg.index[1], "volume"] = -5
    with pytest.raises(InputError) as e:
        DataFeed.from_long(neg)
    assert e.value.field == "volume"


def test_load_ohlcv_csv_and_parquet(tmp_path):
    df = long_frame().rename(columns={"date": "Date", "ticker": "Ticker"})
    df.to_csv(tmp_path / "p.csv", index=False)
    df.to_parquet(tmp_path / "p.parquet")
    a = load_ohlcv(tmp_path / "p.csv")
    b = load_ohlcv(tmp_path / "p.parquet")
    fa, fb = DataFeed.from_long(a), DataFeed.from_long(b)
    np.testing.assert_array_equal(fa.close, fb.close)
    assert list(fa.assets) == ["AAPL", "MSFT", "XOM"]
    with pytest.raises(FileNotFoundError):
        load_ohlcv(tmp_path / "none.csv")


@pytest.mark.parametrize("kind", ["object", "str", "category", "int"])
def test_long_frame_ticker_dtypes_give_one_feed(kind):
    """The tickers are factorized as a column: the same sorted assets (Python's code-point
    order, non-ASCII included) and the same cells whatever the column's dtype."""
    df = long_frame()
    names = {"MSFT": "ß1", "AAPL": "É2", "XOM": "Z3"} if kind != "int" else {
        "MSFT": 10, "AAPL": 9, "XOM": 100}
    df["ticker"] = df["ticker"].map(names)
    ref = df.assign(ticker=df["ticker"].astype(object).map(str))  # Python strings
    if kind == "str":
        df["ticker"] = df["ticker"].astype("str")
    elif kind == "category":
        df["ticker"] = df["ticker"].astype("category")
    a, b = DataFeed.from_long(ref), DataFeed.from_long(df)
    assert list(b.assets) == sorted(str(v) for v in names.values()) == list(a.assets)
    for f in ("open", "high", "low", "close", "volume", "available"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert list(a.groups) == list(b.groups)
