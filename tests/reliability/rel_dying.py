"""A rebalancer whose worker process dies on chosen accounts (for the batch-fault tests).

A module of its own so that worker processes (a process pool, Dask workers through
``Client.upload_file``) can import it by name.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DyingRebalancer:
    """Plans with ``inner``; in any process other than ``parent`` it kills its own
    process (``os._exit`` or SIGKILL) when the account's cash is in ``die_on_cash``, or
    (``how="hang"``) sleeps ``hang_seconds`` there, a worker that hangs."""

    inner: Any
    die_on_cash: frozenset[float] = field(default_factory=frozenset)
    how: str = "exit"
    parent: int = field(default_factory=os.getpid)
    hang_seconds: float = 60.0

    def plan(self, state: Any, targets: Any) -> Any:
        if os.getpid() != self.parent and round(state.cash, 2) in self.die_on_cash:
            if self.how == "hang":
                time.sleep(self.hang_seconds)
            elif self.how == "exit":
                os._exit(13)
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.plan(state, targets)
