"""When to get or renew each certificate: the sans-IO core of the certificate manager.

Theory of operation. The manager knows, for every name it manages, what it holds (the stored
certificate's validity, or nothing), the failures since the last success, and whether a user
forced a renewal. `plan` turns that and the time (`now`, seconds since the epoch, passed in)
into the names to order now and the time to look again. It does no I/O, keeps no clock and is
tested exhaustively with numbers.

Rules (Caddy's, with Let's Encrypt's limits in mind):
- A name with no certificate, or an expired one, is due now.
- A certificate is renewed once a third of its lifetime is left (`renew_at`), or earlier where
  the CA's ARI window says so (`Held.suggested`; RFC 9773). Debian's Pebble 2.4 has no
  `renewalInfo`, so the manager leaves it None for now: the hook is here, the fetch is not.
- After a failure a name waits: 1 minute, doubling each failure, at most 12 hours. The old
  certificate keeps serving meanwhile. A forced renewal skips the wait, not the rate limit.
- At most ORDERS_PER_WINDOW orders start within any ORDER_WINDOW seconds, over all names
  (Let's Encrypt refuses more than 10 new orders a minute per account; we stay well under).
  Local-CA names cost the CA nothing and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RENEW_FRACTION = 1 / 3  # renew when this share of the lifetime is left (Caddy's default)
BACKOFF_FIRST = 60.0  # seconds after the first failure
BACKOFF_MAX = 12 * 3600.0  # the longest wait between tries (Caddy retries for 30 days too)
ORDER_WINDOW = 60.0
ORDERS_PER_WINDOW = 5  # half of Let's Encrypt's 10 new orders per minute per account


@dataclass(frozen=True, slots=True)
class Held:
    """The certificate stored for a name: its validity and the CA's suggested renewal time."""

    not_before: float
    not_after: float
    suggested: float | None = None  # ARI's window start, where the CA has one


@dataclass(frozen=True, slots=True)
class Failure:
    """Failed tries in a row for a name, and when the last one ended."""

    count: int
    at: float


@dataclass(frozen=True, slots=True)
class Wanted:
    """A name to manage, and whether its orders count against the CA's rate limit."""

    name: str
    limited: bool = True  # False for local-CA names


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do now: names to order, in this order, and when to look again (None: never,
    until something changes)."""

    order: tuple[str, ...]
    wake_at: float | None


def renew_at(held: Held) -> float:
    """When `held` is due for renewal: a third of its lifetime before it ends, or the CA's
    suggested time if earlier."""
    rule = held.not_after - (held.not_after - held.not_before) * RENEW_FRACTION
    return min(rule, held.suggested) if held.suggested is not None else rule


def backoff(count: int) -> float:
    """Seconds to wait after `count` failures in a row (0 for none)."""
    if count <= 0:
        return 0.0
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(count - 1, 32))


def retry_at(failure: Failure | None) -> float:
    """The earliest time a name may be tried again after `failure` (0 for none)."""
    return failure.at + backoff(failure.count) if failure is not None else 0.0


def due_at(held: Held | None, failure: Failure | None, forced: bool = False) -> float:
    """When a name should next be ordered: its renewal time (0 if it has no certificate),
    held back by the failure backoff; 0 (now) if the renewal is forced."""
    if forced:
        return 0.0
    return max(renew_at(held) if held is not None else 0.0, retry_at(failure))


def recent_starts(recent: Iterable[float], now: float) -> list[float]:
    """The start times that still count against the rate limit at `now`."""
    return [t for t in recent if now - ORDER_WINDOW < t <= now]


def plan(wanted: Iterable[Wanted], held: Mapping[str, Held], failures: Mapping[str, Failure],
         forced: Iterable[str], recent: Iterable[float], now: float) -> Plan:
    """The names to order now and when to look again.

    Args:
        wanted: every name to manage, in the order to prefer when the rate limit bites.
        held: the stored certificate of each name that has one.
        failures: failures in a row of each name that failed since its last success.
        forced: names a user asked to renew now (`wharf certs --renew`).
        recent: start times of the rate-limited orders made lately.
        now: the time, seconds since the epoch.
    Returns:
        A Plan: the names due now that the rate limit lets through (forced ones first), and
        the earliest time something else falls due (a name held back by the rate limit: when
        the oldest order in the window leaves it).
    """
    forced = set(forced)
    inside = recent_starts(recent, now)
    free = max(0, ORDERS_PER_WINDOW - len(inside))
    order: list[str] = []
    wake: list[float] = []
    blocked = False
    for w in sorted(wanted, key=lambda w: w.name not in forced):  # stable: config order kept
        when = due_at(held.get(w.name), failures.get(w.name), w.name in forced)
        if when > now:
            wake.append(when)
        elif not w.limited:
            order.append(w.name)
        elif free > 0:
            order.append(w.name)
            inside.append(now)
            free -= 1
        else:
            blocked = True
    if blocked:
        wake.append(min(inside) + ORDER_WINDOW)
    return Plan(tuple(order), min(wake) if wake else None)
