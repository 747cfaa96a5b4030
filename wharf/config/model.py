"""The typed, frozen configuration: what `wharf.toml` means once it has been validated.

Each field's annotation names its converter; `schema.decode` applies them. Defaults follow
Supervisor where it has the same setting (startsecs 1, startretries 3, stop_signal TERM) and PM2
where Supervisor has none (autorestart always, exponential backoff from 100 ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from wharf.addresses import UNIX, unix_address
from wharf.config import converters as c
from wharf.config.balancing import Balancing, path_prefix
from wharf.config.balancing import HealthConfig as HealthConfig  # where the others import it
from wharf.config.cluster import ClusterConfig, DockerProviderConfig, EtcdProviderConfig
from wharf.config.cron import CronSchedule, parse_cron
from wharf.config.depends import dependency_names
from wharf.config.supervisor_rpc import SupervisorRpcConfig
from wharf.config.tls import LoadedCertificate, TlsConfig
from wharf.errors import Problem

Autorestart = Literal["always", "on-failure", "never"]


def _env_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be a table of NAME = \"value\"")
    bad = [k for k, v in value.items() if not isinstance(v, str | int | float | bool)]
    if bad:
        raise ValueError(f"values must be strings or numbers, not tables or lists: {bad}")
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path string, got {value!r}")
    return Path(value).expanduser()


# Wildcard hosts an app's socket may bind, and the address this machine reaches it on.
WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def _size_or_zero(value: Any) -> int:
    return 0 if value == 0 or value == "0" else c.byte_size(value)


def _unix(value: str) -> tuple[str, int]:
    """A `unix:PATH` address; a relative PATH is made absolute by the loader."""
    path = value.removeprefix(UNIX)
    if not path or "\0" in path or any(ch in "\r\n" for ch in path):
        raise ValueError(f"must be \"unix:/path/to.sock\", got {value!r}")
    if path.startswith("@"):
        raise ValueError(f"abstract Unix sockets are not supported, got {value!r}: name a file")
    return unix_address(path)


def _socket(value: Any) -> tuple[str, int]:
    if isinstance(value, str) and value.startswith(UNIX):
        return _unix(value)
    if not isinstance(value, str) or not value.startswith("tcp://"):
        raise ValueError(f"must be \"tcp://host:port\" or \"unix:/path/to.sock\", "
                         f"got {value!r}")
    return c.address(value.removeprefix("tcp://"))


def _socket_mode(value: Any) -> int:
    # An octal string, as chmod and Supervisor's `chmod` take it; a TOML integer would be
    # read as decimal (660 is not 0o660), so only a string is accepted.
    if isinstance(value, str) and len(value) in (3, 4) and all(ch in "01234567" for ch in value):
        return int(value, 8)
    raise ValueError(f"must be an octal mode string like \"0660\", got {value!r}")


def _group(value: Any) -> str:
    import grp

    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a group name, got {value!r}")
    try:
        grp.getgrnam(value)
    except KeyError:
        raise ValueError(f"no such group: {value!r}") from None
    return value


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _instances(value: Any) -> int:
    if value == "auto":
        return _cpu_count()  # one per core, as PM2's -i max
    _refuse_max(value)
    if isinstance(value, str):
        raise ValueError(f"must be a number of instances or \"auto\", got {value!r}")
    return c.integer(1, 1000)(value)


def _refuse_max(value: Any) -> None:
    if value == "max":
        raise ValueError("\"max\" is PM2's spelling: give a number, or \"auto\" for one per "
                         f"CPU ({_cpu_count()} here)")


def _is(tool: str, key: str) -> str:
    return f"{tool}'s name; Wharf's is '{key}'"


# PM2's and Supervisor's spellings of `[apps.NAME]` keys, and what to write instead.
_APP_FOREIGN_KEYS = {
    "script": _is("PM2", "command"),
    "exec_mode": "Wharf has no exec_mode: every app runs `instances` processes; for one "
                 "listening socket shared by all of them, set `socket`",
    "max_memory_restart": _is("PM2", "max_memory"),
    "max_restarts": _is("PM2", "startretries"),
    "min_uptime": _is("PM2", "startsecs"),
    "kill_timeout": _is("PM2", "stop_timeout"),
    "listen_timeout": _is("PM2", "ready_timeout"),
    "restart_delay": _is("PM2", "backoff"),
    "exp_backoff_restart_delay": _is("PM2", "backoff"),
    "out_file": _is("PM2", "stdout_log"),
    "error_file": _is("PM2", "stderr_log"),
    "numprocs": _is("Supervisor", "instances"),
    "stopwaitsecs": _is("Supervisor", "stop_timeout"),
    "stopsignal": _is("Supervisor", "stop_signal"),
    "exitcodes": _is("Supervisor", "exit_codes"),
    "environment": _is("Supervisor", "env"),
    "directory": _is("Supervisor", "cwd"),
    "stdout_logfile": _is("Supervisor", "stdout_log"),
    "stderr_logfile": _is("Supervisor", "stderr_log"),
    "stdout_logfile_maxbytes": _is("Supervisor", "log_max_size"),
    "stdout_logfile_backups": _is("Supervisor", "log_backups"),
    "autostart": "Wharf starts every app at `wharf up`; there is no autostart",
    "ignore_watch": _is("PM2", "watch_ignore"),
    "priority": "Supervisor's priority orders spawns without waiting; Wharf's depends_on = "
                "[\"app\"] starts an app once those it names are up",
}


def _globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"must be a list of names or globs like [\"*.pyc\", \"node_modules\"],"
                         f" got {value!r}")
    return tuple(v.strip().rstrip("/") for v in value)


def _autorestart(value: Any) -> str:
    # Supervisor's values (and TOML booleans) have one meaning each here: say which.
    meant = {True: "always", False: "never", "true": "always", "false": "never",
             "unexpected": "on-failure"}.get(value) if isinstance(value, bool | str) else None
    if meant is not None:
        raise ValueError(f"must be one of \"always\", \"on-failure\", \"never\", got {value!r} "
                         f"(Supervisor's {value!r} is Wharf's \"{meant}\")")
    return c.one_of("always", "on-failure", "never")(value)


def _exit_codes(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value
    ):
        raise ValueError(f"must be a list of exit codes 0-255, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """One supervised program (`[apps.NAME]`), run as `instances` identical processes."""

    FOREIGN_KEYS: ClassVar[dict[str, str]] = _APP_FOREIGN_KEYS

    command: Annotated[tuple[str, ...], c.command_args] = field(
        default=(), metadata={"required": True})
    name: str = field(default="", metadata={"from_key": True})
    cwd: Annotated[Path | None, _path] = None
    env: Annotated[dict[str, str], _env_table] = field(default_factory=dict)
    env_file: Annotated[Path | None, _path] = None
    user: str | None = None
    instances: Annotated[int, _instances] = 1
    weight: Annotated[int, c.integer(1, 1000)] = 1  # of each instance, when a route balances
    port: Annotated[int | None, c.integer(1, 65535)] = None
    autorestart: Annotated[Autorestart, _autorestart] = "always"
    exit_codes: Annotated[tuple[int, ...], _exit_codes] = (0,)
    startsecs: Annotated[float, c.duration] = 1.0
    startretries: Annotated[int, c.integer(0, 1000)] = 3
    backoff: Annotated[float, c.duration] = 0.1
    backoff_max: Annotated[float, c.duration] = 30.0
    stop_signal: Annotated[int, c.signal_number] = 15
    stop_timeout: Annotated[float, c.duration] = 10.0
    drain_timeout: Annotated[float, c.duration] = 30.0
    max_surge: Annotated[int, c.integer(1, 1000)] = 1  # instances replaced at once by a reload
    socket: Annotated[tuple[str, int] | None, _socket] = None  # one socket for all instances
    socket_mode: Annotated[int, _socket_mode] = 0o660  # of a Unix socket's file
    socket_group: Annotated[str | None, _group] = None  # of a Unix socket's file
    ready_path: Annotated[str | None, path_prefix] = None  # None: a TCP connect on PORT
    ready_timeout: Annotated[float, c.duration] = 60.0
    max_memory: Annotated[int | None, c.byte_size] = None
    stdout_log: Annotated[Path | None, _path] = None
    stderr_log: Annotated[Path | None, _path] = None
    log_max_size: Annotated[int, c.byte_size] = 10_000_000
    log_backups: Annotated[int, c.integer(0, 1000)] = 5
    log_rotate: Annotated[str | None, c.one_of("hourly", "daily")] = None  # also by time
    log_max_total: Annotated[int, _size_or_zero] = 0  # of the rotated files; 0: no cap
    log_compress: bool = False  # gzip each rotated file
    depends_on: Annotated[tuple[str, ...], dependency_names] = ()  # started first, stopped last
    watch: tuple[Annotated[Path, _path], ...] = ()  # relative to cwd; the loader resolves them
    watch_ignore: Annotated[tuple[str, ...], _globs] = ()
    watch_delay: Annotated[float, c.positive_duration] = 0.5  # quiet time before a roll
    cron_restart: Annotated[CronSchedule | None, parse_cron] = None  # local time

    def same_except_instances(self, other: AppConfig) -> bool:
        """True when only the instance count differs: a reload can scale instead of restart."""
        from dataclasses import replace

        return replace(self, instances=other.instances) == other


def _workers(value: Any) -> int:
    if value == "auto":
        return _cpu_count()
    _refuse_max(value)
    return c.integer(1, 256)(value)


def _http_methods(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(m, str) and m.isalpha() and m.isupper() for m in value):
        raise ValueError(f"must be a list of upper-case methods like [\"GET\", \"POST\"], "
                         f"got {value!r}")
    return tuple(value)


def _redirect_code(value: Any) -> int:
    if value not in (301, 302, 303, 307, 308):
        raise ValueError(f"must be 301, 302, 303, 307 or 308, got {value!r}")
    return int(value)


def _host_pattern(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() or c in "/:" for c in value) \
            or "*" in value.lstrip("*") or (value.startswith("*") and not value.startswith("*.")):
        raise ValueError(f"must be a host name like \"example.com\" or \"*.example.com\", "
                         f"got {value!r}")
    return value.lower()


@dataclass(frozen=True, slots=True)
class Server:
    """A backend named in a route's `servers`: an address (see `wharf.addresses`) and a
    weight."""

    host: str
    port: int
    weight: int = 1


def _server_address(value: Any) -> tuple[str, int]:
    if isinstance(value, str) and value.startswith(UNIX):
        return _unix(value)
    return c.address(value)


def _server(value: Any) -> Server:
    if isinstance(value, dict):
        unknown = set(value) - {"address", "weight"}
        if unknown or "address" not in value:
            raise ValueError("must be \"host:port\", \"unix:/path\" or "
                             "{ address = \"host:port\", weight = N }")
        try:
            weight = c.integer(1, 1000)(value.get("weight", 1))
        except ValueError as exc:
            raise ValueError(f"weight {exc}") from None
        return Server(*_server_address(value["address"]), weight=weight)
    return Server(*_server_address(value))


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of header names, got {value!r}")
    return tuple(v.lower() for v in value)


def _protocols(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(v, str) and c.TOKEN.fullmatch(v) for v in value):
        raise ValueError(f"must be a list of protocol names like [\"websocket\", \"h2c\"], "
                         f"got {value!r}")
    return tuple(v.lower() for v in value)


def _networks(value: Any) -> tuple[str, ...]:
    import ipaddress

    if not isinstance(value, list):
        raise ValueError(f"must be a list of addresses or networks, got {value!r}")
    try:
        return tuple(str(ipaddress.ip_network(v, strict=False)) for v in value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not a list of IP networks: {exc}") from None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Proxy timeouts (`[proxy.timeouts]`), in seconds."""

    connect: Annotated[float, c.duration] = 5.0
    header: Annotated[float, c.duration] = 10.0
    idle: Annotated[float, c.duration] = 60.0
    upstream: Annotated[float, c.duration] = 60.0


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The reverse proxy (`[proxy]`): where it listens and how it treats connections."""

    listen: tuple[Annotated[tuple[str, int], c.address], ...] = (("127.0.0.1", 8080),)
    listen_tls: tuple[Annotated[tuple[str, int], c.address], ...] = ()  # HTTPS listeners
    workers: Annotated[int, _workers] = 1
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_header_size: Annotated[int, c.byte_size] = 16 * 1024
    max_body_size: Annotated[int, c.byte_size] = 10_000_000
    access_log: Annotated[str, c.one_of("off", "combined", "json")] = "off"
    access_log_file: Annotated[Path | None, _path] = None
    access_log_max_size: Annotated[int, c.byte_size] = 0  # 0: never rotate
    access_log_backups: Annotated[int, c.integer(0, 1000)] = 5
    trusted_proxies: Annotated[tuple[str, ...], _networks] = ()
    pool_max_idle: Annotated[int, c.integer(0, 10000)] = 64
    pool_idle_timeout: Annotated[float, c.duration] = 60.0
    underscores_in_headers: bool = False  # nginx's default: headers named with `_` dropped


def _rate(value: Any) -> float:
    if isinstance(value, str):
        count, sep, unit = value.partition("/")
        seconds = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(unit.strip())
        if sep and seconds and count.strip().replace(".", "", 1).isdigit():
            rate = float(count) / seconds
            if rate > 0:
                return rate
    raise ValueError(f"must be a rate like \"100/s\" or \"600/m\", got {value!r}")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket per client address (`rate_limit = { rate = "100/s", burst = 50 }`)."""

    rate: Annotated[float, _rate] = field(default=1.0, metadata={"required": True})
    burst: Annotated[int, c.integer(1, 1_000_000)] = 1


