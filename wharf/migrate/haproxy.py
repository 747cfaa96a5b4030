"""Import a haproxy.cfg: `frontend`s (and `listen`s) give listeners and routes, `backend`s
the servers, balancing and health checks of those routes.

Sections of lines, as HAProxy reads them: a keyword starts a section, `#` a comment, quotes
and backslashes group words. `use_backend B if ACL...` with `hdr(host)` / `hdr_dom(host)` and
`path_beg` ACLs (named or in braces; `||` gives one route per alternative) become routes with
`host` and `path`; `default_backend` the route `/`. Times without a unit are milliseconds.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wharf.migrate.proxy_common import ProxyBuilder, balance
from wharf.migrate.result import Result, Where
from wharf.migrate.units import duration, parse_time, split_address

_SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers",
             "userlist", "mailers", "cache", "program", "http-errors", "ring")
_BALANCE = {"roundrobin": None, "static-rr": None, "leastconn": "least_conn",
            "source": "ip_hash", "uri": "hash", "random": "p2c"}
_TIMEOUTS = {"connect": "timeouts.connect", "client": "timeouts.idle",
             "http-keep-alive": "timeouts.idle", "http-request": "timeouts.header",
             "server": "timeouts.upstream", "tunnel": "timeouts.upstream"}
_QUIET = {"mode", "log", "option", "maxconn"}  # handled, or reported, in place


@dataclass(slots=True)
class Line:
    """One configuration line: its words and where it is."""

    words: list[str]
    where: Where

    def __str__(self) -> str:
        return " ".join(self.words)


@dataclass(slots=True)
class Section:
    """A section header and its lines."""

    kind: str
    name: str
    where: Where
    lines: list[Line] = field(default_factory=list)


def parse(path: Path, text: str) -> list[Section]:
    """Sections of lines, as HAProxy splits them."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(raw, comments=True)
        except ValueError:
            words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = Where(path, number)
        if words[0] in _SECTIONS:
            sections.append(Section(words[0], words[1] if len(words) > 1 else "", where))
        elif sections:
            sections[-1].lines.append(Line(words, where))
    return sections


def import_haproxy(path: Path, text: str, result: Result) -> None:
    """Fill `result` from a haproxy.cfg."""
    HaproxyImport(path, parse(path, text), result).run()


