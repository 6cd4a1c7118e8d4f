"""BLAS threads: one thread around the library's many small linear-algebra calls.

On a machine with few cores, OpenBLAS's threads busy-wait for each other on small
problems, and under load from other processes they are descheduled in turn: the
20-year backtest (``benchmarks/bench_backtest_optimal.py``) took 149 s with the
default threads and 55 s with one on a 2-core machine, and a 500 x 500 ``eigh``
7.3 s against 0.40 s (load 15). The estimators, the backtest loop and each batch
task therefore run with one BLAS thread (``threadpoolctl``), restored on exit.

Set the environment variable ``REBALOPT_BLAS_THREADS`` to a number of threads, or
to ``0`` to leave the BLAS libraries as they are. The limit is process-wide while it
holds (BLAS has no per-thread setting): other threads calling BLAS meanwhile share it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar

__all__ = ["ENV", "blas_limit", "limited_blas", "with_limited_blas"]

ENV = "REBALOPT_BLAS_THREADS"
"""Environment variable: BLAS threads inside the library (default 1; 0 = untouched)."""

_CONTROLLER: Any = None
_LOCK = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])


def blas_limit() -> int | None:
    """Threads the library allows BLAS (``None``: leave the libraries as they are)."""
    raw = os.environ.get(ENV, "1").strip()
    try:
        n = int(raw)
    except ValueError:
        return 1
    return n if n > 0 else None


def _controller() -> Any:
    """One ``ThreadpoolController`` per process (creating one scans the loaded
    libraries, ~2 ms; its ``limit`` then costs ~0.02 ms)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        with _LOCK:
            if _CONTROLLER is None:
                try:
                    import scipy.linalg  # noqa: F401 - load SciPy's BLAS before the scan
                    from threadpoolctl import ThreadpoolController
                except ImportError:  # pragma: no cover - threadpoolctl is a dependency
                    _CONTROLLER = False
                else:
                    _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


@contextlib.contextmanager
def limited_blas() -> Iterator[None]:
    """Run the block with :func:`blas_limit` BLAS threads, restoring them afterwards."""
    n = blas_limit()
    ctrl = _controller() if n is not None else None
    if not ctrl:
        yield
        return
    with ctrl.limit(limits=n, user_api="blas"):
        yield


def with_limited_blas(fn: F) -> F:
    """Decorator form of :func:`limited_blas`."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with limited_blas():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
