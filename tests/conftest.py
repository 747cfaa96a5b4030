"""Refuse to test stale compiled modules: a .so older than its .py would shadow the edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from setup import HOT_PATH

ROOT = Path(__file__).parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = []
    for source in HOT_PATH:
        py = ROOT / source
        for so in py.parent.glob(py.stem + ".*.so"):
            if so.stat().st_mtime < py.stat().st_mtime:
                stale.append(source)
    if stale:
        pytest.exit(f"compiled modules are older than their sources: {stale}; run `make "
                    "build/.compiled` (make test does it)", returncode=2)
