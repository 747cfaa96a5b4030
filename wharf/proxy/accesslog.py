"""The access log: one line per request, combined (nginx's format) or JSON, written in batches.

Lines collect in memory and are written when 64 KiB have gathered or at the next sweep (every
half second), so logging costs one write per batch rather than one per request.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from wharf.proxy.http1 import header_value

if TYPE_CHECKING:
    from wharf.proxy.exchange import Exchange
    from wharf.proxy.server import ClientConnection

FLUSH_AT = 64 * 1024


class AccessLog:
    """Formats and buffers access log lines."""

    def __init__(self, path: str | None, fmt: str) -> None:
        self.path: str | None = None
        self.fmt = "off"
        self.enabled = False
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._size = 0
        self.reconfigure(path, fmt)

    def __repr__(self) -> str:
        return f"<AccessLog {self.fmt} {self.path} buffered={self._size}>"

    def reconfigure(self, path: str | None, fmt: str) -> None:
        """Switch format or file (the old file is flushed and closed)."""
        if path == self.path and fmt == self.fmt:
            return
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path, self.fmt = path, fmt
        self.enabled = fmt != "off" and path is not None
        if self.enabled and path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def record(self, client: ClientConnection, ex: Exchange | None, status: int) -> None:
        """Add the line of one finished request."""
        line = self._json(client, ex, status) if self.fmt == "json" else \
            self._combined(client, ex, status)
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        if not self._buffer or self._fd is None:
            self._buffer, self._size = [], 0
            return
        data = b"".join(self._buffer)
        self._buffer, self._size = [], 0
        try:
            os.write(self._fd, data)
        except OSError:
            pass  # a full disk must not stop the proxy; the lines are lost

    @staticmethod
    def _request_line(ex: Exchange | None) -> str:
        if ex is None:
            return "-"
        return f"{ex.method.decode()} {ex.target.decode('latin-1')} HTTP/{ex.version}"

    @staticmethod
    def _header(ex: Exchange | None, name: bytes) -> str:
        value = header_value(ex.headers, name) if ex is not None else None
        return "-" if value is None else value.decode("latin-1")

    def _combined(self, client: ClientConnection, ex: Exchange | None, status: int) -> bytes:
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        line = (f'{client.peer_ip.decode()} - - [{when}] "{self._request_line(ex)}" '
                f"{ex.status if ex else status} {ex.response_bytes if ex else 0} "
                f'"{self._header(ex, b"referer")}" "{self._header(ex, b"user-agent")}" '
                f'rid={ex.request_id.decode() if ex else "-"}\n')
        return line.encode("utf-8", "replace")

    def _json(self, client: ClientConnection, ex: Exchange | None, status: int) -> bytes:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "client": client.peer_ip.decode(),
            "method": ex.method.decode() if ex else None,
            "target": ex.target.decode("latin-1") if ex else None,
            "status": ex.status if ex else status, "bytes": ex.response_bytes if ex else 0,
            "duration_ms": round((time.time() - ex.start) * 1000, 3) if ex and ex.start else None,
            "upstream": f"{ex.backend.host}:{ex.backend.port}" if ex and ex.backend else None,
            "request_id": ex.request_id.decode() if ex else None,
            "user_agent": self._header(ex, b"user-agent"),
        }
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"
