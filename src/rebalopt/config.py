"""TOML configuration for the command line: which rebalancer, costs, risk model, limits.

A complete example (every section and key is optional)::

    [account]
    cash = 25000.0                 # currency; --cash on the command line wins

    [rebalancer]
    method = "optimal"             # "naive", "band" or "optimal"
    fractional = false             # whole shares (or the prices file's lot_size)
    min_trade_value = 100.0        # currency (naive)
    min_weight_change = 0.0        # fraction of equity (naive)
    allow_short = false
    max_single_weight = 1.0
    max_gross_leverage = 1.0
    cash_buffer = 0.0              # fraction of equity kept in cash

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

    [optimal]                      # method = "optimal"
    risk_aversion = 100.0          # gamma, dimensionless
    horizon = 0.0833               # years the post-trade book is held

    [constraints]                  # method = "optimal"; replaces the default long-only + no borrowing
    long_only = true
    cash_floor = 0.0               # post-trade cash >= this fraction of equity
    max_weight = 0.10
    groups = ["Information Technology <= 0.25", "Energy >= 0.02"]   # 'sector' column of the prices file
    turnover = 0.20                # one-way
    no_trade = ["XYZ"]

    [solver]                       # method = "optimal"
    name = ["CLARABEL", "SCS"]     # tried in order

    [risk]                         # tracking error to report (and, for "optimal", to trade off)
    model = "sample"               # "identity", "diagonal", "covariance", "sample", "pca", "factor"
    returns = "returns.csv"        # dates x tickers of periodic returns (sample, pca)
    periods_per_year = 252

Paths inside the file are relative to the file. Unknown sections or keys are
errors (a typo must not silently drop a limit); every error names the file, the
line and the key, as :class:`~rebalopt.adapters.files.FileInputError`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rebalopt.adapters.files import FileInputError, read_text_file
from rebalopt.costs import Commission, CostModel, MarketImpact, Spread
from rebalopt.errors import InputError
from rebalopt.rebalance import NaiveRebalancer, RebalanceConfig

__all__ = ["ConfigError", "Settings", "load_config", "parse_config"]

ConfigError = FileInputError
"""Errors in a config file are file errors whose column is the dotted key."""

METHODS = ("naive", "band", "optimal")
_OPTION_KEYS = tuple(f.name for f in fields(RebalanceConfig) if f.name != "pending")
_BAND_KEYS = ("width", "relative", "to", "fund")
_COSTS: dict[str, tuple[type[CostModel], tuple[str, ...]]] = {
    "commission": (Commission, ("per_share", "bps", "minimum", "per_order", "label")),
    "spread": (Spread, ("half_spread_bps", "default_bps", "label")),
    "impact": (MarketImpact, ("coef", "exponent", "label")),
}
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
    """

    method: str = "naive"
    cash: float | None = None
    options: RebalanceConfig = field(default_factory=RebalanceConfig)
    band: dict[str, Any] = field(default_factory=dict)
    costs: list[CostModel] = field(default_factory=list)
    risk: Any = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None
    _locator: Callable[[str], int | None] = field(default=lambda key: None, repr=False)

    def error(self, key: str, message: str) -> FileInputError:
        """A config error naming the file, the line of ``key`` and ``key``."""
        return FileInputError(message, path=self.source or "<config>", line=self._locator(key),
                              column=key, field=key)

    def build(self) -> Any:
        """The rebalancer this configuration describes (anything with ``plan(state, targets)``)."""
        if self.method == "naive":
            return NaiveRebalancer(self.options, costs=list(self.costs))
        if self.method == "band":
            from rebalopt.rebalance.band import BandRebalancer

            try:
                return BandRebalancer(config=self.options, costs=list(self.costs), **self.band)
            except InputError as exc:
                raise self.error(f"band.{exc.field or 'width'}".replace("BandRebalancer.", ""),
                                 str(exc)) from None
        return _build_optimal(self)


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
    try:
        out: list[Any] = []
        if table.get("long_only", True) is not False:
            out.append(C.LongOnly())
        if "long_only" in table:
            _typed(table["long_only"], "constraints.long_only", bool, s)
        out.append(C.CashFloor(_number(table.get("cash_floor", 0.0), "constraints.cash_floor", s)))
        lo, hi = table.get("min_weight"), table.get("max_weight")
        if lo is not None or hi is not None:
            key = "constraints.max_weight" if hi is not None else "constraints.min_weight"
            out.append(C.WeightBounds(
                lower=None if lo is None else _number(lo, "constraints.min_weight", s),
                upper=None if hi is None else _number(hi, "constraints.max_weight", s)))
        if "groups" in table:
            key = "constraints.groups"
            out.append(C.GroupBounds.from_text(_strings(table["groups"], key, s)))
        if "turnover" in table:
            key = "constraints.turnover"
            out.append(C.TurnoverLimit(_number(table["turnover"], key, s)))
        if "gross_leverage" in table or "net_leverage" in table:
            key = "constraints.gross_leverage"
            g, n = table.get("gross_leverage"), table.get("net_leverage")
            out.append(C.Leverage(
                gross=None if g is None else _number(g, "constraints.gross_leverage", s),
                net=None if n is None else _number(n, "constraints.net_leverage", s)))
        if "participation" in table:
            key = "constraints.participation"
            out.append(C.ParticipationLimit(_number(table["participation"], key, s)))
        lists = {k: _strings(table[k], f"constraints.{k}", s)
                 for k in ("no_buy", "no_sell", "no_trade") if k in table}
        if lists:
            key = "constraints.no_trade"
            out.append(C.Restricted(**lists))
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
        integer["max_trades"] = int(_number(opt["max_trades"], "optimal.max_trades", s))
    if "constraints" in s.sections:
        kwargs["constraints"] = _constraints(s.sections["constraints"], s)
    solver = s.sections.get("solver", {})
    _only(solver, _SOLVER_KEYS, "solver", s)
    if "name" in solver:
        kwargs["solver"] = _strings(solver["name"], "solver.name", s)
    if "options" in solver:
        opts = _table(solver["options"], "solver.options", s)
        kwargs["solver_options"] = {str(k): _table(v, f"solver.options.{k}", s)
                                    for k, v in opts.items()}
    try:
        inner = OptimalRebalancer(risk=s.risk, costs=list(s.costs), **kwargs)
    except InputError as exc:
        leaf = (exc.field or "").split(".")[-1]
        raise s.error(f"optimal.{leaf}" if leaf in _OPTIMAL_KEYS else "optimal",
                      str(exc)) from None
    if s.options.fractional:
        return inner
    from rebalopt.rebalance.integer import IntegerRebalancer

    try:
        return IntegerRebalancer(relaxation=inner, mode=mode, **integer)
    except InputError as exc:
        raise s.error("optimal", str(exc)) from None


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
    return p


