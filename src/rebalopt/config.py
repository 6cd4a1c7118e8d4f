"""TOML configuration for the command line: which rebalancer, costs, risk model, limits.

A complete example (every section and key is optional)::

    [account]
    cash = 25000.0                 # currency; --cash on the command line wins

    [rebalancer]
    method = "optimal"             # "naive", "band" or "optimal"
    fractional = false             # whole shares (or the prices file's lot_size)
    round_lots = false             # true: every trade a multiple of lot_size (all methods)
    # lot_size = 100               # shares; only with round_lots = true
    # dust_value = 1.0             # currency: smaller trades snap to 0 (not read by whole-
    # dust_shares = 1e-6           # share optimal plans nor by --periods: an error there)
    # naive and band only (optimal: the [constraints] in brackets):
    # allow_short = false          # [constraints] long_only
    # max_single_weight = 1.0      # [constraints] max_weight
    # max_gross_leverage = 1.0     # [constraints] gross_leverage
    # cash_buffer = 0.0            # fraction of equity kept in cash; [constraints] cash_floor
    # naive only:
    # min_trade_value = 100.0      # currency; optimal: [optimal] min_trade_value
    # min_weight_change = 0.0      # fraction of equity

    [band]                         # method = "band"
    width = 0.02                   # weight units, or a fraction of the target if relative
    relative = false
    to = "target"                  # or "edge"

    [costs.commission]
    per_share = 0.005              # currency per share
    minimum = 1.0                  # currency per order
    [costs.spread]
    half_spread_bps = 3.0
    [costs.impact]                 # needs adv and volatility columns in the prices file
    coef = 1.0
    exponent = 1.5
    [costs.tax]                    # method = "optimal", with --lots: realized-gains tax
    short_term = 0.37              # rate on gains held one year or less (required)
    long_term = 0.20               # rate on gains held more than one year (required)
    # loss = 0.30                  # value of a harvested loss (default: its term's rate)
    # gains_budget = 50000.0       # most net realized gains, currency
    wash_sale = true               # the US 30-day rule (false: no rule)
    harvest = true                 # second solve harvesting allowed losses
    # substitutes = { XOM = "CVX" }  # takes the weight a wash-sale-restricted ticker cannot buy

    [optimal]                      # method = "optimal"
    risk_aversion = 100.0          # gamma, dimensionless
    horizon = 0.0833               # years the post-trade book is held
    integer = "round"              # whole-share stage: "round" or "exact" (not with fractional)
    max_trades = 20                # an integer (not with fractional)
    min_trade_value = 100.0        # currency (not with fractional)

    [constraints]                  # method = "optimal"; replaces the default long-only + no borrowing
    long_only = true
    cash_floor = 0.0               # post-trade cash >= this fraction of equity
    max_weight = 0.10
    groups = ["Information Technology <= 0.25", "Energy >= 0.02"]   # 'sector' column of the prices file
    turnover = 0.20                # one-way
    no_trade = ["XYZ"]

    [solver]                       # method = "optimal"
    name = ["CLARABEL", "SCS"]     # tried in order; each must be installed
    options = { CLARABEL = { max_iter = 200 } }   # names and values checked by the solver

    [risk]                         # tracking error to report (and, for "optimal", to trade off)
    model = "sample"               # "identity", "diagonal", "covariance", "sample", "pca", "factor"
    returns = "returns.csv"        # dates x tickers of periodic returns (sample, pca)
    periods_per_year = 252

    [orders]                       # the order file; command-line flags win
    format = "ibkr"                # "csv", "ibkr", "alpaca" or "fix"
    account = "U1234567"           # IB Account, FIX tag 1; part of the client order ids
    order_type = "limit"           # "market" or "limit"
    limit_band_bps = 20.0          # limit = reference price -/+ band (limit orders only)
    time_in_force = "day"          # "day", "gtc", "opg", "cls", "ioc", "fok"
    basket = "rebal-2024-06"       # IB OrderRef, FIX 583; part of the client order ids
    currency = "USD"               # IB and FIX
    exchange = "SMART"             # IB and FIX (ExDestination)
    sec_type = "STK"               # IB only
    notional = false               # Alpaca only: buys as notional market day orders
    # tick = 0.01                  # limit price increment (default by price level)

Paths inside the file are relative to the file. Unknown sections or keys are
errors (a typo must not silently drop a limit), and so is a key the chosen method
would ignore (``max_single_weight`` with ``method = "optimal"``, ``max_trades`` with
fractional shares, ``lot_size`` without ``round_lots``, options for a solver that is
not in the chain or that the solver does not know, an ``[orders]`` key the chosen
format does not write). Every error names the file, the
line and the key, as :class:`~rebalopt.adapters.files.FileInputError`; an error found
only when planning (a group with no asset, a risk model missing an asset) is
traced back to its key by :meth:`Settings.locate`.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.adapters.files import FileInputError, read_text_file
from rebalopt.costs import BorrowCost, Commission, CostModel, MarketImpact, Spread
from rebalopt.costs.tax import TaxCost
from rebalopt.errors import InputError
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig
from rebalopt.taxes import US_WASH_SALE, TaxRates

__all__ = ["ConfigError", "Settings", "load_config", "parse_config"]

ConfigError = FileInputError
"""Errors in a config file are file errors whose column is the dotted key."""

METHODS = ("naive", "band", "optimal")
_OPTION_KEYS = tuple(f.name for f in fields(RebalanceConfig) if f.name != "pending")
_IGNORED_BY: dict[str, dict[str, str]] = {
    # [rebalancer] keys a method would silently ignore -> where the method reads the idea
    "band": {
        "min_trade_value": "band trades every asset outside its band: use [band] width",
        "min_weight_change": "band trades every asset outside its band: use [band] width",
    },
    "optimal": {
        "min_trade_value": "use [optimal] min_trade_value",
        "min_weight_change": "the optimal rebalancer weighs each trade's cost instead; "
                             "use [optimal] min_trade_value",
        "allow_short": "use [constraints] long_only = false",
        "max_single_weight": "use [constraints] max_weight",
        "max_gross_leverage": "use [constraints] gross_leverage",
        "cash_buffer": "use [constraints] cash_floor",
    },
}
"""Options of :class:`~rebalopt.rebalance.RebalanceConfig` that a method does not read."""
_BAND_KEYS = ("width", "relative", "to", "fund")
def _tax_cost(*, short_term: float, long_term: float, loss: float | None = None,
              gains_budget: float | None = None, wash_sale: bool = True,
              label: str | None = None) -> TaxCost:
    """``[costs.tax]``: :class:`~rebalopt.costs.tax.TaxCost` at the given rates (fractions),
    with the US 30-day wash-sale rule unless ``wash_sale = false``."""
    return TaxCost(TaxRates(short_term, long_term, loss), gains_budget=gains_budget,
                   wash_sale=US_WASH_SALE if wash_sale else None, label=label)


_COSTS: dict[str, tuple[Callable[..., CostModel], tuple[str, ...]]] = {
    "commission": (Commission, ("per_share", "bps", "minimum", "per_order", "label")),
    "spread": (Spread, ("half_spread_bps", "default_bps", "label")),
    "impact": (MarketImpact, ("coef", "exponent", "label")),
    "borrow": (BorrowCost, ("rate", "default", "label")),
    "tax": (_tax_cost, ("short_term", "long_term", "loss", "gains_budget", "wash_sale",
                        "harvest", "substitutes", "label")),
}
"""Cost models by their config name: the builder and the keys it reads."""
_REQUIRED_COST_KEYS = {"tax": ("short_term", "long_term")}
"""Keys with no default: a tax rate is the user's, never assumed."""
_TAX_AWARE_KEYS = ("harvest", "substitutes")
"""``[costs.tax]`` keys read by :class:`~rebalopt.rebalance.tax_aware.TaxAwareRebalancer`."""
_ORDER_KEYS: dict[str, type] = {
    "format": str, "account": str, "order_type": str, "time_in_force": str,
    "limit_band_bps": float, "basket": str, "currency": str, "exchange": str,
    "sec_type": str, "notional": bool, "tick": float, "sender_comp_id": str,
    "target_comp_id": str,
}
"""``[orders]`` keys and their types (:class:`~rebalopt.orders.OrderSettings` plus the format)."""
_RISK_KEYS = {
    "identity": ("model",),
    "diagonal": ("model", "file"),
    "covariance": ("model", "file"),
    "sample": ("model", "returns", "periods_per_year", "shrinkage"),
    "pca": ("model", "returns", "periods_per_year", "k"),
    "factor": ("model", "loadings", "factor_cov", "idio_var"),
}


