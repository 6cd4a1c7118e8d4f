#!/usr/bin/env python3
"""The README's two commands, with nothing but Python on the machine.

    python3 run.py demo   # naive vs optimal rebalancing on real prices, with a report
    python3 run.py test   # the whole test suite

Each creates (or reuses) a local virtual environment in ``.venv`` and installs
what it needs there first; a stamp file skips the install when nothing changed.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = {
    "demo": "demo",
    "test": "dev,mip,dask,demo,notebooks,docs,adapters,alpaca,fix",
}
VENV312 = ROOT / ".venv312"
ML4T_EXTRAS = "ml4t,demo,dev"


def python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_env(extras: str) -> None:
    """Create ``.venv`` and install the package with ``extras`` unless already done."""
    if sys.version_info < (3, 11):
        sys.exit(f"rebalopt needs Python >= 3.11, this is {sys.version.split()[0]}")
    if not python().exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(f"cannot create {VENV} ({exc}); on Debian/Ubuntu: apt install python3-venv")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()
                            + sys.version.encode()).hexdigest()
    stamp = VENV / f".installed-{digest[:16]}"
    if stamp.exists():
        return
    print(f"installing rebalopt[{extras}] into {VENV} (first run only)", flush=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "-e", f".[{extras}]"],
                   check=True, cwd=ROOT)
    stamp.touch()


def find_python312() -> str | None:
    """A working Python 3.12 interpreter (for the ml4t.backtest integration), if any."""
    candidates = [shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python")))
    for c in candidates:
        if c and subprocess.run([c, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                capture_output=True).returncode == 0:
            return c
    return None


def ensure_env312() -> Path | None:
    """``.venv312`` with ml4t-backtest for the integration test, when Python 3.12 exists."""
    py = VENV312 / "bin" / "python"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + ML4T_EXTRAS.encode())
    stamp = VENV312 / f".installed-{digest.hexdigest()[:16]}"
    if stamp.exists():
        return py
    base = find_python312()
    if base is None:
        print("ml4t integration: no Python 3.12 found, its test will skip", flush=True)
        return None
    print(f"ml4t integration: installing rebalopt[{ML4T_EXTRAS}] into {VENV312}", flush=True)
    try:
        if not py.exists():
            subprocess.run([base, "-m", "venv", str(VENV312)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-e", f".[{ML4T_EXTRAS}]"],
                       check=True, cwd=ROOT)
    except subprocess.CalledProcessError as exc:
        print(f"ml4t integration: set-up failed ({exc}); its test will skip", flush=True)
        return None
    stamp.touch()
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    ensure_env(EXTRAS[cmd])
    if cmd == "demo":
        return subprocess.call([str(python()), "-m", "rebalopt.cli", "demo", *rest], cwd=ROOT)
    env = dict(os.environ)
    py312 = ensure_env312()
    if py312 is not None:
        env["REBALOPT_PY312"] = str(py312)
    return subprocess.call([str(python()), "-m", "pytest", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
