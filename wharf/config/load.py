"""Load `wharf.toml`: parse, decode into the typed model, resolve paths, check what can be checked
before anything starts. Every problem is reported at once, with its key path."""

from __future__ import annotations

import os
import pwd
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from wharf.addresses import SUN_PATH_MAX, unix_path
from wharf.config.admin_checks import resolve_admin
from wharf.config.depends import check_depends
from wharf.config.envfile import parse_env_file
from wharf.config.model import (
    AdminConfig,
    AppConfig,
    Config,
    DaemonConfig,
    ProvidersConfig,
    ProxyConfig,
)
from wharf.config.proxy_checks import (
    resolve_proxy,
    resolve_routes,
    resolve_services,
    resolve_unix,
)
from wharf.config.schema import decode, failed
from wharf.config.service_checks import check_route_services, check_scopes, check_services
from wharf.config.supervisor_rpc import SupervisorRpcConfig, resolve_supervisor_rpc
from wharf.config.tls import LoadedCertificate, TlsConfig
from wharf.errors import ConfigError, Problem

# The supervised program that runs the proxy workers.
PROXY_APP = "wharf-proxy"
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file or raise ConfigError saying where it is broken."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [Problem("", f"invalid TOML: {exc}")]) from None


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = Path(path).absolute()
    return config_from_data(read_toml(path), path)


def config_from_data(data: dict[str, Any], path: Path) -> Config:
    """Validate already-parsed TOML data that came from `path` (relative paths resolve there).

    Every check runs, even after the decoder found problems: a check skips only the values
    that are already reported as wrong (they hold stand-in defaults)."""
    problems: list[Problem] = []
    config = decode(Config, data, "", problems)
    if config is None:
        raise ConfigError(str(path), problems)
    base = path.parent
    daemon = replace(config.daemon, state_dir=_state_dir(data, path))
    socket_path = daemon.state_dir / "wharf.sock"
    if len(os.fsencode(socket_path)) > SUN_PATH_MAX:
        problems.append(Problem("daemon.state_dir", f"too long for a Unix socket path "
                                f"({socket_path}); choose a shorter directory"))
    raw_apps = data.get("apps")
    if isinstance(raw_apps, dict):  # also the names of apps whose table is not one
        for name in raw_apps:
            _check_app_name(name, problems)
    apps = {name: _resolve_app(app, base, daemon, problems) for name, app in config.apps.items()}
    if PROXY_APP in apps:
        problems.append(Problem(f"apps.{PROXY_APP}", "this name is reserved for the proxy workers"))
    check_depends({n: a.depends_on for n, a in apps.items()}, PROXY_APP, problems)
    routes = resolve_routes(config.routes, apps, base, problems)
    services = resolve_services(config.services, base, problems)
    check_services(services, data.get("services"), apps, problems)
    # With a provider that defines services while Wharf runs (Docker, etcd), a route may name
    # one of its services: the merge leaves the route out, and reports it, until one exists.
    runtime = config.providers.docker is not None or config.providers.etcd is not None
    check_route_services(routes, data.get("routes"), None if runtime else services, problems)
    check_scopes(services, routes, config.cluster is not None, problems)
    proxy = config.proxy
    if proxy is None and routes:
        proxy = ProxyConfig()
    if proxy is not None:
        proxy = resolve_proxy(proxy, daemon.state_dir, base)
    admin = None if config.admin is None else \
        resolve_admin(config.admin, daemon.state_dir, base, problems)
    rpc = None if config.supervisor_rpc is None else \
        resolve_supervisor_rpc(config.supervisor_rpc, base, problems)
    _check_ports({n: a for n, a in apps.items() if not any(
        failed(problems, f"apps.{n}.{k}") for k in ("port", "instances", "socket"))},
        None if failed(problems, "proxy.listen") or failed(problems, "proxy.listen_tls")
        else proxy, None if failed(problems, "admin.listen") else admin, problems,
        None if failed(problems, "supervisor_rpc.listen") else rpc)
    tls, tls_files, warnings = _check_tls(config, proxy, base, problems)
    if problems:
        raise ConfigError(str(path), problems)
    return Config(daemon=daemon, apps=apps, proxy=proxy, routes=routes, tls=tls,
                  services=services, providers=_providers(config, base),
                  path=path, tls_files=tls_files, warnings=tuple(warnings), admin=admin,
                  supervisor_rpc=rpc, cluster=config.cluster)


