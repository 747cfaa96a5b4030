"""The `Date` header (RFC 9110 6.6.1), formatted once a second rather than once per answer.

The worker's clock tick (DataPlane.tick, every 0.1 s) calls `refresh`, which formats a new
line only when the second has changed; answers read the line as it is (nginx caches its time
strings the same way, updated by its timer).
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Final


class HttpDate:
    """The current `Date: ...\\r\\n` header line."""

    def __init__(self) -> None:
        self.second = -1
        self.line = b""
        self.refresh(time.time())

    def __repr__(self) -> str:
        return f"<HttpDate {self.line!r}>"

    def refresh(self, now: float) -> None:
        """Format the line again if `now` (seconds since the epoch) is in a new second."""
        second = int(now)
        if second != self.second:
            self.second = second
            self.line = b"Date: %s\r\n" % formatdate(second, usegmt=True).encode()


HTTP_DATE: Final = HttpDate()
