"""Session-ticket keys: made by the daemon, sent to every proxy worker in the snapshot.

A client that got a ticket from one worker and comes back on another resumes only if both
encrypt tickets with the same key; a key each (OpenSSL's default) sends every other client
through a full handshake. nginx shares `ssl_session_ticket_key` files the same way. A key is
80 random bytes in OpenSSL 3's layout (16 name, 32 HMAC secret, 32 AES key), sent as hex.

The keys rotate (forward secrecy: a stolen key opens only the tickets of its period); the
newest encrypts. Sans-IO: time comes in as a number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

KEY_BYTES = 80
# nginx and Caddy rotate daily or faster; 12 h keeps a key's exposure short, and a ticket
# (OpenSSL's default lifetime: 2 h) seldom outlives its key.
ROTATE_EVERY = 12 * 3600.0
KEEP = 3  # the newest encrypts; the others stay for a worker that can decrypt with several


class TicketKeys:
    """The current ticket keys, newest first; `keys(now)` rotates when one is due."""

    def __init__(self, rotate_every: float = ROTATE_EVERY, keep: int = KEEP,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self._rotate_every = rotate_every
        self._keep = keep
        self._random = random
        self._keys: tuple[str, ...] = ()
        self._made = 0.0

    def __repr__(self) -> str:
        return f"<TicketKeys {len(self._keys)} key(s), made at {self._made:.0f}>"

    def keys(self, now: float) -> tuple[str, ...]:
        """The keys to serve with at `now`, newest first (a new one if the newest is due)."""
        if not self._keys or now >= self.next_rotation():
            self._keys = (self._random(KEY_BYTES).hex(), *self._keys)[:self._keep]
            self._made = now
        return self._keys

    def next_rotation(self) -> float:
        """When the newest key is replaced (never, before there is one)."""
        return self._made + self._rotate_every if self._keys else math.inf