@dataclass
class Settings:
    """A parsed configuration: everything needed to build a rebalancer.

    Attributes
    ----------
    method
        ``"naive"``, ``"band"`` or ``"optimal"``.
    cash
        Cash balance from ``[account]`` (currency), or ``None``.
    options
        The :class:`~rebalopt.rebalance.RebalanceConfig` (whole shares, limits).
    band
        Keyword arguments of :class:`~rebalopt.rebalance.band.BandRebalancer`.
    costs
        Cost models, in the order given.
    risk
        A :class:`~rebalopt.risk.RiskModel` or ``None``.
    sections
        Raw tables for the optimal rebalancer (``optimal``, ``constraints``, ``solver``).
    source
        The file read, if any.
    costs_given
        Whether the file has a ``[costs]`` table (an empty one means no cost on purpose).
    margin
        ``[account] margin``: post-trade cash may go below 0 (default ``False``: the
        command line refuses an order file a cash account cannot pay).
    origins
        The key behind each error ``field`` a built object may raise when planning
        (``"GroupBounds"`` -> ``"constraints.groups"``), read by :meth:`locate`.
    inputs
        The files the config reads (risk model inputs), so that no output overwrites one.
    orders
        ``[orders]``: the order file's format and :class:`~rebalopt.orders.OrderSettings`
        keys, typed and checked (the command line merges its flags over them).
    tax_aware
        ``[costs.tax]`` ``harvest`` and ``substitutes`` (the tax-aware wrapper's options).
    rebalancer_keys
        The ``[rebalancer]`` keys the file gives (``method`` aside), for a command that
        replaces the configured rebalancer and must say which keys it would not read.
    account_keys
        The ``[account]`` keys the file gives.
    """

    method: str = "naive"
    cash: float | None = None
    options: RebalanceConfig = field(default_factory=RebalanceConfig)
    band: dict[str, Any] = field(default_factory=dict)
    costs: list[CostModel] = field(default_factory=list)
    risk: Any = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None
    costs_given: bool = False
    margin: bool = False
    origins: dict[str, str] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)
    orders: dict[str, Any] = field(default_factory=dict)
    tax_aware: dict[str, Any] = field(default_factory=dict)
    rebalancer_keys: tuple[str, ...] = ()
    account_keys: tuple[str, ...] = ()
    _locator: Callable[[str], int | None] = field(default=lambda key: None, repr=False)

    def error(self, key: str, message: str) -> FileInputError:
        """A config error naming the file, the line of ``key`` and ``key``."""
        return FileInputError(message, path=self.source or "<config>", line=self._locator(key),
                              column=key, field=key)

    def locate(self, exc: InputError) -> InputError:
        """The config key behind an error raised when planning (unchanged if none).

        A constraint or risk model built from this file names itself in the error's
        ``field`` (``"GroupBounds"``, ``"risk model"``); the error is re-raised naming
        the file, the line and the key it was built from, keeping its asset.
        """
        if isinstance(exc, FileInputError) or self.source is None:
            return exc
        fld = (exc.field or "").split(".")[0]
        key = self.origins.get(fld)
        if key is None:
            return exc
        out = self.error(key, str(exc))
        out.asset = exc.asset
        return out

    @property
    def tax(self) -> TaxCost | None:
        """The ``[costs.tax]`` model, if any."""
        return next((m for m in self.costs if isinstance(m, TaxCost)), None)

    def build(self, periods: int | None = None) -> Any:
        """The rebalancer this configuration describes (anything with ``plan(state, targets)``).

        With a ``[costs.tax]`` model the optimal rebalancer is wrapped in
        :class:`~rebalopt.rebalance.tax_aware.TaxAwareRebalancer`. ``periods``: the
        :class:`~rebalopt.rebalance.multiperiod.MultiPeriodRebalancer` over that many
        periods instead (:func:`_build_multiperiod`).
        """
        if periods is not None:
            return _build_multiperiod(self, periods)
        if "multiperiod" in self.sections:
            raise self.error("multiperiod", "is read only with --periods (the single-period "
                             "plan would ignore it)")
        if self.method == "naive":
            return NaiveRebalancer(self.options, costs=list(self.costs))
        if self.method == "band":
            from rebalopt.rebalance.band import BandRebalancer

            try:
                return BandRebalancer(config=self.options, costs=list(self.costs), **self.band)
            except InputError as exc:
                raise self.error(f"band.{exc.field or 'width'}".replace("BandRebalancer.", ""),
                                 str(exc)) from None
        built = _build_optimal(self)
        tax = self.tax
        if tax is None:
            return built
        from rebalopt.rebalance.tax_aware import TaxAwareRebalancer

        return TaxAwareRebalancer(built, tax, substitutes=dict(self.tax_aware.get(
            "substitutes", {})), harvest=self.tax_aware.get("harvest", True))


