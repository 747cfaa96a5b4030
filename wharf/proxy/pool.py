"""Idle keep-alive connections to one backend, reused LIFO (the warmest first).

A pooled connection that the backend closes is noticed at once (its connection_lost removes it
here) and is never handed out; `take` also skips any connection already closing.
"""

from __future__ import annotations

from typing import Protocol


class Pooled(Protocol):
    """What the pool needs of a connection."""

    idle_since: float

    def is_closed(self) -> bool: ...

    def close(self) -> None: ...


class Pool:
    """The idle connections of one backend."""

    def __init__(self, max_idle: int, idle_timeout: float) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: list[Pooled] = []
        self.reused = 0
        self.created = 0
        self.closed = False  # its backend left: connections coming back are closed

    def __repr__(self) -> str:
        return f"<Pool idle={len(self._idle)} created={self.created} reused={self.reused}>"

    def __len__(self) -> int:
        return len(self._idle)

    def take(self) -> Pooled | None:
        """An open idle connection, or None."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.is_closed():
                self.reused += 1
                return conn
        return None

    def put(self, conn: Pooled, now: float) -> None:
        """Keep `conn` for reuse, or close it if the pool is full or closed."""
        if conn.is_closed():
            return
        conn.idle_since = now
        self.keep(conn)

    def keep(self, conn: Pooled) -> None:
        """Keep `conn`, open and its `idle_since` set, for reuse; or close it if the pool is
        full or closed. (A connection class calls this itself: the calls `put` makes on a
        Protocol are generic Python calls when compiled.)"""
        if len(self._idle) >= self.max_idle or self.closed:
            conn.close()
            return
        self._idle.append(conn)

    def discard(self, conn: Pooled) -> None:
        """Forget `conn` (it was closed)."""
        try:
            self._idle.remove(conn)
        except ValueError:
            pass

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than `idle_timeout`."""
        limit = now - self.idle_timeout
        if self._idle and self._idle[0].idle_since < limit:
            keep = [c for c in self._idle if c.idle_since >= limit]
            for conn in self._idle:
                if conn.idle_since < limit:
                    conn.close()
            self._idle = keep

    def close(self) -> None:
        """Close every idle connection, and each busy one when it comes back."""
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
