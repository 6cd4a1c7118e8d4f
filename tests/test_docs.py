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
        check=False, capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "getting-started/index.html", "howto/ml4t/index.html",
                 "api/adapters/index.html", "notebooks/02_naive_band_optimal_sp500/index.html"):
        assert (site / page).exists(), page
    # the notebooks were executed by the build: their pages carry outputs
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / nb.stem / "index.html").read_text()
        assert "jp-OutputArea-output" in html, nb.name
    # the API reference really rendered docstrings (not just headings)
    api = (site / "api/adapters/index.html").read_text()
    for text in ("to_target_weights", "Unnamed weights without", "Ml4tExecutor",
                 "translate_costs", "write_orders"):
        assert text in api, text



def test_the_docs_show_the_notebooks_themselves() -> None:
    """docs/notebooks/ links to notebooks/ (executed by mkdocs-jupyter at build time, so
    the site shows their outputs and no stored copy can drift from the code)."""
    sources = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert sources
    for path in sources:
        link = REPO / "docs" / "notebooks" / path.name
        assert link.is_symlink() and link.resolve() == path.resolve(), path.name
