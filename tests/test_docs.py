"""The docs site builds in strict mode (broken links, bad docstrings and missing
pages are errors)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "mkdocstrings", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} not installed (extra: docs)")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        check=False, capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "getting-started/index.html", "howto/ml4t/index.html",
                 "api/adapters/index.html", "notebooks/02_naive_band_optimal_sp500/index.html"):
        assert (site / page).exists(), page
    # the API reference really rendered docstrings (not just headings)
    api = (site / "api/adapters/index.html").read_text()
    for text in ("to_target_weights", "Unnamed weights without", "Ml4tExecutor",
                 "translate_costs", "write_orders"):
        assert text in api, text


def test_rendered_notebooks_carry_the_notebooks_code_and_outputs() -> None:
    """docs/notebooks/ holds executed copies (docs/render_notebooks.py) of notebooks/:
    the same code cell by cell, with outputs, so the site shows what the code prints."""
    import nbformat

    sources = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert sources
    for path in sources:
        copy = REPO / "docs" / "notebooks" / path.name
        assert copy.exists(), f"{path.name}: run docs/render_notebooks.py"
        nb, ex = nbformat.read(path, as_version=4), nbformat.read(copy, as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert code == [c.source for c in ex.cells if c.cell_type == "code"], path.name
        assert sum(len(c.outputs) for c in ex.cells if c.cell_type == "code") > 0, path.name
