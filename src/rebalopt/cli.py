"""Command line: ``rebalopt demo`` and ``rebalopt rebalance``.

``rebalopt rebalance`` reads a desk's holdings, model targets and prices (CSV), an
optional TOML config (:mod:`rebalopt.config`), and writes an order file
(:data:`rebalopt.adapters.files.ORDER_COLUMNS`) atomically. Exit codes: 0 success,
2 bad input (file, line and column named on stderr), 3 infeasible constraints,
4 solver failure, 1 any other rebalopt error. Nothing is written on failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rebalopt.errors import InfeasibleError, InputError, RebalanceError, SolverError

__all__ = ["main"]

EXIT_INPUT = 2
EXIT_INFEASIBLE = 3
EXIT_SOLVER = 4
EXIT_OTHER = 1


def _demo(args: argparse.Namespace) -> int:
    """Naive vs band vs optimal rebalancing on real prices; writes the HTML report."""
    from rebalopt.research.demo import run_demo

    path = run_demo(out_dir=args.out_dir, quick=args.quick)
    print(f"report written to {path.resolve()}")
    return 0


def _tracking_error_lines(plan: object, risk: object) -> list[str]:
    """Annualized tracking error before/after under the config's risk model, if the plan
    does not already report it."""
    if risk is None or getattr(plan, "tracking_error_after", None) is not None:
        return []
    state = plan.state  # type: ignore[attr-defined]
    before = risk.tracking_error(state.weights - plan.targets, state)  # type: ignore[attr-defined]
    after = risk.tracking_error(plan.post_weights - plan.targets, state)  # type: ignore[attr-defined]
    return [f"  tracking error {before:.4%} -> {after:.4%} (annualized, config risk model)"]


def _rebalance(args: argparse.Namespace) -> int:
    from rebalopt.adapters.files import read_book, write_orders
    from rebalopt.config import Settings, load_config

    if args.out is None and not args.preview:
        raise InputError("give --out FILE (or --preview to print the plan without writing)",
                         field="--out")
    settings = load_config(args.config) if args.config else Settings()
    cash = args.cash if args.cash is not None else (settings.cash or 0.0)
    book = read_book(args.holdings, args.targets, args.prices, cash)
    rebalancer = settings.build()
    try:
        plan = rebalancer.plan(book.state, book.targets)
    except InputError as exc:
        raise book.locate(exc) from None
    orders = plan.orders()
    print(plan.summary())
    for line in _tracking_error_lines(plan, settings.risk):
        print(line)
    if args.preview:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(plan.preview().to_string(float_format=lambda x: f"{x:,.6g}"))
    if args.out is not None:
        path = write_orders(orders, args.out)
        print(f"wrote {len(orders)} orders to {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rebalopt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="naive vs optimal rebalancing on real prices")
    demo.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                      help="folder for the HTML report (default ./reports)")
    demo.add_argument("--quick", action="store_true", help="a short run (seconds)")
    demo.set_defaults(func=_demo)

    reb = sub.add_parser(
        "rebalance", help="holdings + targets + prices (CSV) -> order file",
        description="Plan the trades from holdings to targets and write an order file "
                    "(ticker, side, quantity, reference_price, expected_cost).")
    reb.add_argument("--holdings", required=True, metavar="CSV",
                     help="columns ticker, shares")
    reb.add_argument("--targets", required=True, metavar="CSV",
                     help="columns ticker, weight (fraction of equity)")
    reb.add_argument("--prices", required=True, metavar="CSV",
                     help="columns ticker, price [, adv, volatility, sector, lot_size, multiplier]")
    reb.add_argument("--config", metavar="TOML", help="rebalancer, costs, risk model, limits")
    reb.add_argument("--cash", type=float, metavar="X",
                     help="cash balance, currency (default: [account] cash in the config, else 0)")
    reb.add_argument("--out", metavar="CSV", help="order file to write (atomically)")
    reb.add_argument("--preview", action="store_true",
                     help="print the per-asset preview table; without --out nothing is written")
    reb.set_defaults(func=_rebalance)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RebalanceError as exc:
        code = (EXIT_INPUT if isinstance(exc, InputError)
                else EXIT_INFEASIBLE if isinstance(exc, InfeasibleError)
                else EXIT_SOLVER if isinstance(exc, SolverError) else EXIT_OTHER)
        message = " ".join(str(exc).split())
        print(f"rebalopt: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