def _providers(config: Config, base: Path) -> ProvidersConfig:
    """`[providers]` with absolute directories (relative ones are beside the config file)."""
    file = config.providers.file
    if file is None:
        return config.providers
    return replace(config.providers, file=replace(file, directory=_absolute(base, file.directory)))


def _check_tls(config: Config, proxy: ProxyConfig | None, base: Path, problems: list[Problem]
               ) -> tuple[TlsConfig | None, tuple[LoadedCertificate, ...], list[Problem]]:
    """`[tls]` with absolute paths, its file certificates read and checked, and warnings."""
    warnings: list[Problem] = []
    listen_tls = proxy.listen_tls if proxy is not None else ()
    if config.tls is None and not listen_tls:
        return None, (), warnings
    from wharf.certs.files import check_tls, resolve_tls  # cryptography: only when needed
    from wharf.certs.names import warnings as acme_warnings

    tls = resolve_tls(config.tls, base) if config.tls is not None else None
    loaded = check_tls(tls, listen_tls, problems, warnings)
    warnings += acme_warnings(replace(config, tls=tls), [n for c in loaded for n in c.names])
    return tls, loaded, warnings


def state_dir_of(path: Path | str) -> Path:
    """Where the daemon of this config keeps its socket, read without full validation.

    Commands such as `status` and `down` must reach a running daemon even when the file has
    since been broken by an edit.
    """
    path = Path(path).absolute()
    try:
        data = read_toml(path)
    except ConfigError:
        data = {}
    return _state_dir(data, path)


def default_state_dir(path: Path) -> Path:
    """`.wharf/` beside `wharf.toml`, `.wharf/STEM/` beside any other config file (`b.toml`
    gets `.wharf/b/`): two configs in one directory never share a daemon."""
    state = path.parent / ".wharf"
    return state if path.name == "wharf.toml" else state / path.stem


def _state_dir(data: dict[str, Any], path: Path) -> Path:
    section = data.get("daemon")
    raw = section.get("state_dir") if isinstance(section, dict) else None
    if isinstance(raw, str) and raw:
        return _absolute(path.parent, Path(raw).expanduser())
    return default_state_dir(path)