@dataclass(frozen=True, slots=True)
class ServiceConfig(Balancing):
    """A named service (`[services.NAME]`): an app's instances or a list of servers, and how
    to balance over them. Its identity is its name: health, ejection, queues and pools stay
    with it whatever the routes that name it do."""

    name: str = field(default="", metadata={"from_key": True})
    app: str | None = None
    servers: tuple[Annotated[Server, _server], ...] = ()


@dataclass(frozen=True, slots=True)
class RouteConfig(Balancing):
    """One `[[routes]]` entry: what it matches, and where it sends the request (a named
    service, or the shorthand `app`/`servers` with the balancing keys: an anonymous one)."""

    host: Annotated[str | None, _host_pattern] = None
    path: Annotated[str, path_prefix] = "/"
    methods: Annotated[tuple[str, ...], _http_methods] = ()
    headers: Annotated[dict[str, str], _env_table] = field(default_factory=dict)
    service: str | None = None  # a `[services.NAME]`
    app: str | None = None
    servers: tuple[Annotated[Server, _server], ...] = ()
    static: Annotated[Path | None, _path] = None
    redirect: str | None = None
    redirect_code: Annotated[int, _redirect_code] = 302
    strip_prefix: bool = False
    add_request_headers: Annotated[dict[str, str], _env_table] = field(default_factory=dict)
    remove_request_headers: Annotated[tuple[str, ...], _names] = ()
    add_response_headers: Annotated[dict[str, str], _env_table] = field(default_factory=dict)
    remove_response_headers: Annotated[tuple[str, ...], _names] = ()
    rate_limit: RateLimit | None = None
    upgrade: Annotated[tuple[str, ...], _protocols] = ("websocket",)
    buffering: bool = True  # read the backend's answer ahead of a slow client (nginx's default)
    max_temp_file_size: Annotated[int, _size_or_zero] = 1024 * 1024 * 1024  # 0: memory only

    def target_kind(self) -> str:
        """Which of service, app, servers, static, redirect this route uses ("" if none or
        several)."""
        kinds = [k for k, v in (("service", self.service), ("app", self.app),
                                ("servers", self.servers),
                                ("static", self.static), ("redirect", self.redirect)) if v]
        return kinds[0] if len(kinds) == 1 else ""


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Settings of the daemon itself (`[daemon]`)."""

    # The loader gives the default: `.wharf/` beside `wharf.toml`, `.wharf/STEM/` beside others.
    state_dir: Annotated[Path, _path] = Path(".wharf")
    port_range: Annotated[tuple[int, int], c.port_range] = (20000, 29999)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin HTTP API (`[admin]`): off unless the table is there."""

    listen: Annotated[tuple[str, int], c.address] = ("127.0.0.1", 9180)
    # The bearer token, one line. The loader gives the default, `STATE_DIR/admin.token`, which
    # `up` creates (mode 0600) if it is missing; a non-loopback `listen` must name one.
    token_file: Annotated[Path | None, _path] = None
    metrics_auth: bool = False  # the token for /metrics too (Prometheus: `authorization`)


