"""AlpacaBroker against a local HTTP server answering Alpaca's documented endpoints.

The server (http.server in a thread, no network) answers ``GET /v2/account``,
``GET /v2/positions``, ``POST /v2/orders`` (422 on a duplicate client_order_id, as
Alpaca does) and ``GET /v2/orders:by_client_order_id``. Oracles: the server's own
record of what it received, compared with the plan built by hand.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from rebalopt import NaiveRebalancer, RebalanceConfig
from rebalopt.orders import OrderSettings

pytest.importorskip("alpaca.trading.client", reason="alpaca-py not installed (extra: alpaca)")

from alpaca.trading.client import TradingClient

from rebalopt.adapters.alpaca import AlpacaBroker

ACCOUNT = {"id": "8f5b4d3c-0000-0000-0000-000000000001", "account_number": "PA3TEST",
           "status": "ACTIVE", "currency": "USD", "cash": "25250.00",
           "buying_power": "25250.00", "equity": "50000.00"}


def _position(symbol: str, qty: int, price: float) -> dict:
    return {"asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)), "symbol": symbol,
            "exchange": "NASDAQ", "asset_class": "us_equity", "avg_entry_price": str(price),
            "qty": str(qty), "side": "long", "cost_basis": str(qty * price),
            "market_value": str(qty * price), "current_price": str(price)}


class FakeAlpaca(BaseHTTPRequestHandler):
    """Alpaca's trading API, as far as the adapter uses it."""

    server: ThreadingHTTPServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        st = self.server.state  # type: ignore[attr-defined]
        st["calls"].append(("GET", url.path))
        if url.path == "/v2/account":
            return self._reply(200, ACCOUNT)
        if url.path == "/v2/positions":
            return self._reply(200, st["positions"])
        if url.path == "/v2/orders:by_client_order_id":
            cid = parse_qs(url.query)["client_order_id"][0]
            if cid in st["orders"]:
                return self._reply(200, st["orders"][cid])
        return self._reply(404, {"code": 40410000, "message": "not found"})

    def do_POST(self) -> None:
        st = self.server.state  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        st["calls"].append(("POST", self.path))
        st["posts"].append(body)
        cid = body["client_order_id"]
        if cid in st["orders"]:
            return self._reply(422, {"code": 40010001,
                                     "message": "client_order_id must be unique"})
        order = {"id": str(uuid.uuid4()), "client_order_id": cid,
                 "created_at": "2024-06-28T19:45:00Z", "updated_at": "2024-06-28T19:45:00Z",
                 "submitted_at": "2024-06-28T19:45:00Z", "order_class": "simple",
                 "time_in_force": body["time_in_force"], "status": "accepted",
                 "extended_hours": False, "symbol": body["symbol"], "side": body["side"],
                 "qty": body.get("qty"), "notional": body.get("notional"),
                 "type": body["type"], "order_type": body["type"]}
        st["orders"][cid] = order
        if body["symbol"] in st["lose_answer_once"]:
            # the order is taken but the answer is lost (a 500 after the fact)
            st["lose_answer_once"].discard(body["symbol"])
            return self._reply(500, {"code": 50010000, "message": "internal error"})
        return self._reply(200, order)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeAlpaca)
    httpd.state = {"positions": [_position("AAA", 300, 50.0), _position("BBB", 150, 25.0),
                                 _position("CCC", 100, 60.0)],
                   "orders": {}, "posts": [], "calls": [], "lose_answer_once": set()}
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _broker(httpd, **kw) -> AlpacaBroker:
    client = TradingClient("key", "secret", paper=True,
                           url_override=f"http://127.0.0.1:{httpd.server_port}")
    return AlpacaBroker(client, OrderSettings(account="PA3TEST", basket="b1",
                                              as_of="2024-06-28"), retry_wait=0.0, **kw)


CFG = RebalanceConfig(min_weight_change=0.0, min_trade_value=0.0)
TARGETS = {"AAA": 0.53, "BBB": 0.0, "DDD": 0.30}


def test_positions_and_cash_in(server) -> None:
    state = _broker(server).portfolio_state(prices={"DDD": 40.0})
    assert dict(zip(state.assets, state.holdings, strict=True)) == {
        "AAA": 300, "BBB": 150, "CCC": 100, "DDD": 0}
    assert state.cash == 25_250.0
    assert state.equity == pytest.approx(50_000.0)  # 25,250 + 15,000 + 3,750 + 6,000


def test_dry_run_sends_nothing(server) -> None:
    broker = _broker(server)
    plan = NaiveRebalancer(CFG).plan(broker.portfolio_state(prices={"DDD": 40.0}), TARGETS)
    sub = broker.submit(plan)
    assert sub.dry_run and len(sub.requests) == 4
    assert not [c for c in server.state["calls"] if c[0] == "POST"]


def test_orders_out_sells_first_and_a_retry_reuses_ids(server) -> None:
    broker = _broker(server, dry_run=False)
    plan = NaiveRebalancer(CFG).plan(broker.portfolio_state(prices={"DDD": 40.0}), TARGETS)
    # by hand: equity 50,000; AAA 0.53 -> 530 sh (+230); BBB -> 0 (-150); CCC -> 0 (-100);
    # DDD 0.30 -> 375 sh (+375)
    expected = [("BBB", "sell", 150), ("CCC", "sell", 100), ("AAA", "buy", 230),
                ("DDD", "buy", 375)]
    server.state["lose_answer_once"] = {"CCC"}
    sub = broker.submit(plan)
    posts = server.state["posts"]
    got = [(p["symbol"], p["side"], float(p["qty"])) for p in posts]
    # CCC was posted twice (the first answer lost) with the same client_order_id
    assert got == [expected[0], expected[1], expected[1], expected[2], expected[3]]
    assert posts[1]["client_order_id"] == posts[2]["client_order_id"]
    assert sub.retried == [posts[1]["client_order_id"]]
    # the server holds each order once, and the adapter returned every one
    assert len(server.state["orders"]) == 4
    assert [o.client_order_id for o in sub.orders] == sub.client_order_ids
    # the whole basket sent again (a crash after sending): nothing is traded twice
    n_before = len(server.state["orders"])
    again = broker.submit(plan)
    assert again.client_order_ids == sub.client_order_ids
    assert len(server.state["orders"]) == n_before
    assert [o.id for o in again.orders] == [o.id for o in sub.orders]