_OPTIMAL_KEYS = ("risk_aversion", "horizon", "min_trade_weight", "feasibility_tol")
_INTEGER_KEYS = ("integer", "min_trade_value", "max_trades", "time_limit")
_CONSTRAINT_KEYS = ("long_only", "cash_floor", "min_weight", "max_weight", "groups", "turnover",
                    "gross_leverage", "net_leverage", "participation", "no_buy", "no_sell",
                    "no_trade")
_SOLVER_KEYS = ("name", "options")


def _strings(value: Any, key: str, s: Settings) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise s.error(key, f"expected a string or a list of strings, got {value!r}")
    return list(value)


def _constraints(table: dict[str, Any], s: Settings) -> list[Any]:
    from rebalopt import constraints as C

    _only(table, _CONSTRAINT_KEYS, "constraints", s)
    key = "constraints"
    out: list[Any] = []

    def add(obj: Any, origin: str) -> None:
        out.append(obj)
        s.origins[type(obj).__name__] = origin  # errors raised when planning name it

    try:
        if "long_only" in table:
            _typed(table["long_only"], "constraints.long_only", bool, s)
        if table.get("long_only", True) is not False:
            add(C.LongOnly(), "constraints.long_only")
        key = "constraints.cash_floor"
        add(C.CashFloor(_number(table.get("cash_floor", 0.0), key, s)), key)
        lo, hi = table.get("min_weight"), table.get("max_weight")
        if lo is not None or hi is not None:
            key = "constraints.max_weight" if hi is not None else "constraints.min_weight"
            lower = None if lo is None else _number(lo, "constraints.min_weight", s)
            upper = None if hi is None else _number(hi, "constraints.max_weight", s)
            if lower is not None and upper is not None and lower > upper:
                raise s.error("constraints.min_weight",
                              f"min_weight {lower:g} is above max_weight {upper:g}")
            add(C.WeightBounds(lower=lower, upper=upper), key)
        if "groups" in table:
            key = "constraints.groups"
            add(C.GroupBounds.from_text(_strings(table["groups"], key, s)), key)
        if "turnover" in table:
            key = "constraints.turnover"
            add(C.TurnoverLimit(_number(table["turnover"], key, s)), key)
        if "gross_leverage" in table or "net_leverage" in table:
            key = ("constraints.gross_leverage" if "gross_leverage" in table
                   else "constraints.net_leverage")
            g, n = table.get("gross_leverage"), table.get("net_leverage")
            add(C.Leverage(
                gross=None if g is None else _number(g, "constraints.gross_leverage", s),
                net=None if n is None else _number(n, "constraints.net_leverage", s)), key)
        if "participation" in table:
            key = "constraints.participation"
            add(C.ParticipationLimit(_number(table["participation"], key, s)), key)
        # tickers compared in upper case, as the desk files' (substitutes too): a
        # lower-case "xom" matched no asset and restricted nothing
        lists = {k: [t.strip().upper() for t in _strings(table[k], f"constraints.{k}", s)]
                 for k in ("no_buy", "no_sell", "no_trade") if k in table}
        if lists:
            key = f"constraints.{next(iter(lists))}"
            add(C.Restricted(**lists), key)
        return out
    except InputError as exc:
        if isinstance(exc, FileInputError):
            raise
        raise s.error(key, str(exc)) from None