class HaproxyImport:
    """One pass over the sections."""

    def __init__(self, path: Path, sections: list[Section], result: Result) -> None:
        self.path, self.sections, self.result = path, sections, result
        self.proxy = ProxyBuilder(result)
        self.backends: dict[str, dict[str, Any] | None] = {}
        self.defaults: list[Line] = []

    def drop(self, line: Line, reason: str) -> None:
        """Report a line as not carried over."""
        self.result.drop(line.where, str(line), reason)

    def run(self) -> None:
        """Backends first (a frontend may name one defined after it), then frontends."""
        for section in self.sections:
            if section.kind == "defaults":
                self.defaults = section.lines
                for line in section.lines:
                    self.common(line, {}, in_defaults=True)
            elif section.kind in ("backend", "listen"):
                self.backends[section.name] = self.backend(section)
            elif section.kind == "global":
                for line in section.lines:
                    self.global_line(line)
            elif section.kind != "frontend":
                self.result.drop(section.where, f"{section.kind} {section.name}",
                                 "no Wharf equivalent")
        for section in self.sections:
            if section.kind in ("frontend", "listen"):
                self.frontend(section)
        self.proxy.finish()

    def global_line(self, line: Line) -> None:
        words = line.words
        if words[0] in ("nbthread", "nbproc"):
            self.result.data.setdefault("proxy", {})["workers"] = int(words[1])
        elif words[0] == "ssl-default-bind-options" and "no-tlsv12" in words:
            self.proxy.tls["min_version"] = "1.3"
        else:
            self.drop(line, "a setting of HAProxy's process: Wharf's daemon and workers have "
                      "their own (see [daemon] and [proxy])")

    def common(self, line: Line, route: dict[str, Any], in_defaults: bool = False) -> bool:
        """A line of defaults, frontend or backend that Wharf may know; False if not."""
        words = line.words
        if words[0] == "mode":
            if words[1] != "http":
                self.drop(line, "Wharf proxies HTTP only")
        elif words[0] == "timeout" and len(words) > 2:
            seconds = parse_time(words[2], "ms")
            if words[1] in _TIMEOUTS:
                self.proxy.seconds(_TIMEOUTS[words[1]], seconds, line.where)
            elif words[1] == "queue":
                route["queue_timeout"] = duration(seconds)
            elif words[1] == "check":
                route.setdefault("health", {})["timeout"] = duration(seconds)
            else:
                self.drop(line, "no Wharf equivalent")
        elif words[0] == "retries":
            route["retries"] = min(int(words[1]), 10)
        elif words[0] == "option" and words[1] in ("forwardfor", "http-server-close",
                                                   "http-keep-alive", "redispatch"):
            pass  # Wharf sets X-Forwarded-For, keeps connections alive, retries elsewhere
        elif words[0] == "option" and words[1] == "httplog":
            self.result.data.setdefault("proxy", {})["access_log"] = "combined"
            self.result.note(line.where, "option httplog: Wharf writes nginx's combined "
                             "format to proxy.access_log_file, not syslog")
        elif words[0] == "option" and words[1] == "httpchk":
            uri = next((w for w in words[2:] if w.startswith("/")), "/")
            route.setdefault("health", {})["path"] = uri
        elif words[0] == "http-check" and words[1:3] == ["expect", "status"]:
            route.setdefault("health", {})["status"] = words[3]
        elif words[0] == "default-server" and not in_defaults:
            self.server_options(words[1:], route, line)
        elif words[0] in ("log", "maxconn", "default-server", "option") and in_defaults:
            return words[0] == "default-server" or self._report(line)
        else:
            return False
        return True

    def _report(self, line: Line) -> bool:
        self.drop(line, "no Wharf equivalent")
        return True

    def backend(self, section: Section) -> dict[str, Any] | None:
        """A backend's route settings and servers; None if Wharf cannot use it."""
        route: dict[str, Any] = {}
        servers: list[Any] = []
        for line in [ln for ln in self.defaults if ln.words[0] == "default-server"]:
            self.server_options(line.words[1:], route, line)
        checked = False
        for line in section.lines:
            words = line.words
            if words[0] == "server" and len(words) > 2:
                server, check = self.server(line, route)
                checked |= check
                if server is not None:
                    servers.append(server)
            elif words[0] == "balance":
                algorithm = words[1]
                if algorithm.startswith("hdr(") and algorithm.endswith(")"):
                    route["balance"], route["hash_key"] = "hash", f"header:{algorithm[4:-1]}"
                elif algorithm in _BALANCE:
                    if _BALANCE[algorithm]:
                        route["balance"] = _BALANCE[algorithm]
                else:
                    self.drop(line, "Wharf's balancers: roundrobin, leastconn, source, uri, "
                              "hdr(NAME), random")
            elif words[0] == "cookie" and "insert" in words:
                route["balance"], route["cookie"] = "cookie", words[1]
            elif words[0] in ("http-request", "http-response") and len(words) > 3 and \
                    words[1] in ("set-header", "add-header") and "%" not in words[3]:
                key = "add_request_headers" if words[0] == "http-request" else \
                    "add_response_headers"
                route.setdefault(key, {})[words[2]] = words[3]
            elif words[0] in ("http-request", "http-response") and len(words) == 3 and \
                    words[1] == "del-header":
                key = "remove_request_headers" if words[0] == "http-request" else \
                    "remove_response_headers"
                route.setdefault(key, []).append(words[2])
            elif section.kind == "listen" and words[0] in ("bind", "default_backend",
                                                            "use_backend", "acl", "redirect",
                                                            "http-request"):
                continue
            elif not self.common(line, route):
                self.drop(line, "no Wharf equivalent")
        if not checked:
            route.pop("health", None)
        if not servers:
            return None
        if (b := balance(servers, route.get("balance"))) is not None:
            route["balance"] = b
        if route.get("balance") == "hash":
            route.setdefault("hash_key", "uri")
        return {"servers": servers, **route}

    def server(self, line: Line, route: dict[str, Any]) -> tuple[Any, bool]:
        """A `server NAME ADDR [options]` line: the server, and whether it is checked."""
        words = line.words
        address = split_address(words[2].split("@")[-1])
        if address is None or not address[0]:
            self.drop(line, "Wharf reaches backends at host:port")
            return None, False
        options = words[3:]
        if "backup" in options or "disabled" in options:
            self.drop(line, "Wharf has no backup servers: left out" if "backup" in options
                      else "a disabled server is left out")
            return None, False
        self.server_options(options, route, line)
        weight = int(options[options.index("weight") + 1]) if "weight" in options else 1
        text = f"{address[0]}:{address[1]}"
        return ({"address": text, "weight": weight} if weight != 1 else text), "check" in options

    def server_options(self, options: list[str], route: dict[str, Any], line: Line) -> None:
        """The options of a server (or default-server) that are route settings in Wharf."""
        i = 0
        while i < len(options):
            option = options[i]
            value = options[i + 1] if i + 1 < len(options) else ""
            if option in ("inter", "rise", "fall"):
                health = route.setdefault("health", {})
                health["interval" if option == "inter" else option] = \
                    duration(parse_time(value, "ms")) if option == "inter" else int(value)
                i += 2
            elif option == "maxconn":
                route["max_conns"] = int(value)
                i += 2
            elif option in ("weight", "cookie", "slowstart"):
                if option == "slowstart":
                    route["slow_start"] = duration(parse_time(value, "ms"))
                i += 2
            elif option in ("check", "backup", "disabled"):
                i += 1
            else:
                self.drop(line, f"{option}: no Wharf equivalent")
                i += 1

    def frontend(self, section: Section) -> None:
        """Listeners, ACLs and the routes they choose."""
        acls: dict[str, list[tuple[str, str]]] = {}
        routes: list[tuple[list[tuple[str, str]], str, Line]] = []
        for line in section.lines:
            words = line.words
            if words[0] == "bind":
                self.bind(line)
            elif words[0] == "acl" and len(words) > 2:
                condition = _condition(words[2:])
                if condition is None:
                    self.drop(line, "Wharf routes by host (hdr(host)) and path (path_beg)")
                else:
                    acls.setdefault(words[1], []).append(condition)
            elif words[0] == "use_backend" and len(words) > 3 and words[2] == "if":
                for alternative in " ".join(words[3:]).split("||"):
                    terms = self.terms(alternative.split(), acls, line)
                    if terms is not None:
                        routes.append((terms, words[1], line))
            elif words[0] == "default_backend":
                routes.append(([], words[1], line))
            elif words[0] in ("redirect", "http-request") and "scheme" in words and \
                    "https" in words:
                self.proxy.tls["redirect_http"] = True
                self.result.note(line.where, "a redirect of plain HTTP to https is Wharf's "
                                 "tls.redirect_http (a 308, for the names a certificate covers)")
            elif section.kind == "listen":
                continue  # the backend part was read with the backends
            elif not self.common(line, {}):
                self.drop(line, "no Wharf equivalent")
        if section.kind == "listen" and not any(not t for t, _, _ in routes):
            routes.append(([], section.name, Line(["listen", section.name], section.where)))
        for terms, backend, line in routes:
            self.route(terms, backend, line)

    def terms(self, words: list[str], acls: dict[str, list[tuple[str, str]]], line: Line
              ) -> list[tuple[str, str]] | None:
        """The conditions of one alternative: ACL names or `{ ... }`, all to hold."""
        terms: list[tuple[str, str]] = []
        i = 0
        while i < len(words):
            word = words[i]
            if word == "{":
                end = words.index("}", i)
                inline = _condition(words[i + 1:end])
                if inline is None:
                    self.drop(line, "Wharf routes by host (hdr(host)) and path (path_beg)")
                    return None
                terms.append(inline)
                i = end + 1
                continue
            if word.startswith("!") or word not in acls or len(acls[word]) != 1:
                self.drop(line, f"{word}: Wharf routes by host and path prefix (no negation, "
                          "one value per ACL)")
                return None
            terms.append(acls[word][0])
            i += 1
        return terms

    def bind(self, line: Line) -> None:
        address = split_address(line.words[1].split("@")[-1].replace("*", ""))
        if address is None:
            self.drop(line, "Wharf listens on TCP addresses")
            return
        options = line.words[2:]
        tls = "ssl" in options
        self.proxy.add_listen(address[0], address[1], tls, line.where)
        if "crt" in options:
            pem = str(self.path.parent / options[options.index("crt") + 1])
            if Path(pem).is_dir():
                self.drop(line, "crt DIRECTORY: list each certificate in tls.certificates")
            else:
                self.proxy.certificate(pem, pem)  # HAProxy's crt holds the key too
        rest = [o for o in options if o not in ("ssl", "crt") and o != (
            options[options.index("crt") + 1] if "crt" in options else None)]
        if rest:
            self.drop(line, f"{' '.join(rest)}: Wharf's listeners speak HTTP/1.1 and TLS with "
                      "OpenSSL's defaults")

    def route(self, terms: list[tuple[str, str]], backend: str, line: Line) -> None:
        target = self.backends.get(backend)
        if target is None:
            self.drop(line, f"backend {backend} is missing or has no server Wharf can use")
            return
        route: dict[str, Any] = {}
        for kind, value in terms:
            if kind in route:
                self.drop(line, f"two {kind} conditions: a Wharf route has one")
                return
            route[kind] = value
        self.proxy.route({**route, **target}, line.where)


def _condition(words: list[str]) -> tuple[str, str] | None:
    """("host", name) or ("path", prefix) from an ACL's criterion and one value."""
    values = [w for w in words[1:] if not w.startswith("-")]
    if len(values) != 1:
        return None
    fetch, value = words[0], values[0]
    if fetch in ("hdr(host)", "hdr_dom(host)", "req.hdr(host)", "hdr_end(host)") and \
            "-m" not in words:
        host = value.split(":")[0]
        return ("host", f"*.{host.lstrip('.')}" if fetch == "hdr_end(host)" else host)
    if fetch in ("path_beg", "path") and value.startswith("/"):
        return ("path", value)
    return None
