"""Capital-gains tax rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rebalopt.errors import InputError

__all__ = ["TaxRates"]


@dataclass(frozen=True)
class TaxRates:
    """Tax rates on realized gains (fractions, e.g. 0.37).

    Parameters
    ----------
    short_term
        Rate on short-term gains (held one year or less).
    long_term
        Rate on long-term gains.
    loss
        Rate at which a realized loss is valued (the value of a harvested loss: the
        tax it saves on other gains or income). ``None``: the rate of the loss's own
        term. The simulator and the optimizer both assume losses offset gains taxed
        elsewhere (no carry-forward, no annual limit): the usual assumption of the
        tax-loss-harvesting literature, stated, not hidden.
    """

    short_term: float = 0.37
    long_term: float = 0.20
    loss: float | None = None

    def __post_init__(self) -> None:
        for name in ("short_term", "long_term", "loss"):
            v = getattr(self, name)
            if v is None and name == "loss":
                continue
            # a bool is an int: short_term=True was a 100% rate
            if not (isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and 0 <= v <= 1):
                raise InputError(f"must be a number in [0, 1], got {v!r}", field=name)

    def rate(self, gain: float, long_term: bool) -> float:
        """Rate applied to ``gain`` (currency) of the given term."""
        if gain < 0 and self.loss is not None:
            return self.loss
        return self.long_term if long_term else self.short_term

    def tax(self, short_gain: float, long_gain: float) -> float:
        """Tax on net short- and long-term gains, currency (negative = tax saved)."""
        return (short_gain * self.rate(short_gain, False)
                + long_gain * self.rate(long_gain, True))

    @property
    def zero(self) -> bool:
        """Whether every rate is 0 (the tax-unaware case)."""
        return self.short_term == 0 and self.long_term == 0 and not self.loss