def _build_optimal(settings: Settings) -> Any:
    """OptimalRebalancer from [optimal], [constraints], [solver] and [risk]."""
    from rebalopt.rebalance.optimal import OptimalRebalancer

    s = settings
    opt = s.sections.get("optimal", {})
    _only(opt, _OPTIMAL_KEYS + _INTEGER_KEYS, "optimal", s)
    kwargs: dict[str, Any] = {k: _number(v, f"optimal.{k}", s) for k, v in opt.items()
                              if k in _OPTIMAL_KEYS}
    mode = opt.get("integer", "round")
    if mode not in ("round", "exact"):
        raise s.error("optimal.integer", f"expected \"round\" or \"exact\", got {mode!r}")
    integer: dict[str, Any] = {k: _number(opt[k], f"optimal.{k}", s)
                               for k in ("min_trade_value", "time_limit") if k in opt}
    if "max_trades" in opt:
        integer["max_trades"] = _integer(opt["max_trades"], "optimal.max_trades", s, minimum=0)
    if s.options.fractional:
        for k in _INTEGER_KEYS:
            if k in opt:  # the whole-share stage that reads them does not run
                raise s.error(f"optimal.{k}", f"{k} needs whole shares, but rebalancer.fractional"
                              " = true (the fractional plan would ignore it)")
    if s.options.round_lots:
        integer["lots"] = float(s.options.lot_size)  # overrides the prices file's lot_size
    if "constraints" in s.sections:
        kwargs["constraints"] = _constraints(s.sections["constraints"], s)
    solver = s.sections.get("solver", {})
    _only(solver, _SOLVER_KEYS, "solver", s)
    if "name" in solver:
        kwargs["solver"] = _solver_names(solver["name"], s)
    if "options" in solver:
        chain = kwargs.get("solver") or list(OptimalRebalancer.solver)
        kwargs["solver_options"] = _solver_options(solver["options"], chain, s)
    if s.risk is not None:
        s.origins.setdefault("risk model", "risk")
    # [rebalancer] dust_value / dust_shares: read by the fractional plan's dust snap
    kwargs.update(dust_value=s.options.dust_value, dust_shares=s.options.dust_shares)
    try:
        inner = OptimalRebalancer(risk=s.risk, costs=list(s.costs), **kwargs)
    except InputError as exc:
        leaf = (exc.field or "").split(".")[-1]
        raise s.error(f"optimal.{leaf}" if leaf in _OPTIMAL_KEYS else "optimal",
                      str(exc)) from None
    if s.options.fractional:
        return inner
    _no_dust(s, "the whole-share stage does not snap dust (its trades are whole lots; "
                "the smallest trade is [optimal] min_trade_value)")
    from rebalopt.rebalance.integer import IntegerRebalancer

    try:
        built = IntegerRebalancer(relaxation=inner, mode=mode, **integer)
    except InputError as exc:
        leaf = (exc.field or "").split(".")[-1]
        raise s.error(f"optimal.{leaf}" if leaf in _INTEGER_KEYS else "optimal",
                      str(exc)) from None
    if "max_trades" in integer:
        s.origins["MaxTrades"] = "optimal.max_trades"
    if "min_trade_value" in integer:
        s.origins["MinTradeValue"] = "optimal.min_trade_value"
    if "lots" in integer:
        s.origins["LotSize"] = "rebalancer.lot_size"
    return built


_MULTIPERIOD_KEYS = ("terminal", "cost_in_tracking")


def _multiperiod_options(s: Settings) -> dict[str, Any]:
    """``[multiperiod]``: ``terminal`` (``"target"`` or a band in weights) and
    ``cost_in_tracking`` (a boolean), for ``--periods``."""
    table = _table(s.sections.get("multiperiod", {}), "multiperiod", s)
    _only(table, _MULTIPERIOD_KEYS, "multiperiod", s)
    out: dict[str, Any] = {}
    if "cost_in_tracking" in table:
        v = table["cost_in_tracking"]
        if not isinstance(v, bool):
            raise s.error("multiperiod.cost_in_tracking", f"must be true or false, got {v!r}")
        out["cost_in_tracking"] = v
    if "terminal" in table:
        v = table["terminal"]
        if v != "target":
            v = _number(v, "multiperiod.terminal", s)
            if not v >= 0:
                raise s.error("multiperiod.terminal",
                              f'must be "target" or a band >= 0 (weights), got {v!r}')
        out["terminal"] = v
    return out


def _no_dust(s: Settings, why: str) -> None:
    """``[rebalancer] dust_value`` / ``dust_shares`` set to anything but the default are
    an error naming the key where the plan built would not read them."""
    from rebalopt.rebalance.dust import DUST_SHARES, DUST_VALUE

    for key, default in (("dust_value", DUST_VALUE), ("dust_shares", DUST_SHARES)):
        if getattr(s.options, key) != default:
            raise s.error(f"rebalancer.{key}", f"{key} would be ignored: {why}")


