#!/usr/bin/env python3
"""The README's two commands, with nothing but Python on the machine.

    python3 run.py demo   # naive vs optimal rebalancing on real prices, with a report
    python3 run.py test   # the whole test suite

Each creates (or reuses) a local virtual environment in ``.venv`` and installs
what it needs there first; a stamp file skips the install when nothing changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = {
    "demo": "demo",
    "test": "dev,mip,dask,demo,notebooks,docs",
}


def python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_env(extras: str) -> None:
    """Create ``.venv`` and install the package with ``extras`` unless already done."""
    if sys.version_info < (3, 11):
        sys.exit(f"rebalopt needs Python >= 3.11, this is {sys.version.split()[0]}")
    if not python().exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{digest[:16]}"
    if stamp.exists():
        return
    print(f"installing rebalopt[{extras}] into {VENV} (first run only)", flush=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "-e", f".[{extras}]"],
                   check=True, cwd=ROOT)
    stamp.touch()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    ensure_env(EXTRAS[cmd])
    if cmd == "demo":
        return subprocess.call([str(python()), "-m", "rebalopt.cli", "demo", *rest], cwd=ROOT)
    return subprocess.call([str(python()), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
