"""`wharf import A B ...`: several imported files made into one wharf.toml.

Theory of operation: each file is imported on its own (one `Result` each, all relative to
the same output directory), then folded into one, in the order given:

- `[apps.*]` come from the process managers (supervisord.conf, a PM2 file, a Procfile); an
  app name a second file defines again is reported, and the first definition kept.
- routes, `[proxy]` and `[tls]` come from the proxies (nginx.conf, haproxy.cfg, a Procfile's
  `web` route): a (host, path) routed twice is reported and the first route kept; listeners
  are united; a proxy-wide value two files set differently is reported, the first kept.
- then every route's `servers` is compared with the addresses the apps listen on (`port` and
  `instances`, a `socket`, or a literal `--bind host:port` in a one-instance command, which
  becomes `port` and `{port}`). A route whose servers are exactly one app's addresses
  becomes `app = "NAME"`, so it follows that app's instances (scale, rolling reloads,
  readiness) instead of naming fixed ports; each such link is a note.

Pure: no files are read here, only `Result`s.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from wharf.migrate.result import Result, Where

__all__ = ["app_addresses", "link_routes", "merge"]

# The hosts that name this machine's loopback as an upstream: an app Wharf runs listens on
# 127.0.0.1 (or on every interface, which includes it).
_LOCAL = {"127.0.0.1", "localhost", "0.0.0.0", "", "*"}
_BIND = re.compile(r"^(?:--bind|-b|--listen|--host-port)(?:=(.+))?$")


def merge(results: list[Result], base: Path) -> Result:
    """One Result from several, in order; conflicts are reported in its `dropped`."""
    merged = Result(source=results[0].source, base=base)
    owner: dict[str, Path] = {}  # "apps.web", "proxy.max_body_size" -> file that set it
    routed: dict[tuple[Any, Any], str] = {}
    for result in results:
        merged.dropped.extend(result.dropped)
        merged.notes.extend(result.notes)
        data = result.data
        for name, table in data.get("apps", {}).items():
            where = Where(result.source, key=f"[apps.{name}]")
            first = owner.get(f"apps.{name}")
            if first is not None:
                merged.drop(where, f"app {name}", f"already defined by {first}: two process "
                            "managers define one app name; rename one and import again")
                continue
            owner[f"apps.{name}"] = result.source
            merged.data.setdefault("apps", {})[name] = table
            merged.origins[f"apps.{name}"] = _origin(result, f"apps.{name}")
        for i, route in enumerate(data.get("routes", [])):
            target = (route.get("host"), route.get("path", "/"))
            origin = _origin(result, f"routes.{i}")
            if target in routed:
                merged.drop(Where(result.source, key=origin), f"route {target[0] or 'any host'}"
                            f" {target[1]}", f"already routed by {routed[target]}")
                continue
            routed[target] = origin
            routes = merged.data.setdefault("routes", [])
            merged.origins[f"routes.{len(routes)}"] = origin
            routes.append(route)
        for section in ("proxy", "tls"):
            if section in data:
                _fold(merged, merged.data.setdefault(section, {}), data[section], section,
                      result.source, owner)
        for key, value in data.items():  # [supervisor_rpc], [daemon]...: first file wins
            if key not in ("apps", "routes", "proxy", "tls"):
                _fold(merged, merged.data, {key: value}, "", result.source, owner)
    merged.sort_dropped()
    link_routes(merged)
    return merged


def _origin(result: Result, table: str) -> str:
    """Where a table of `result` came from: its origin comment, else the file."""
    return result.origins.get(table) or str(Where(result.source))


def _fold(merged: Result, into: dict[str, Any], new: dict[str, Any], path: str,
          source: Path, owner: dict[str, Path]) -> None:
    """Add `new` to `into`: tables merge, lists unite, a differing value is reported."""
    for key, value in new.items():
        full = f"{path}.{key}" if path else key
        if key not in into:
            into[key] = value
            owner[full] = source
        elif isinstance(value, dict) and isinstance(into[key], dict):
            _fold(merged, into[key], value, full, source, owner)
        elif full == "tls.certificates" or full.startswith("proxy.listen"):
            into[key] = into[key] + [v for v in value if v not in into[key]]
        elif into[key] != value:
            merged.drop(Where(source, key=f"{full} = {value!r}"), full, f"{owner.get(full)} "
                        f"already sets it to {into[key]!r}: the first is kept")


def app_addresses(table: dict[str, Any]) -> set[str]:
    """The upstream addresses an imported app listens on, normalised (`127.0.0.1:P`,
    `unix:/path`); empty when the config does not say (a free port, `"auto"` instances)."""
    socket = table.get("socket")
    if isinstance(socket, str):
        if socket.startswith("unix:"):
            return {"unix:" + socket.removeprefix("unix:").removeprefix("//")}
        return {_normal(socket.removeprefix("tcp://"))} - {""}
    instances = table.get("instances", 1)
    port = table.get("port")
    if isinstance(port, int) and isinstance(instances, int):
        return {f"127.0.0.1:{port + i}" for i in range(instances)}
    bound = _literal_bind(table)
    return {bound[1]} if bound is not None and instances == 1 else set()


def _literal_bind(table: dict[str, Any]) -> tuple[int, str] | None:
    """(argument index, normalised address) of a `--bind HOST:PORT` written in the command."""
    command = table.get("command")
    args = shlex.split(command) if isinstance(command, str) else list(command or [])
    for i, arg in enumerate(args):
        m = _BIND.match(arg)
        if m is None:
            continue
        value = m.group(1) if m.group(1) is not None else (args[i + 1] if i + 1 < len(args)
                                                             else "")
        if "{port}" in value or value.startswith(("unix:", "fd:")):
            return None
        address = _normal(value)
        if address:
            return (i if m.group(1) is not None else i + 1, address)
    return None


def _normal(address: str) -> str:
    """`localhost:8001`, `0.0.0.0:8001`, `http://127.0.0.1:8001/` -> `127.0.0.1:8001`;
    `unix:/p` stays; "" for anything not on this machine."""
    address = address.removeprefix("http://").rstrip("/")
    if address.startswith("unix:"):
        return "unix:" + address.removeprefix("unix:").removeprefix("//")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or host.strip("[]") not in _LOCAL | {"::1", "::"}:
        return ""
    return f"127.0.0.1:{port}"


def _server_address(server: Any) -> str:
    return str(server.get("address", "")) if isinstance(server, dict) else str(server)


def link_routes(result: Result) -> None:
    """Turn each route whose `servers` are exactly an app's addresses into `app = NAME`."""
    apps: dict[str, Any] = result.data.get("apps", {})
    listening = {name: app_addresses(table) for name, table in apps.items()}
    for i, route in enumerate(result.data.get("routes", [])):
        servers = route.get("servers")
        if not isinstance(servers, list) or not servers:
            continue
        wanted = {_normal(_server_address(s)) for s in servers}
        name = next((n for n, a in listening.items() if a and a == wanted), None)
        where = result.origins.get(f"routes.{i}", str(result.source))
        if name is None:
            for other, addresses in listening.items():
                if addresses & wanted:
                    result.notes.append(f"{where}: upstream servers ({_span(wanted)}) are some "
                                        f"but not all of app `{other}`'s addresses "
                                        f"({_span(addresses)}): kept as servers")
            continue
        del route["servers"]
        route["app"] = name
        _take_port(apps[name])
        text = (f"upstream servers ({_span(wanted)}) are app `{name}`: the route is "
                f"app = \"{name}\"")
        if route.get("balance") == "weighted":
            del route["balance"]
            text += f" (the servers' weights are not kept: Wharf weighs instances alike, " \
                f"apps.{name}.weight for all)"
        result.notes.append(f"{where}: {text}")


def _take_port(table: dict[str, Any]) -> None:
    """An app found by a literal `--bind HOST:PORT` gets Wharf's `port` and `{port}`."""
    if "port" in table or "socket" in table:
        return
    bound = _literal_bind(table)
    if bound is None:
        return
    index, address = bound
    command = table["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    raw = args[index]
    port = address.rpartition(":")[2]
    args[index] = raw[: len(raw) - len(port)] + "{port}"
    table["command"] = command.replace(raw, args[index], 1) if isinstance(command, str) \
        else args
    table["port"] = int(port)


def _span(addresses: set[str]) -> str:
    """`127.0.0.1:8001-8003` for a run of ports on one host, else the list."""
    ports = sorted(int(a.rpartition(":")[2]) for a in addresses if not a.startswith("unix:"))
    if len(ports) == len(addresses) > 1 and ports == list(range(ports[0], ports[-1] + 1)):
        return f"127.0.0.1:{ports[0]}-{ports[-1]}"
    return ", ".join(sorted(addresses))
