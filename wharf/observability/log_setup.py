"""The daemon's own log: state changes and decisions, one timestamped line each."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: int = logging.INFO) -> None:
    """Send Wharf's log records to stderr (the terminal, or daemon.log when detached)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("wharf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
