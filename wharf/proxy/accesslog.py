"""The access log: one line per request, combined (nginx's format) or JSON, written in batches.

Lines collect in memory and are written when 64 KiB have gathered or at the next sweep (every
half second), so logging costs one write per batch rather than one per request.

What the client chose (the request line, Referer, User-Agent, X-Request-ID) is escaped in the
combined format as nginx escapes it: `"`, `\\`, bytes below 0x20, 0x7f and from 0x80 up become
`\\xHH`, so no client can end a field, forge a line or write terminal escapes. The JSON format
decodes them as UTF-8 (an invalid byte becomes the text `\\xHH`) and json escapes the rest: a
JSON line is valid JSON whatever was sent. `bytes` is the body bytes sent (nginx's
$body_bytes_sent), for every kind of answer.

`reopen` (the worker's SIGUSR1) closes and reopens the file, for logrotate's `postrotate`.
With a `max_size`, the log rotates itself: several workers append to one file, so every write
happens under a shared flock (on the log's directory) after checking that the path is still
the file it has open (else it reopens it first), and the one that finds the file full renames
it (`access.log` -> `access.log.1` -> ... `.N`) under the exclusive lock. A line therefore
lands once, in whichever file was current when it was written: none is lost or written twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from typing import TYPE_CHECKING

from wharf.addresses import format_address
from wharf.proxy.http1 import error_body, header_value

if TYPE_CHECKING:
    from wharf.proxy.request import Request

log = logging.getLogger("wharf.proxy")

FLUSH_AT = 64 * 1024
_UNSAFE = re.compile(rb'[\x00-\x1f"\\\x7f-\xff]')


def escape(value: bytes) -> str:
    """`value` as nginx writes a variable in its access log: unsafe bytes as `\\xHH`."""
    if _UNSAFE.search(value) is None:
        return value.decode("ascii")
    return _UNSAFE.sub(lambda m: b"\\x%02X" % m[0][0], value).decode("ascii")


def _text(value: bytes) -> str:
    """`value` as JSON text: UTF-8, an invalid byte as `\\xHH`."""
    return value.decode("utf-8", "backslashreplace")


class AccessLog:
    """Formats and buffers access log lines."""

    def __init__(self, path: str | None, fmt: str) -> None:
        self.path: str | None = None
        self.fmt = "off"
        self.enabled = False
        self.max_size = 0  # 0: never rotate
        self.backups = 5
        self._fd: int | None = None
        self._lock_fd: int | None = None  # the log's directory, flocked around writes
        self._buffer: list[bytes] = []
        self._size = 0
        self.reconfigure(path, fmt)

    def __repr__(self) -> str:
        return f"<AccessLog {self.fmt} {self.path} buffered={self._size}>"

    def reconfigure(self, path: str | None, fmt: str, max_size: int = 0,
                    backups: int = 5) -> None:
        """Switch format, file or rotation (the old file is flushed and closed)."""
        self.max_size, self.backups = max_size, backups
        if path == self.path and fmt == self.fmt:
            return
        self.flush()
        self._close()
        self.path, self.fmt = path, fmt
        self.enabled = fmt != "off" and path is not None
        if self.enabled and path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._open()

    def reopen(self) -> None:
        """Write what is buffered, then close and reopen the file (after an outside rotation)."""
        self.flush()
        if self.enabled:
            self._close()
            try:
                self._open()
            except OSError as exc:  # tried again at the next flush
                log.error("wharf-proxy: cannot reopen the access log %s: %s", self.path, exc)

    def _open(self) -> None:
        assert self.path is not None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           0o640)
        self._lock_fd = os.open(os.path.dirname(self.path) or ".",
                                os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    def record(self, peer_ip: bytes, ex: Request | None, status: int) -> None:
        """Add the line of one finished request, from the peer `peer_ip` (None: a request
        refused before it was parsed, with `status`)."""
        line = self._json(peer_ip, ex, status) if self.fmt == "json" else \
            self._combined(peer_ip, ex, status)
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        if self._fd is None and self.enabled and self._buffer:
            try:
                self._open()
            except OSError:
                self._close()
        if not self._buffer or self._fd is None:
            self._buffer, self._size = [], 0
            return
        data = b"".join(self._buffer)
        self._buffer, self._size = [], 0
        try:
            if self.max_size:
                self._write_rotating(data)
            else:
                os.write(self._fd, data)
        except OSError:
            pass  # a full disk must not stop the proxy; the lines are lost

    def _write_rotating(self, data: bytes) -> None:
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        try:
            self._follow()
            assert self._fd is not None
            os.write(self._fd, data)
            full = os.fstat(self._fd).st_size >= self.max_size
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if full:
            self._rotate()

    def _follow(self) -> None:
        """Reopen the path if it is no longer the file we have open (another worker rotated)."""
        assert self.path is not None and self._fd is not None
        mine = os.fstat(self._fd)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                             0o640)
            except OSError:
                return  # the old file still takes the lines
            os.close(self._fd)
            self._fd = fd

    def _rotate(self) -> None:
        assert self.path is not None and self._lock_fd is not None
        lock = self._lock_fd
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            self._follow()
            assert self._fd is not None
            if os.fstat(self._fd).st_size < self.max_size:
                return  # another worker rotated it first
            path = self.path
            for n in range(self.backups - 1, 0, -1):
                if os.path.exists(f"{path}.{n}"):
                    os.replace(f"{path}.{n}", f"{path}.{n + 1}")
            if self.backups:
                os.replace(path, f"{path}.1")
            else:
                os.unlink(path)
            self._follow()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _request_line(ex: Request) -> bytes:
        return b"%s %s HTTP/%s" % (ex.method, ex.target, ex.version.encode())

    @staticmethod
    def _header(ex: Request | None, name: bytes) -> bytes | None:
        return header_value(ex.headers, name) if ex is not None else None

    @staticmethod
    def _body_bytes(ex: Request | None, status: int) -> int:
        return ex.response_bytes if ex is not None else len(error_body(status))

    def _combined(self, peer_ip: bytes, ex: Request | None, status: int) -> bytes:
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        referer, agent = self._header(ex, b"referer"), self._header(ex, b"user-agent")
        line = (f'{peer_ip.decode()} - - [{when}] '
                f'"{escape(self._request_line(ex)) if ex else "-"}" '
                f"{ex.status if ex else status} {self._body_bytes(ex, status)} "
                f'"{"-" if referer is None else escape(referer)}" '
                f'"{"-" if agent is None else escape(agent)}" '
                f'rid={escape(ex.request_id) if ex else "-"}\n')
        return line.encode()

    def _json(self, peer_ip: bytes, ex: Request | None, status: int) -> bytes:
        referer, agent = self._header(ex, b"referer"), self._header(ex, b"user-agent")
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "client": peer_ip.decode(),
            "method": _text(ex.method) if ex else None,
            "target": _text(ex.target) if ex else None,
            "status": ex.status if ex else status, "bytes": self._body_bytes(ex, status),
            "duration_ms": round((time.time() - ex.start) * 1000, 3) if ex and ex.start else None,
            "upstream": format_address(ex.backend.host, ex.backend.port)
            if ex and ex.backend else None,
            "request_id": _text(ex.request_id) if ex else None,
            "user_agent": "-" if agent is None else _text(agent),
            "referer": None if referer is None else _text(referer),
        }
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"
