"""What the nginx and HAProxy importers share: listeners, settings that are one value in
Wharf but per server or location in the source, and routes that must not repeat.

Wharf's routes apply on every listener, where nginx's `server` blocks and HAProxy's frontends
each have their own; so a (host, path) routed twice is reported, and the first one kept (as
Wharf would match it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wharf.migrate.result import Result, Where
from wharf.migrate.units import duration, listen_address


@dataclass(slots=True)
class Global:
    """A proxy-wide Wharf setting seen in several places of the source: the largest wins."""

    key: str  # "max_body_size", "timeouts.upstream"
    seen: list[tuple[float, Any, Where]] = field(default_factory=list)  # (order, value, where)


class ProxyBuilder:
    """Collects listeners, proxy-wide settings, certificates and routes; writes them once."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self.listen: dict[str, Where] = {}
        self.listen_tls: dict[str, Where] = {}
        self.globals: dict[str, Global] = {}
        self.certificates: list[dict[str, str]] = []
        self.tls: dict[str, Any] = {}
        self.routed: dict[tuple[str | None, str], Where] = {}

    def add_listen(self, host: str, port: int, tls: bool, where: Where) -> None:
        """A listener; the same address twice is one."""
        (self.listen_tls if tls else self.listen).setdefault(listen_address(host, port), where)

    def setting(self, key: str, order: float, value: Any, where: Where) -> None:
        """A value of a proxy-wide setting; `order` ranks values (bytes, seconds)."""
        self.globals.setdefault(key, Global(key)).seen.append((order, value, where))

    def seconds(self, key: str, seconds: float, where: Where) -> None:
        """A proxy-wide duration."""
        self.setting(key, seconds, duration(seconds), where)

    def certificate(self, cert: str, key: str) -> None:
        """A certificate and key pair (paths as the output writes them)."""
        pair = {"cert": self.result.path(cert), "key": self.result.path(key)}
        if pair not in self.certificates:
            self.certificates.append(pair)

    def route(self, route: dict[str, Any], where: Where) -> bool:
        """Add a route unless its host and path are already routed; False if dropped."""
        target = (route.get("host"), route.get("path", "/"))
        first = self.routed.get(target)
        if first is not None:
            self.result.drop(where, f"{target[0] or 'any host'} {target[1]}", "already routed "
                             f"by {first}: Wharf's routes apply on every listener")
            return False
        self.routed[target] = where
        self.result.route(route, where)
        return True

    def finish(self) -> None:
        """Write `[proxy]` and `[tls]` into the result."""
        proxy: dict[str, Any] = {}
        bound: list[str] = []
        tls = self._ports(self.listen_tls, bound)
        plain = self._ports(self.listen, bound)
        if plain:
            proxy["listen"] = plain
        if tls:
            proxy["listen_tls"] = tls
        for key in sorted(self.globals):
            seen = self.globals[key].seen
            order, value, where = max(seen, key=lambda s: s[0])
            section, _, name = key.rpartition(".")
            (proxy.setdefault(section, {}) if section else proxy)[name] = value
            others = sorted({str(v) for o, v, _ in seen if o != order})
            if others:
                self.result.note(where, f"Wharf has one proxy.{key}: the largest, {value}, "
                                 f"is used (also seen: {', '.join(others)})")
        if plain or tls or self.result.data.get("routes"):
            self.result.data["proxy"] = {**proxy, **self.result.data.get("proxy", {})}
        if self.certificates:
            self.tls["certificates"] = self.certificates
        if self.tls:
            self.result.data["tls"] = self.tls

    def _ports(self, mine: dict[str, Where], bound: list[str]) -> list[str]:
        """The listeners Wharf accepts: an address that would share a port with one already
        bound (the same host, or a wildcard: IPv4's and IPv6's clash in `wharf check`) is
        reported instead."""
        kept = []
        for address, where in mine.items():
            host, _, port = address.rpartition(":")
            clash = next((b for b in bound if b.rpartition(":")[2] == port and (
                b.rpartition(":")[0] in _WILD or host in _WILD or
                b.rpartition(":")[0] == host)), None)
            if clash is not None:
                self.result.drop(where, f"listen {address}", f"port {port} is already "
                                 f"listened on ({clash}): Wharf binds a port once")
                continue
            bound.append(address)
            kept.append(address)
        return kept


_WILD = ("", "[::]")


def balance(servers: list[Any], explicit: str | None) -> str | None:
    """Wharf's `balance` for a pool: the source's choice, else weighted when weights differ
    (nginx's and HAProxy's round robin honour weights; Wharf's `round_robin` does not)."""
    if explicit is not None:
        return explicit
    weights = {s.get("weight", 1) if isinstance(s, dict) else 1 for s in servers}
    return "weighted" if len(weights) > 1 else None
