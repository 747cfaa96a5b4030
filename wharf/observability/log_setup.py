"""The daemon's own log: state changes and decisions, one timestamped line each."""

from __future__ import annotations

import logging
import os
import sys

# WHARF_LOG_LEVEL=debug also logs each snapshot built and applied (with sizes and timings);
# the proxy workers inherit it from the daemon.
LEVEL_ENV = "WHARF_LOG_LEVEL"


def setup_logging(level: int | None = None) -> None:
    """Send Wharf's log records to stderr (the terminal, or daemon.log when detached), at
    `level`, by default that of $WHARF_LOG_LEVEL (debug, info, warning, error), else info."""
    if level is None:
        named = logging.getLevelName(os.environ.get(LEVEL_ENV, "info").upper())
        level = named if isinstance(named, int) else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("wharf")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