def _build_multiperiod(settings: Settings, periods: int) -> Any:
    """MultiPeriodRebalancer over ``periods`` periods from [optimal], [constraints],
    [solver] and [risk] (``rebalopt rebalance --periods N``).

    The ``[optimal] horizon`` (years) is split into ``periods`` equal periods, so
    ``periods = 1`` is the single-period program. Everything the multi-period planner
    would not read is an error naming the key: a method other than optimal, whole
    shares or round lots (its schedule is in fractional shares), a tax term, a solver
    other than Clarabel.
    """
    from rebalopt.rebalance.multiperiod import MultiPeriodRebalancer
    from rebalopt.rebalance.optimal import OptimalRebalancer

    s = settings
    flag = "--periods"
    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
        raise InputError(f"must be an integer >= 1, got {periods!r}", field=flag)
    if s.method != "optimal":
        raise (s.error("rebalancer.method", f"--periods plans with the multi-period optimizer; "
                       f"method = {s.method!r} would ignore it (use method = \"optimal\")")
               if s.source is not None else InputError(
                   "plans with the multi-period optimizer: give a config with [rebalancer] "
                   "method = \"optimal\" and fractional = true", field=flag))
    if not s.options.fractional:
        raise s.error("rebalancer.fractional", "--periods plans a schedule in fractional "
                      "shares: set fractional = true (whole shares would be ignored)")
    if s.tax is not None:
        raise s.error("costs.tax", "--periods does not plan with tax lots: the multi-period "
                      "optimizer would ignore the tax term")
    _no_dust(s, "the multi-period schedule snaps trades below [optimal] min_trade_weight "
                "instead")
    opt = s.sections.get("optimal", {})
    _only(opt, _OPTIMAL_KEYS + _INTEGER_KEYS, "optimal", s)
    for k in _INTEGER_KEYS:
        if k in opt:  # no whole-share stage runs after the schedule
            raise s.error(f"optimal.{k}", f"{k} needs whole shares, but rebalancer.fractional"
                          " = true (the multi-period plan would ignore it)")
    values = {k: _number(v, f"optimal.{k}", s) for k, v in opt.items() if k in _OPTIMAL_KEYS}
    horizon = values.pop("horizon", OptimalRebalancer.horizon)
    kwargs: dict[str, Any] = {"periods": periods, "period": horizon / periods, **values}
    if "constraints" in s.sections:
        kwargs["constraints"] = _constraints(s.sections["constraints"], s)
    solver = s.sections.get("solver", {})
    _only(solver, _SOLVER_KEYS, "solver", s)
    chain = ["CLARABEL"]
    if "name" in solver:
        names = _solver_names(solver["name"], s)
        if names != chain:
            raise s.error("solver.name", f"--periods solves with CLARABEL only; the chain "
                          f"{', '.join(names)} would be ignored")
    if "options" in solver:
        kwargs["solver_options"] = _solver_options(solver["options"], chain, s).get("CLARABEL")
    kwargs.update(_multiperiod_options(s))
    if s.risk is not None:
        s.origins.setdefault("risk model", "risk")
    try:
        return MultiPeriodRebalancer(risk=s.risk, costs=list(s.costs), **kwargs)
    except InputError as exc:
        leaf = (exc.field or "").split(".")[-1]
        key = {"costs": "costs", "risk_aversion": "optimal.risk_aversion",
               "period": "optimal.horizon"}.get(leaf)
        if key is None:
            raise
        raise s.error(key, str(exc)) from None


_SOLVER_PROBES: dict[str, Callable[[dict[str, Any]], None]] = {}


def _probe_clarabel(opts: dict[str, Any]) -> None:
    import clarabel

    settings = clarabel.DefaultSettings()
    for k, v in opts.items():
        if not hasattr(settings, k):
            raise KeyError(k)
        setattr(settings, k, v)  # raises on a value of the wrong type


def _probe_scs(opts: dict[str, Any]) -> None:
    import scipy.sparse as sp
    import scs

    data = {"A": sp.csc_matrix(np.ones((1, 1))), "b": np.ones(1), "c": np.ones(1)}
    scs.SCS(data, {"l": 1}, **{"verbose": False, **opts})  # builds, does not solve


def _probe_osqp(opts: dict[str, Any]) -> None:
    import osqp
    import scipy.sparse as sp

    one = sp.csc_matrix(np.ones((1, 1)))
    osqp.OSQP().setup(one, np.zeros(1), one, np.zeros(1), np.ones(1),
                      **{"verbose": False, **opts})


_SOLVER_PROBES.update(CLARABEL=_probe_clarabel, SCS=_probe_scs, OSQP=_probe_osqp)
"""Solvers whose options are checked by the solver itself before any plan."""


def _solver_names(value: Any, s: Settings) -> list[str]:
    import cvxpy as cp

    names = [n.upper() for n in _strings(value, "solver.name", s)]
    installed = set(cp.installed_solvers())
    for n in names:
        if n not in installed:
            raise s.error("solver.name", f"solver {n!r} is not installed (installed: "
                          f"{', '.join(sorted(installed))})")
    return names


def _solver_options(value: Any, chain: list[str], s: Settings) -> dict[str, dict[str, Any]]:
    """``[solver] options``: one table per solver of the chain, every name and value
    checked by the solver's own settings (a typo must not make the first solver fail
    and the next one answer)."""
    out: dict[str, dict[str, Any]] = {}
    for name, body in _table(value, "solver.options", s).items():
        key = f"solver.options.{name}"
        solver = str(name).upper()
        opts = _table(body, key, s)
        if solver not in chain:
            raise s.error(key, f"options for {solver}, which is not in the solver chain "
                          f"({', '.join(chain)}): they would never be read")
        probe = _SOLVER_PROBES.get(solver)
        if probe is None:
            raise s.error(key, f"options can be checked only for {', '.join(_SOLVER_PROBES)}; "
                          f"{solver} would receive them unchecked")
        for k, v in opts.items():
            try:
                probe({k: v})
            except KeyError:
                raise s.error(f"{key}.{k}", f"{solver} has no option {k!r}") from None
            except (TypeError, ValueError, AttributeError, OverflowError) as exc:
                # the solver's own words: an unknown name or a bad value
                text = " ".join(str(exc).split())
                unknown = "nrecognized" in text or "invalid keyword" in text
                why = f"{solver} has no option {k!r}" if unknown else (
                    f"{solver} rejects {k} = {v!r}: {text}")
                raise s.error(f"{key}.{k}", why) from None
        out[solver] = opts
    return out