def _absolute(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else base / p


def _resolve_app(app: AppConfig, base: Path, daemon: DaemonConfig,
                 problems: list[Problem]) -> AppConfig:
    key = f"apps.{app.name}"
    cwd = _absolute(base, app.cwd) if app.cwd else base
    if not cwd.is_dir() and not failed(problems, f"{key}.cwd"):
        problems.append(Problem(f"{key}.cwd", f"is not a directory: {cwd}"))
    env = dict(app.env)
    if app.env_file is not None:
        env_path = _absolute(base, app.env_file)
        try:
            env = {**parse_env_file(env_path), **app.env}
        except OSError as exc:
            problems.append(Problem(f"{key}.env_file", f"cannot read {env_path}: "
                                    f"{exc.strerror}"))
        except ValueError as exc:
            problems.append(Problem(f"{key}.env_file", f"{env_path}: {exc}"))
    if app.user is not None:
        _check_user(app.user, f"{key}.user", problems)
    if app.socket is not None and app.port is not None:
        problems.append(Problem(f"{key}.socket", "cannot be used with port: the instances "
                                "share the socket (remove one of them)"))
    socket = app.socket
    if socket is not None and unix_path(*socket) is not None:
        socket = resolve_unix(socket, base, f"{key}.socket", problems)
        if unix_path(*socket) in [str(daemon.state_dir / n) for n in ("wharf.sock", "proxy.sock")]:
            problems.append(Problem(f"{key}.socket", "is one of the daemon's own sockets in "
                                    "state_dir: choose another path"))
        if any("{port}" in arg for arg in app.command):
            problems.append(Problem(f"{key}.command", "{port} has no value with a unix: "
                                    "socket (there is no port): use {socket}, its path"))
    else:
        if socket is None and any("{socket}" in arg for arg in app.command):
            problems.append(Problem(f"{key}.command", "{socket} has no value: the app has no "
                                    "socket (set socket = \"unix:/path\" or \"tcp://host:port\")"))
        for name, default in (("socket_mode", 0o660), ("socket_group", None)):
            if getattr(app, name) != default:
                problems.append(Problem(f"{key}.{name}", "is for a Unix socket: set it with "
                                        "socket = \"unix:/path/to.sock\""))
    if app.backoff_max < app.backoff and not failed(problems, f"{key}.backoff") \
            and not failed(problems, f"{key}.backoff_max"):
        problems.append(Problem(f"{key}.backoff_max", f"must be >= backoff ({app.backoff}s)"))
    logs = daemon.state_dir / "logs"
    stdout_log = _absolute(base, app.stdout_log) if app.stdout_log else logs / f"{app.name}.out.log"
    stderr_log = _absolute(base, app.stderr_log) if app.stderr_log else logs / f"{app.name}.err.log"
    return replace(app, cwd=cwd, env=env, env_file=None, stdout_log=stdout_log,
                   stderr_log=stderr_log, watch=_resolve_watch(app, cwd, key, problems),
                   socket=socket)


def _resolve_watch(app: AppConfig, cwd: Path, key: str, problems: list[Problem]
                   ) -> tuple[Path, ...]:
    """The watched paths, absolute (relative ones are in the app's cwd); each must exist."""
    paths = tuple(_absolute(cwd, p) for p in app.watch)
    for i, path in enumerate(paths):
        if not path.exists() and cwd.is_dir():
            problems.append(Problem(f"{key}.watch[{i}]", f"no such file or directory: {path}"))
    return paths


def _check_app_name(name: str, problems: list[Problem]) -> None:
    if not _APP_NAME.match(name):
        problems.append(Problem(f"apps.{name}", "app names use letters, digits, '.', '_' and '-' "
                                "(at most 64), starting with a letter or digit"))


def _check_user(user: str, key: str, problems: list[Problem]) -> None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        problems.append(Problem(key, f"no such user: {user!r}"))
        return
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        problems.append(Problem(key, f"can only switch to {user!r} when Wharf runs as root"))


def _check_ports(apps: dict[str, AppConfig], proxy: ProxyConfig | None,
                 admin: AdminConfig | None, problems: list[Problem],
                 rpc: SupervisorRpcConfig | None = None) -> None:
    """No two apps, app sockets or proxy listeners may claim one port (an app's fixed ports
    clash with anything on the same number: the app chooses its own address)."""
    claims: list[tuple[str, str | None, int]] = []  # (key, host or None for any, port)
    for app in apps.values():
        if app.port is not None:
            last = app.port + app.instances - 1
            if last > 65535:
                problems.append(Problem(f"apps.{app.name}.port", f"{app.instances} instances "
                                        f"from port {app.port} run past 65535"))
                continue
            claims += [(f"apps.{app.name}.port", None, p) for p in range(app.port, last + 1)]
        if app.socket is not None:
            claims.append((f"apps.{app.name}.socket", app.socket[0], app.socket[1]))
    if proxy is not None:
        claims += [(f"proxy.listen[{i}]", host, port)
                   for i, (host, port) in enumerate(proxy.listen)]
        claims += [(f"proxy.listen_tls[{i}]", host, port)
                   for i, (host, port) in enumerate(proxy.listen_tls)]
    if admin is not None:
        claims.append(("admin.listen", *admin.listen))
    if rpc is not None and not isinstance(rpc.listen, Path):
        claims.append(("supervisor_rpc.listen", *rpc.listen))
    seen: list[tuple[str, str | None, int]] = []
    reported: set[str] = set()
    for key, host, port in claims:
        clash = next((other for other in seen if other[2] == port and other[0] != key
                      and _overlap(host, other[1])), None)
        if clash is not None and key not in reported:
            reported.add(key)
            owner = clash[0]
            if owner.startswith("apps.") and owner.endswith(".port"):
                owner = f"app '{owner.split('.')[1]}'"
            what = host if port == 0 else f"port {port}"  # a Unix socket's "unix:PATH"
            problems.append(Problem(key, f"{what} is also used by {owner}"))
        seen.append((key, host, port))


def _overlap(a: str | None, b: str | None) -> bool:
    """Whether two binds of one port would collide: any address meets every other."""
    wild = (None, "", "0.0.0.0", "::")
    return a in wild or b in wild or a == b
