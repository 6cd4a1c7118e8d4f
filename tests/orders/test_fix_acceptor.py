"""The FIX basket through a local FIX acceptor: what the engine receives equals the plan.

QuickFIX (the C++ engine's Python binding) did not build on this machine in 25
minutes, so the acceptor here is asyncfix's (a Python FIX 4.4 session engine:
Logon handshake, CompID and MsgSeqNum checks, BodyLength and CheckSum validation;
a message that fails them is dropped, not delivered). Our side is a plain TCP socket
sending the Logon and the NewOrderSingle messages rebalopt builds with simplefix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import pytest

from rebalopt import NaiveRebalancer, PortfolioState, RebalanceConfig
from rebalopt.orders import OrderSettings

simplefix = pytest.importorskip("simplefix", reason="simplefix not installed (extra: fix)")
asyncfix = pytest.importorskip("asyncfix", reason="asyncfix not installed (extra: fix)")

from asyncfix.connection_server import AsyncFIXDummyServer
from asyncfix.journaler import Journaler
from asyncfix.protocol import FIXProtocol44

from rebalopt.orders.fix import fix_messages


class Acceptor(AsyncFIXDummyServer):
    """Records every application message the engine delivers."""

    received: list

    async def on_connect(self) -> None:
        pass

    async def on_message(self, msg) -> None:
        self.received.append(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _logon(when: str) -> bytes:
    m = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, "A"), (49, "REBALOPT"), (56, "BROKER"), (34, "1"),
                       (52, when), (98, "0"), (108, "30")):
        m.append_pair(tag, value, header=tag in (8, 35, 49, 56, 34, 52))
    return m.encode()


async def _send_basket(messages: list[bytes], corrupt: bytes | None = None) -> list:
    port = _free_port()
    server = Acceptor(FIXProtocol44(), "BROKER", "REBALOPT", Journaler(), "127.0.0.1", port)
    server.received = []
    task = asyncio.create_task(server.connect())
    for _ in range(100):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("acceptor did not start")
    writer.write(_logon(dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]))
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(4096), 10)
    assert b"\x0135=A\x01" in reply  # the engine answered the Logon
    payload = b"".join(messages) + (corrupt or b"")
    writer.write(payload)
    await writer.drain()
    for _ in range(200):
        if len(server.received) >= len(messages):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # time for a corrupt message to be (not) delivered
    writer.close()
    task.cancel()
    return list(server.received)


def test_acceptor_receives_the_plan() -> None:
    state = PortfolioState({"AAA": 100, "BBB": 50}, 10_000.0,
                           {"AAA": 50.0, "BBB": 20.0, "CCC": 10.0})
    cfg = RebalanceConfig(allow_short=True, max_gross_leverage=1.5, min_weight_change=0.0,
                          min_trade_value=0.0)
    plan = NaiveRebalancer(cfg).plan(state, {"AAA": 0.0, "BBB": -0.10, "CCC": 0.50})
    settings = OrderSettings(account="U1", basket="b1", as_of="2024-06-28",
                             order_type="limit", limit_band_bps=20)
    msgs = fix_messages(plan, settings, first_seq=2)
    raw = [m.encode() for m in msgs]
    # a copy of the last order with one byte changed: the engine must refuse it
    bad = bytearray(raw[-1].replace(b"34=5", b"34=6"))
    bad[bad.index(b"55=CCC") + 3] = ord("D")
    received = asyncio.run(_send_basket(raw, bytes(bad)))
    got = [(m[55], m[54], float(m[38]), m[11]) for m in received]
    # the plan, by name: sell 100 AAA, sell 50 BBB + short 80 BBB, buy 800 CCC
    sides = {"1": "buy", "2": "sell", "5": "short"}
    assert [(a, sides[s], q) for a, s, q, _ in got] == [
        ("AAA", "sell", 100.0), ("BBB", "sell", 50.0), ("BBB", "short", 80.0),
        ("CCC", "buy", 800.0)]
    net: dict[str, float] = {}
    for a, s, q, _ in got:
        net[a] = net.get(a, 0.0) + (q if s == "1" else -q)
    assert net == {a: float(t) for a, t in zip(plan.assets, plan.trades, strict=True) if t}
    assert [cid for *_, cid in got] == [m.get(11).decode() for m in msgs]
    assert all(m[1] == "U1" and m[583] == "b1" for m in received)
