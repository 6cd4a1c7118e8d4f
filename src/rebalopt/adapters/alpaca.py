"""Live and paper trading through Alpaca (alpaca-py's ``TradingClient``).

:class:`AlpacaBroker` reads the account's cash and positions into a
:class:`~rebalopt.PortfolioState` and sends a plan's orders, sells first, as
alpaca-py order requests (:mod:`rebalopt.orders.alpaca`). It is a dry run by
default: :meth:`AlpacaBroker.submit` returns the requests it would send and sends
nothing until ``dry_run=False``. Client order ids are deterministic (account,
basket, as-of date, ticker, side, quantity), so a retried request, or the whole
basket sent again after a crash, never trades twice: Alpaca refuses a duplicate id
and the adapter then reads the order it already has. Needs ``pip install
'rebalopt[alpaca]'``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rebalopt.errors import InputError
from rebalopt.orders.alpaca import alpaca_requests
from rebalopt.orders.settings import OrderSettings
from rebalopt.state import PortfolioState

__all__ = ["AlpacaBroker", "Submission"]


def _get(obj: Any, name: str) -> Any:
    """A field of an alpaca-py model or of a raw-data dict."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


@dataclass
class Submission:
    """What :meth:`AlpacaBroker.submit` did.

    Attributes
    ----------
    requests
        The alpaca-py order requests, sells first (sent or, in a dry run, not).
    orders
        The broker's order per request (``None`` in a dry run), same order.
    retried
        Client order ids that needed more than one attempt.
    dry_run
        True when nothing was sent.
    """

    requests: list[Any]
    orders: list[Any] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dry_run: bool = True

    @property
    def client_order_ids(self) -> list[str]:
        """The client order ids, in sending order."""
        return [r.client_order_id for r in self.requests]


class AlpacaBroker:
    """An Alpaca account as a rebalopt book, and the door its orders go out through.

    Parameters
    ----------
    client
        An ``alpaca.trading.client.TradingClient`` (paper or live; ``raw_data``
        either way).
    settings
        Order settings (account, order type, time in force, limit band, basket,
        as-of date, notional buys); default market day orders.
    dry_run
        ``True`` (default): :meth:`submit` builds the requests and sends nothing.
    max_attempts
        Attempts per order when the connection fails or the server answers 5xx
        (the same client order id every time).
    retry_wait
        Seconds between attempts.
    """

    def __init__(self, client: Any, settings: OrderSettings | None = None, *,
                 dry_run: bool = True, max_attempts: int = 3, retry_wait: float = 1.0) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise InputError(f"max_attempts {max_attempts!r} must be an integer >= 1",
                             field="max_attempts")
        self.client = client
        self.settings = settings or OrderSettings()
        self.dry_run = dry_run
        self.max_attempts = max_attempts
        self.retry_wait = retry_wait

    @classmethod
    def connect(cls, api_key: str, secret_key: str, *, paper: bool = True,
                url_override: str | None = None, settings: OrderSettings | None = None,
                dry_run: bool = True) -> AlpacaBroker:
        """Build the ``TradingClient`` (paper trading unless ``paper=False``)."""
        from alpaca.trading.client import TradingClient

        client = TradingClient(api_key, secret_key, paper=paper, url_override=url_override)
        return cls(client, settings, dry_run=dry_run)

    # ------------------------------------------------------------------ book
    def portfolio_state(self, prices: Mapping[str, float] | pd.Series | None = None,
                        **extra: Any) -> PortfolioState:
        """Cash (``GET /v2/account``) and positions (``GET /v2/positions``) as a state.

        Parameters
        ----------
        prices
            Reference prices (currency/share) for assets to trade that are not held
            (and, when given, for held ones too); held assets default to the
            position's ``current_price``.
        **extra
            Passed to :class:`~rebalopt.PortfolioState` (``adv``, ``volatility``,
            ``groups``, ...).
        """
        account = self.client.get_account()
        cash = float(_get(account, "cash"))
        holdings: dict[str, float] = {}
        px: dict[str, float] = {}
        for p in self.client.get_all_positions():
            sym = str(_get(p, "symbol"))
            holdings[sym] = float(_get(p, "qty"))
            current = _get(p, "current_price")
            if current is not None:
                px[sym] = float(current)
        if prices is not None:
            px.update({str(k): float(v) for k, v in dict(prices).items()})
        return PortfolioState(holdings, cash, px, **extra)

    # --------------------------------------------------------------- orders
    def submit(self, plan: Any, settings: OrderSettings | None = None) -> Submission:
        """Send ``plan``'s orders, sells first; a dry run unless ``dry_run=False``.

        Every request is built (and checked) before the first is sent. An order
        whose id Alpaca already holds (a retry after a lost answer, or the basket
        sent again) is not sent twice: the existing order is read back instead.

        Raises
        ------
        InputError
            From the order settings or a quantity Alpaca cannot take.
        alpaca.common.exceptions.APIError
            The broker rejected an order (the orders before it stay sent).
        """
        requests = alpaca_requests(plan, settings or self.settings)
        result = Submission(requests=requests, dry_run=self.dry_run)
        if self.dry_run:
            result.orders = [None] * len(requests)
            return result
        for req in requests:
            result.orders.append(self._send(req, result))
        return result

    def _send(self, req: Any, result: Submission) -> Any:
        from alpaca.common.exceptions import APIError
        from requests.exceptions import ConnectionError as ConnError
        from requests.exceptions import Timeout

        for attempt in range(1, self.max_attempts + 1):
            try:
                return self.client.submit_order(req)
            except APIError as exc:
                status = getattr(exc, "status_code", None)
                if status in (409, 422) and "client_order_id" in str(exc):
                    # already received (an earlier attempt or an earlier run)
                    return self.client.get_order_by_client_id(req.client_order_id)
                if status is None or status < 500 or attempt == self.max_attempts:
                    raise
            except (ConnError, Timeout):
                if attempt == self.max_attempts:
                    raise
            if req.client_order_id not in result.retried:
                result.retried.append(req.client_order_id)
            time.sleep(self.retry_wait)
        raise AssertionError("unreachable")  # pragma: no cover
