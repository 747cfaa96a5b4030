"""The immutable, versioned snapshot that the daemon pushes to every proxy worker.

It holds everything a worker needs and nothing it must compute: listeners, settings, routes in
match order, and each service's current backends. It travels as JSON, in one frame (`frames`):
whole to a worker that connects, then as deltas against what that worker has (`delta`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Final, cast


@dataclass(frozen=True, slots=True)
class Backend:
    """One server a service can send requests to."""

    host: str
    port: int
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Service:
    """A named set of backends behind one balancer."""

    name: str
    backends: tuple[Backend, ...] = ()
    balance: str = "round_robin"
    hash_key: str = "uri"  # for "hash": header:NAME, cookie:NAME or uri
    cookie: str = "wharf_backend"  # for "cookie": the sticky cookie's name
    max_conns: int = 0  # per backend; 0: no limit
    queue_timeout: float = 5.0
    retries: int = 2
    retry_budget: float = 0.2
    eject_after: int = 5
    ejection: float = 10.0
    slow_start: float = 0.0


@dataclass(frozen=True, slots=True)
class Route:
    """What a request must look like, and what answers it (a service, a directory, a redirect)."""

    path: str = "/"
    host: str | None = None
    methods: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    service: str | None = None
    static: str | None = None
    redirect: str | None = None
    redirect_code: int = 302
    strip_prefix: bool = False
    add_request_headers: tuple[tuple[str, str], ...] = ()
    remove_request_headers: tuple[str, ...] = ()
    add_response_headers: tuple[tuple[str, str], ...] = ()
    remove_response_headers: tuple[str, ...] = ()
    rate: float = 0.0  # requests per second per client address; 0: no limit
    burst: int = 1
    upgrade: tuple[str, ...] = ("websocket",)  # the protocols a request may switch to
    buffering: bool = True  # see wharf/proxy/buffering.py
    max_temp_file_size: int = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """Limits and timeouts of the data plane (seconds and bytes)."""

    connect_timeout: float = 5.0
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    upstream_timeout: float = 60.0
    max_header_size: int = 16 * 1024
    max_body_size: int = 10_000_000
    access_log: str = "off"
    access_log_file: str | None = None
    access_log_max_size: int = 0
    access_log_backups: int = 5
    trusted_proxies: tuple[str, ...] = ()
    pool_max_idle: int = 64
    pool_idle_timeout: float = 60.0
    underscores_in_headers: bool = False  # else request headers named with `_` are dropped
    metrics: bool = False  # count traffic for /metrics (on with [admin])


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate a worker serves: its names (SANs, exact or `*.` wildcard, lower case),
    the PEM chain, leaf first, and the PEM private key."""

    names: tuple[str, ...]
    cert_pem: str
    key_pem: str


@dataclass(frozen=True, slots=True)
class Tls:
    """What the TLS listeners need: certificates (the first is the default, for a client with
    no SNI or an unknown name), the protocol floor, and what the daemon's ACME client asks the
    workers to answer. Private keys travel only over the daemon's 0600 socket."""

    certificates: tuple[Certificate, ...] = ()
    min_version: str = "1.2"  # "1.2" or "1.3"
    hsts: str | None = None  # Strict-Transport-Security value on HTTPS answers
    redirect_http: bool = False  # plain requests for a covered name get 308 to https
    redirect_port: int = 443  # the port of the first TLS listener
    ticket_keys: tuple[str, ...] = ()  # hex session-ticket keys, newest first, same everywhere
    http01: tuple[tuple[str, str], ...] = ()  # (token, key authorization) for HTTP-01
    alpn01: tuple[Certificate, ...] = ()  # TLS-ALPN-01 challenge certificates, by name


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a proxy worker serves, at one version."""

    version: int = 0
    listen: tuple[tuple[str, int], ...] = ()
    settings: Settings = field(default_factory=Settings)
    routes: tuple[Route, ...] = ()
    services: tuple[Service, ...] = ()
    listen_tls: tuple[tuple[str, int], ...] = ()
    tls: Tls = field(default_factory=Tls)

    def to_json(self) -> bytes:
        """The snapshot as JSON (see `to_data`)."""
        return dumps(self.to_data())

    def to_data(self) -> dict[str, Any]:
        """The snapshot as JSON values. Backends go as [host, port, weight] lists: a snapshot
        may have tens of thousands, and `asdict` took 140 ms over 10,000. Routes and services
        leave out the fields at their default (a third of the size at 1,000 services)."""
        return {
            "version": self.version, "listen": self.listen,
            "settings": settings_data(self.settings),
            "routes": [route_data(r) for r in self.routes],
            "services": [service_data(s) for s in self.services],
            "listen_tls": self.listen_tls, "tls": tls_data(self.tls),
        }

    @classmethod
    def from_json(cls, payload: bytes) -> Snapshot:
        """Parse what `to_json` wrote."""
        return cls.from_data(json.loads(payload))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Snapshot:
        """The snapshot of what `to_data` made."""
        return cls(
            version=data["version"],
            listen=addresses_of(data["listen"]),
            settings=settings_of(data["settings"]),
            routes=tuple(route_of(r) for r in data["routes"]),
            services=tuple(service_of(s) for s in data["services"]),
            listen_tls=addresses_of(data.get("listen_tls", ())),
            tls=tls_of(data["tls"]) if "tls" in data else Tls(),
        )


def dumps(data: dict[str, Any]) -> bytes:
    """Compact JSON, as every frame of the snapshot socket is written."""
    return json.dumps(data, separators=(",", ":")).encode()


def _fields(obj: Settings | Route | Service | Tls | Certificate) -> dict[str, Any]:
    """A dataclass's fields by name, one level deep (not `asdict`, which copies every value)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# (name, default) of the fields that `route_data` and `service_data` write when not default.
