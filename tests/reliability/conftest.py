"""Reliability suite fixtures: count hypothesis examples and print the tally.

See ``rel_helpers.py`` for what the folder checks and why.
"""

from __future__ import annotations

import pytest
from rel_helpers import TALLY, count, dump_tally, tally_path


@pytest.fixture
def examples(request):
    """Call ``examples()`` inside a hypothesis test body to count one example."""
    name = f"hypothesis:{request.node.originalname}"

    def tick() -> None:
        count(name)

    return tick


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY:
        return
    hyp = sum(v for k, v in TALLY.items() if k.startswith("hypothesis:"))
    terminalreporter.write_sep("-", "reliability tally")
    for k in ("bad_input", "infeasible", "solver_failure", "partial_fill", "determinism"):
        terminalreporter.write_line(f"{k:>16}: {TALLY.get(k, 0)}")
    terminalreporter.write_line(f"{'hypothesis':>16}: {hyp} examples")
    for k, v in sorted(TALLY.items()):
        if k.startswith("hypothesis:"):
            terminalreporter.write_line(f"{'':>18}{k[11:]}: {v}")
    for k, v in sorted(TALLY.items()):
        if ":" in k and not k.startswith("hypothesis:"):
            terminalreporter.write_line(f"{k:>34}: {v}")
    try:
        tally_path().write_text(dump_tally())
    except OSError:
        pass
