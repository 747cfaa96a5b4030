"""Refuse to test stale compiled modules: a .so older than its .py would shadow the edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from setup import HOT_PATH

ROOT = Path(__file__).parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    # mypyc puts the compiled code in one library at the top (each module's own .so is a
    # shim whose time the build keeps from the first build).
    libraries = list(ROOT.glob("*__mypyc.*.so"))
    if not libraries:
        return
    built = max(lib.stat().st_mtime for lib in libraries)
    stale = [s for s in HOT_PATH if (ROOT / s).stat().st_mtime > built]
    if stale:
        pytest.exit(f"compiled modules are older than their sources: {stale}; run `make "
                    "build/.compiled` (make test does it)", returncode=2)
