"""Per-client rate limits: a token bucket per address, answered with 429 and Retry-After."""

from __future__ import annotations

import math

# A bucket untouched this long is full again and can be forgotten.
FORGET_AFTER = 60.0


class RateLimiter:
    """`rate` requests per second per client, with bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[bytes, list[float]] = {}  # client -> [tokens, last refill]

    def __repr__(self) -> str:
        return f"<RateLimiter {self.rate}/s burst={self.burst} clients={len(self._buckets)}>"

    def take(self, client: bytes, now: float) -> float:
        """Spend a token: 0 if allowed, else the seconds until one is available."""
        bucket = self._buckets.get(client)
        if bucket is None:
            self._buckets[client] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def forget_idle(self, now: float) -> None:
        """Drop the buckets of clients gone quiet (they would be full anyway)."""
        idle = [c for c, (_, last) in self._buckets.items() if now - last > FORGET_AFTER]
        for client in idle:
            del self._buckets[client]


def retry_after(seconds: float) -> bytes:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds))).encode()