def _read_frame(p: Path, key: str, s: Settings, *, index_col: int | None = 0) -> pd.DataFrame:
    try:
        df = pd.read_csv(p, index_col=index_col)
    except (ValueError, OSError) as exc:
        raise s.error(key, f"cannot read {p}: {exc}") from None
    df.columns = df.columns.map(str)
    df.index = df.index.map(str)
    return df


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
        kwargs: dict[str, Any] = {}
        for k, v in body.items():
            key = f"costs.{name}.{k}"
            if k == "label":
                kwargs[k] = _typed(v, key, str, s)
            elif k == "half_spread_bps" and isinstance(v, Mapping):
                kwargs[k] = {str(a): _number(x, f"{key}.{a}", s) for a, x in v.items()}
            else:
                kwargs[k] = _number(v, key, s)
        try:
            out.append(cls(**kwargs))
        except InputError as exc:
            leaf = (exc.field or "").split(".")[-1]
            raise s.error(f"costs.{name}.{leaf}" if leaf in allowed else f"costs.{name}",
                          str(exc)) from None
    return out


def _parse_risk(table: dict[str, Any], s: Settings) -> Any:
    from rebalopt import risk

    model = table.get("model")
    if model not in _RISK_KEYS:
        raise s.error("risk.model", f"expected one of {', '.join(_RISK_KEYS)}, got {model!r}")
    _only(table, _RISK_KEYS[model], "risk", s)
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
        returns = _read_frame(_path(table.get("returns"), "risk.returns", s), "risk.returns", s)
        ppy = _number(table.get("periods_per_year", 252.0), "risk.periods_per_year", s)
        if model == "sample":
            shrink = table.get("shrinkage", "ledoit_wolf")
            if not (shrink == "ledoit_wolf" or isinstance(shrink, (int, float))):
                raise s.error("risk.shrinkage", f"expected 'ledoit_wolf' or a number, got {shrink!r}")
            return risk.sample_covariance(returns.astype(float), shrink, ppy)
        k = _typed(table.get("k", 10), "risk.k", int, s)
        return risk.pca_factor_model(returns.astype(float), k, ppy)
    except InputError as exc:
        if isinstance(exc, FileInputError):
            raise
        raise s.error("risk", str(exc)) from None


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
    known = ("account", "rebalancer", "band", "costs", "risk", "optimal", "constraints", "solver")
    for k in data:
        if k not in known:
            raise s.error(k, f"unknown section (known: {', '.join(known)})")
    account = _table(data.get("account", {}), "account", s)
    _only(account, ("cash",), "account", s)
    if "cash" in account:
        s.cash = _number(account["cash"], "account.cash", s)
    reb = _table(data.get("rebalancer", {}), "rebalancer", s)
    _only(reb, ("method", *_OPTION_KEYS), "rebalancer", s)
    method = reb.pop("method", "naive")
    if method not in METHODS:
        raise s.error("rebalancer.method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    s.method = method
    s.options = _parse_options(reb, s)
    band = _table(data.get("band", {}), "band", s)
    _only(band, _BAND_KEYS, "band", s)
    if band and method != "band":
        raise s.error("band", f"[band] is used only with method = \"band\" (method is {method!r})")
    kinds = {"width": float, "relative": bool, "to": str, "fund": bool}
    s.band = {k: _typed(v, f"band.{k}", kinds[k], s) for k, v in band.items()}
    s.costs = _parse_costs(_table(data.get("costs", {}), "costs", s), s)
    if "risk" in data:
        s.risk = _parse_risk(_table(data["risk"], "risk", s), s)
    for name in ("optimal", "constraints", "solver"):
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
