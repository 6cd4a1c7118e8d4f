"""Execute the notebooks and store the executed copies under ``docs/notebooks/``.

The notebooks in ``notebooks/`` are kept without outputs (tests/test_notebooks.py);
the documentation shows the executed copies (mkdocs-jupyter, not executed again at
build time). Run after changing a notebook:
``.venv/bin/python docs/render_notebooks.py`` (about a minute; needs the shared data).
tests/test_docs.py checks that each copy carries the same code as its notebook.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    out_dir = REPO / "docs" / "notebooks"
    out_dir.mkdir(exist_ok=True)
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        nbformat.write(nb, out_dir / path.name)
        print(f"{path.name}: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