_ROUTE_DEFAULTS: Final = tuple((f.name, f.default) for f in fields(Route))
_SERVICE_DEFAULTS: Final = tuple((f.name, f.default) for f in fields(Service)
                                 if f.name not in ("name", "backends"))
_PAIRS: Final = frozenset({"headers", "add_request_headers", "add_response_headers"})


def route_data(route: Route) -> dict[str, Any]:
    """A route as JSON values: the fields that are not at their default."""
    data: dict[str, Any] = {}
    for name, default in _ROUTE_DEFAULTS:
        value = getattr(route, name)
        if value != default:
            data[name] = value
    return data


def route_of(data: dict[str, Any]) -> Route:
    """The route of what `route_data` made."""
    return Route(**cast(dict[str, Any], {
        k: (tuple(tuple(p) for p in v) if k in _PAIRS else tuple(v) if isinstance(v, list)
            else v) for k, v in data.items()}))


def service_data(service: Service) -> dict[str, Any]:
    """A service as JSON values: its name, backends and the fields not at their default."""
    data: dict[str, Any] = {"name": service.name,
                            "backends": [[b.host, b.port, b.weight] for b in service.backends]}
    for name, default in _SERVICE_DEFAULTS:
        value = getattr(service, name)
        if value != default:
            data[name] = value
    return data


def service_of(data: dict[str, Any]) -> Service:
    """The service of what `service_data` made."""
    return Service(**{**data, "backends": tuple(Backend(h, p, w)
                                                for h, p, w in data["backends"])})


def settings_data(settings: Settings) -> dict[str, Any]:
    """The settings as JSON values."""
    return _fields(settings)


def settings_of(data: dict[str, Any]) -> Settings:
    """The settings of what `settings_data` made."""
    return Settings(**cast(dict[str, Any], {
        k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}))


def addresses_of(data: Any) -> tuple[tuple[str, int], ...]:
    """Listen addresses from [[host, port], ...]."""
    return tuple((h, p) for h, p in data)


def tls_data(tls: Tls) -> dict[str, Any]:
    """The TLS part as JSON values."""
    return {**_fields(tls), "certificates": [_fields(c) for c in tls.certificates],
            "alpn01": [_fields(c) for c in tls.alpn01]}


def tls_of(data: dict[str, Any]) -> Tls:
    """The TLS part of what `tls_data` made."""
    def certs(items: list[dict[str, Any]]) -> tuple[Certificate, ...]:
        return tuple(Certificate(tuple(c["names"]), c["cert_pem"], c["key_pem"]) for c in items)

    return Tls(certificates=certs(data["certificates"]), min_version=data["min_version"],
               hsts=data["hsts"], redirect_http=data["redirect_http"],
               redirect_port=data["redirect_port"], ticket_keys=tuple(data["ticket_keys"]),
               http01=tuple((t, k) for t, k in data["http01"]), alpn01=certs(data["alpn01"]))
