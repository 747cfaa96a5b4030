"""How a service balances over its backends: the keys `[services.NAME]` and a route's
shorthand (`app = ...` / `servers = ...`) share, and the active health checks.

`Balancing` is the base of both `ServiceConfig` and `RouteConfig` (see model.py): one list of
keys, so that a new balancing option is declared once and a route naming a service can be told
that it set one (see service_checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from wharf.config import converters as c


def path_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "?" in value \
            or any(c.isspace() for c in value):
        raise ValueError(f"must be a path starting with '/', got {value!r}")
    return value


def _hash_key(value: Any) -> str:
    if value == "uri" or (isinstance(value, str) and value.split(":", 1)[0] in (
            "header", "cookie") and len(value.split(":", 1)) == 2 and value.split(":", 1)[1]):
        return str(value)
    raise ValueError(f"must be \"header:NAME\", \"cookie:NAME\" or \"uri\", got {value!r}")


def _cookie_name(value: Any) -> str:
    if not isinstance(value, str) or not c.TOKEN.fullmatch(value):
        raise ValueError(f"must be a cookie name (letters, digits, !#$%&'*+-.^_`|~), "
                         f"got {value!r}")
    return value


def _status_range(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        first, sep, last = value.partition("-")
        if first.isdigit() and (not sep or last.isdigit()):
            low, high = int(first), int(last if sep else first)
            if 100 <= low <= high <= 599:
                return low, high
    raise ValueError(f"must be a status or a range like \"200-399\", got {value!r}")


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Active health checks of a route's backends (`health = {...}`), as HAProxy does them."""

    path: Annotated[str | None, path_prefix] = None  # None: a TCP connect is the check
    interval: Annotated[float, c.positive_duration] = 2.0
    timeout: Annotated[float, c.positive_duration] = 1.0
    rise: Annotated[int, c.integer(1, 100)] = 2
    fall: Annotated[int, c.integer(1, 100)] = 3
    status: Annotated[tuple[int, int], _status_range] = (200, 399)


Balance = Literal["round_robin", "weighted", "least_conn", "ip_hash", "hash", "cookie", "p2c",
                  "ewma"]


@dataclass(frozen=True, slots=True)
class Balancing:
    """The balancing options of a service, as a route's shorthand or `[services.NAME]`."""

    balance: Annotated[Balance, c.one_of("round_robin", "weighted", "least_conn", "ip_hash",
                                         "hash", "cookie", "p2c", "ewma")] = "round_robin"
    hash_key: Annotated[str, _hash_key] = "uri"
    cookie: Annotated[str, _cookie_name] = "wharf_backend"
    health: HealthConfig | None = None
    max_conns: Annotated[int, c.integer(0, 1_000_000)] = 0  # per backend; 0: no limit
    queue_timeout: Annotated[float, c.duration] = 5.0
    retries: Annotated[int, c.integer(0, 10)] = 2
    retry_budget: Annotated[float, c.number(0.0, 1.0)] = 0.2
    eject_after: Annotated[int, c.integer(0, 1000)] = 5
    ejection: Annotated[float, c.duration] = 10.0
    slow_start: Annotated[float, c.duration] = 0.0
    # "cluster": the app's ready instances on every host of [cluster], not only this one's
    scope: Annotated[str, c.one_of("local", "cluster")] = "local"
    # "local": the other hosts' instances serve only while none of this host's is up
    # (HAProxy's `backup` servers); "none" (the default): all alike, by weight
    prefer: Annotated[str, c.one_of("none", "local")] = "none"

    def balancing(self) -> tuple[object, ...]:
        """The values of the balancing keys, in BALANCING_KEYS order."""
        return tuple(getattr(self, k) for k in BALANCING_KEYS)


BALANCING_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Balancing))
