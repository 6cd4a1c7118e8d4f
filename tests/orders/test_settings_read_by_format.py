"""``rebalopt.orders.render`` / ``write`` with settings the format does not write (rev7).

Before: ``write(plan, "orders.csv", "csv", OrderSettings(order_type="limit",
limit_band_bps=20))`` wrote rebalopt's CSV, which has no limit column: the desk's limit
orders went out as plain (market) tickets without a word; an Alpaca or FIX file
dropped ``sec_type="OPT"`` the same way. The command line already refused these
(``cli_orders``); the Python API now does too, from the same table (``READ_BY``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rebalopt.errors import InputError
from rebalopt.orders import OrderSettings, render, write
from rebalopt.orders.formats import READ_BY
from rebalopt.rebalance.naive import NaiveRebalancer
from rebalopt.state import PortfolioState

# a non-default value of every OrderSettings field but as_of
NON_DEFAULT = {"account": "U1", "order_type": "limit", "time_in_force": "gtc",
               "limit_band_bps": 20.0, "basket": "b1", "currency": "EUR",
               "exchange": "IBIS", "sec_type": "OPT", "notional": True, "tick": 0.05,
               "sender_comp_id": "ME", "target_comp_id": "YOU"}


def _plan():
    st = PortfolioState({"A": 0.0}, 10_000.0, {"A": 10.0, "B": 20.0})
    return NaiveRebalancer().plan(st, {"A": 0.5, "B": 0.5})


def _settings(key: str) -> OrderSettings:
    kw = {key: NON_DEFAULT[key]}
    if key == "limit_band_bps":
        kw["order_type"] = "limit"
    if key == "order_type":
        kw["limit_band_bps"] = 20.0
    return OrderSettings(**kw)


@pytest.mark.parametrize("fmt", sorted(READ_BY))
@pytest.mark.parametrize("key", sorted(NON_DEFAULT))
def test_a_setting_the_format_does_not_write_is_an_error(fmt: str, key: str,
                                                         tmp_path: Path) -> None:
    settings = _settings(key)
    if key in READ_BY[fmt] and (key != "order_type" or "limit_band_bps" in READ_BY[fmt]):
        render(_plan(), fmt, settings)  # read: rendered
        return
    with pytest.raises(InputError) as e:
        render(_plan(), fmt, settings)
    assert e.value.field in (key, "limit_band_bps", "order_type")
    out = tmp_path / "orders.out"
    with pytest.raises(InputError):
        write(_plan(), out, fmt, settings)
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("fmt", ["ibkr", "fix", "csv"])
def test_notional_outside_alpaca_is_an_error(fmt: str) -> None:
    with pytest.raises(InputError) as e:
        render(_plan(), fmt, OrderSettings(notional=True))
    assert e.value.field == "notional"


def test_defaults_and_as_of_are_accepted_everywhere(tmp_path: Path) -> None:
    for fmt in READ_BY:
        render(_plan(), fmt, OrderSettings(as_of="2024-06-03"))
    assert write(_plan(), tmp_path / "o.csv", "csv", OrderSettings()).exists()