@dataclass(frozen=True, slots=True)
class FileProviderConfig:
    """`[providers.file]`: routes and services from every `*.toml` in a directory, live."""

    directory: Annotated[Path, _path] = field(default=Path("conf.d"),
                                              metadata={"required": True})


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    """`[providers]`: where routes and services come from besides this file, in the order
    they win a name that two of them define (after this file, which always wins)."""

    file: FileProviderConfig | None = None
    docker: DockerProviderConfig | None = None
    etcd: EtcdProviderConfig | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated `wharf.toml`; `path` is the file it came from."""

    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    admin: AdminConfig | None = None
    supervisor_rpc: SupervisorRpcConfig | None = None  # supervisorctl's API, off by default
    apps: dict[str, AppConfig] = field(default_factory=dict)
    proxy: ProxyConfig | None = None
    routes: tuple[RouteConfig, ...] = ()
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)
    tls: TlsConfig | None = None
    cluster: ClusterConfig | None = None  # several hosts sharing their instances via etcd
    path: Path = field(default=Path("wharf.toml"), metadata={"derived": True})
    # Filled in by the loader: the file certificates it read, and what is worth saying but
    # does not stop Wharf (a certificate that expires soon), printed by `check` and `up`.
    tls_files: tuple[LoadedCertificate, ...] = field(default=(), metadata={"derived": True})
    warnings: tuple[Problem, ...] = field(default=(), metadata={"derived": True})