# --------------------------------------------------------------------- parsing
def _locator(text: str) -> Callable[[str], int | None]:
    """Map a dotted key (``costs.spread.half_spread_bps``) to its line in ``text``."""
    lines = text.splitlines()

    def find(key: str) -> int | None:
        parts = key.split(".")
        table = ""
        best: int | None = None
        for i, raw in enumerate(lines, start=1):
            line = raw.split("#", 1)[0].strip()
            m = re.fullmatch(r"\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if m:
                table = m.group(1).replace(" ", "").replace('"', "")
                if table == key:
                    return i
                continue
            m = re.match(r"([A-Za-z0-9_\-\".]+)\s*=", line)
            if m is None:
                continue
            k = m.group(1).replace('"', "")
            full = f"{table}.{k}" if table else k
            if full == key:
                return i
            if best is None and (full.startswith(key + ".") or k == parts[-1]):
                best = i
        if best is None:  # a key inside an inline table: { a = 1, typo = 2 }
            leaf = re.compile(rf"[{{,]\s*\"?{re.escape(parts[-1])}\"?\s*=")
            for i, raw in enumerate(lines, start=1):
                if leaf.search(raw.split("#", 1)[0]):
                    return i
        return best

    return find


def _table(value: Any, key: str, s: Settings) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise s.error(key, f"expected a table, got {type(value).__name__}")
    return dict(value)


def _only(table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str, s: Settings) -> None:
    for k in table:
        if k not in allowed:
            raise s.error(f"{prefix}.{k}",
                          f"unknown key (allowed in [{prefix}]: {', '.join(allowed)})")


def _number(value: Any, key: str, s: Settings) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise s.error(key, f"expected a number, got {value!r}")
    if not np.isfinite(value):
        raise s.error(key, f"expected a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, key: str, s: Settings, minimum: int | None = None) -> int:
    """An integer (``2`` or ``2.0``); ``2.5`` is an error, never rounded."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and np.isfinite(value) and float(value).is_integer())
    if not ok:
        raise s.error(key, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise s.error(key, f"must be >= {minimum}, got {value!r}")
    return int(value)


def _typed(value: Any, key: str, kind: type, s: Settings) -> Any:
    if kind is float:
        return _number(value, key, s)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise s.error(key, f"expected an integer, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise s.error(key, f"expected true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise s.error(key, f"expected a string, got {value!r}")
    return value


def _path(value: Any, key: str, s: Settings) -> Path:
    if not isinstance(value, str) or not value:
        raise s.error(key, f"expected a file path, got {value!r}")
    p = Path(value)
    if not p.is_absolute() and s.source is not None:
        p = s.source.parent / p
    if not p.exists():
        raise s.error(key, f"file not found: {p}")
    s.inputs.append(p)
    return p


_MISSING = ("", "nan", "na", "n/a", "null", "none", "#n/a")


def _read_frame(p: Path, key: str, s: Settings, *, blanks: bool = False) -> pd.DataFrame:
    """A numeric CSV (first column the index): every cell a finite number, else a
    :class:`FileInputError` naming the file, the line and the column of the cell.

    ``blanks``: an empty or NaN cell is a missing value (a returns file) instead of an
    error.
    """
    via = f" ({key} in {s.source.name})" if s.source is not None else f" ({key})"
    text = read_text_file(p)
    rows = list(csv.reader(text.splitlines()))
    numbered = [(i, [c.strip() for c in r]) for i, r in enumerate(rows, start=1)
                if r and any(c.strip() for c in r)]
    if not numbered:
        raise FileInputError(f"empty file{via}", path=p, line=1)
    (hline, header), body = numbered[0], numbered[1:]
    columns = header[1:]
    for k, name in enumerate(columns, start=2):
        if not name:
            raise FileInputError(f"empty column name{via}", path=p, line=hline, column=k)
        if columns.count(name) > 1:
            raise FileInputError(f"duplicate column in header{via}", path=p, line=hline,
                                 column=name)
    index: list[str] = []
    values = np.empty((len(body), len(columns)))
    seen: dict[str, int] = {}
    for r, (line, cells) in enumerate(body):
        if len(cells) != len(header):
            raise FileInputError(f"{len(cells)} cells but the header has {len(header)}{via}",
                                 path=p, line=line)
        label = cells[0]
        if label in seen:
            raise FileInputError(f"duplicate row {label!r} (first on line {seen[label]}){via}",
                                 path=p, line=line, column=header[0] or 1, asset=label)
        seen[label] = line
        index.append(label)
        for c, raw in enumerate(cells[1:]):
            if raw.lower() in _MISSING:
                if not blanks:
                    raise FileInputError(f"missing value (row {label!r}){via}", path=p,
                                         line=line, column=columns[c], asset=label)
                values[r, c] = np.nan
                continue
            try:
                v = float(raw)
            except ValueError:
                raise FileInputError(f"{raw!r} is not a number (row {label!r}){via}", path=p,
                                     line=line, column=columns[c], asset=label) from None
            if not np.isfinite(v):
                raise FileInputError(f"{raw!r} is not a finite number (row {label!r}){via}",
                                     path=p, line=line, column=columns[c], asset=label)
            values[r, c] = v
    return pd.DataFrame(values, index=pd.Index(index, name=header[0] or None), columns=columns)


def _parse_options(table: dict[str, Any], s: Settings) -> RebalanceConfig:
    kinds = {f.name: f.type for f in fields(RebalanceConfig)}
    values: dict[str, Any] = {}
    for k, v in table.items():
        kind = {"float": float, "int": int, "bool": bool}.get(str(kinds[k]), str)
        values[k] = _typed(v, f"rebalancer.{k}", kind, s)
    try:
        return RebalanceConfig(**values)
    except InputError as exc:
        key = (exc.field or "").replace("RebalanceConfig.", "rebalancer.")
        raise s.error(key or "rebalancer", str(exc)) from None


def _parse_costs(table: dict[str, Any], s: Settings) -> list[CostModel]:
    out: list[CostModel] = []
    for name, body in table.items():
        if name not in _COSTS:
            raise s.error(f"costs.{name}", f"unknown cost model (known: {', '.join(_COSTS)})")
        cls, allowed = _COSTS[name]
        body = _table(body, f"costs.{name}", s)
        _only(body, allowed, f"costs.{name}", s)
        for k in _REQUIRED_COST_KEYS.get(name, ()):
            if k not in body:
                raise s.error(f"costs.{name}", f"[costs.{name}] needs {k} (no default is "
                              "assumed)")
        kwargs: dict[str, Any] = {}
        for k, v in body.items():
            key = f"costs.{name}.{k}"
            if k == "label":
                kwargs[k] = _typed(v, key, str, s)
            elif k in ("wash_sale", "harvest"):
                kwargs[k] = _typed(v, key, bool, s)
            elif k == "substitutes":
                kwargs[k] = _by_ticker(_table(v, key, s), key, s, "substitute",
                                       lambda b, at: _typed(b, at, str, s).strip().upper())
            elif k == "half_spread_bps" and isinstance(v, Mapping):
                kwargs[k] = _by_ticker(dict(v), key, s, "value", lambda x, at: _number(x, at, s))
            else:
                kwargs[k] = _number(v, key, s)
        if name == "tax":
            s.tax_aware = {k: kwargs.pop(k) for k in _TAX_AWARE_KEYS if k in kwargs}
        try:
            out.append(cls(**kwargs))
        except InputError as exc:
            leaf = (exc.field or "").split(".")[-1]
            raise s.error(f"costs.{name}.{leaf}" if leaf in allowed else f"costs.{name}",
                          str(exc)) from None
    return out


def _by_ticker(table: dict[str, Any], key: str, s: Settings, what: str,
               read: Callable[[Any, str], Any]) -> dict[str, Any]:
    """A per-ticker table (``what`` per ticker, each value read by ``read(value, key)``),
    tickers compared in upper case as in the desk files: ``{ aapl = 3 }`` matched no
    asset, which then paid the default; two keys naming one ticker (``XOM`` and
    ``xom``) are an error, not the last kept."""
    out: dict[str, Any] = {}
    first: dict[str, str] = {}
    for a, x in table.items():
        ticker = str(a).strip().upper()
        if ticker in first:
            raise s.error(f"{key}.{a}", f"{a!r} and {first[ticker]!r} are one ticker "
                          f"{ticker!r}: give it one {what}")
        first[ticker] = str(a)
        out[ticker] = read(x, f"{key}.{a}")
    return out


def _parse_risk(table: dict[str, Any], s: Settings) -> Any:
    from rebalopt import risk

    model = table.get("model")
    if model not in _RISK_KEYS:
        raise s.error("risk.model", f"expected one of {', '.join(_RISK_KEYS)}, got {model!r}")
    _only(table, _RISK_KEYS[model], "risk", s)
    s.origins["risk model"] = {"identity": "risk.model", "diagonal": "risk.file",
                               "covariance": "risk.file", "factor": "risk.loadings"}.get(
                                   model, "risk.returns")
    try:
        if model == "identity":
            return risk.Identity()
        if model == "diagonal":
            df = _read_frame(_path(table.get("file"), "risk.file", s), "risk.file", s)
            if df.shape[1] != 1:
                raise s.error("risk.file", "expected two columns: ticker, annualized variance")
            return risk.Diagonal(df.iloc[:, 0].astype(float))
        if model == "covariance":
            df = _read_frame(_path(table.get("file"), "risk.file", s), "risk.file", s)
            return risk.Covariance(df.astype(float))
        if model == "factor":
            B = _read_frame(_path(table.get("loadings"), "risk.loadings", s), "risk.loadings", s)
            F = _read_frame(_path(table.get("factor_cov"), "risk.factor_cov", s),
                            "risk.factor_cov", s)
            d = _read_frame(_path(table.get("idio_var"), "risk.idio_var", s), "risk.idio_var", s)
            return risk.FactorModel(B.astype(float), F.astype(float), d.iloc[:, 0].astype(float))
        returns = _read_frame(_path(table.get("returns"), "risk.returns", s), "risk.returns", s,
                              blanks=True)
        ppy = _number(table.get("periods_per_year", 252.0), "risk.periods_per_year", s)
        if model == "sample":
            shrink = table.get("shrinkage", "ledoit_wolf")
            # a bool is an int: true was a full shrinkage (1.0), false none
            if not (shrink == "ledoit_wolf" or (isinstance(shrink, (int, float))
                                                and not isinstance(shrink, bool))):
                raise s.error("risk.shrinkage", f"expected 'ledoit_wolf' or a number, got {shrink!r}")
            return risk.sample_covariance(returns.astype(float), shrink, ppy)
        k = _typed(table.get("k", 10), "risk.k", int, s)
        return risk.pca_factor_model(returns.astype(float), k, ppy)
    except InputError as exc:
        if isinstance(exc, FileInputError):
            raise
        raise s.error("risk", str(exc)) from None


def _parse_orders(table: dict[str, Any], s: Settings) -> dict[str, Any]:
    """``[orders]``: typed values, the format one of :data:`rebalopt.orders.FORMATS`, and
    the :class:`~rebalopt.orders.OrderSettings` they make checked (errors at their key)."""
    from rebalopt.orders import FORMATS, OrderSettings

    _only(table, tuple(_ORDER_KEYS), "orders", s)
    out = {k: _typed(v, f"orders.{k}", _ORDER_KEYS[k], s) for k, v in table.items()}
    if out.get("format", "csv") not in FORMATS:
        raise s.error("orders.format", f"expected one of {', '.join(FORMATS)}, got "
                      f"{out['format']!r}")
    try:
        OrderSettings(**{k: v for k, v in out.items() if k != "format"})
    except InputError as exc:
        key = next((k for k in (exc.field, "order_type") if k in table), None)
        raise s.error(f"orders.{key}" if key else "orders",
                      str(exc).split("] ", 1)[-1]) from None
    return out


def parse_config(text: str, source: str | Path | None = None) -> Settings:
    """Parse TOML ``text`` into :class:`Settings` (``source`` names it in errors and
    anchors relative paths).

    Raises
    ------
    FileInputError
        Invalid TOML (with its line and column), an unknown section or key, a value of
        the wrong type or out of range, a missing referenced file.
    """
    src = Path(source) if source is not None else None
    s = Settings(source=src, _locator=_locator(text))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(m.group(1)) if m else None
        col = int(m.group(2)) if m else None
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        raise FileInputError(f"invalid TOML: {reason}", path=src or "<config>", line=line,
                             column=col) from None
    known = ("account", "rebalancer", "band", "costs", "risk", "optimal", "constraints", "solver",
             "orders", "multiperiod")
    for k in data:
        if k not in known:
            raise s.error(k, f"unknown section (known: {', '.join(known)})")
    account = _table(data.get("account", {}), "account", s)
    _only(account, ("cash", "margin"), "account", s)
    if "cash" in account:
        s.cash = _number(account["cash"], "account.cash", s)
    if "margin" in account:
        s.margin = _typed(account["margin"], "account.margin", bool, s)
    s.account_keys = tuple(account)
    reb = _table(data.get("rebalancer", {}), "rebalancer", s)
    _only(reb, ("method", *_OPTION_KEYS), "rebalancer", s)
    method = reb.pop("method", "naive")
    if method not in METHODS:
        raise s.error("rebalancer.method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    s.method = method
    if s.margin and method == "optimal":
        raise s.error("account.margin", "margin = true is read by the naive and band plans "
                      "(kept unfunded); the optimal plan would ignore it: it borrows only "
                      "down to [constraints] cash_floor (set it below 0)")
    for k in reb:
        if k in _IGNORED_BY.get(method, {}):
            raise s.error(f"rebalancer.{k}", f"method = {method!r} does not read {k} "
                          f"({_IGNORED_BY[method][k]})")
    s.options = _parse_options(reb, s)
    s.rebalancer_keys = tuple(reb)
    if "lot_size" in reb and not s.options.round_lots:
        raise s.error("rebalancer.lot_size", "lot_size is read only with round_lots = true "
                      "(per-asset lots: the prices file's lot_size column)")
    if s.options.round_lots and s.options.fractional:
        raise s.error("rebalancer.round_lots", "round_lots = true contradicts fractional = true")
    band = _table(data.get("band", {}), "band", s)
    _only(band, _BAND_KEYS, "band", s)
    if band and method != "band":
        raise s.error("band", f"[band] is used only with method = \"band\" (method is {method!r})")
    kinds = {"width": float, "relative": bool, "to": str, "fund": bool}
    s.band = {k: _typed(v, f"band.{k}", kinds[k], s) for k, v in band.items()}
    s.costs = _parse_costs(_table(data.get("costs", {}), "costs", s), s)
    s.costs_given = "costs" in data
    if s.tax is not None and method != "optimal":
        raise s.error("costs.tax", f"a tax term needs method = \"optimal\" (method is "
                      f"{method!r}, whose plan would not weigh it)")
    if "orders" in data:
        s.orders = _parse_orders(_table(data["orders"], "orders", s), s)
    if "risk" in data:
        s.risk = _parse_risk(_table(data["risk"], "risk", s), s)
    for name in ("optimal", "constraints", "solver", "multiperiod"):
        if name in data:
            if method != "optimal":
                raise s.error(name, f"[{name}] needs method = \"optimal\" (method is {method!r}); "
                              "naive and band rebalancers would ignore it")
            s.sections[name] = _table(data[name], name, s)
    return s


def load_config(path: str | Path) -> Settings:
    """Read and parse a TOML config file (see the module docstring for the format)."""
    p = Path(path)
    text = read_text_file(p, encoding="utf-8")
    return parse_config(text, p)
