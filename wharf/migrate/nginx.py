"""Import an nginx.conf, parsed by crossplane (nginx's own grammar, includes followed): each
`server` block's `location`s become routes for its `server_name`s.

A location sends to an `upstream` or an address (`proxy_pass`), serves files (`root`: the
location's path is under it; `alias`: it is the directory) or redirects (`return 301 URL`).
A server on plain ports that only redirects to https becomes `tls.redirect_http`, as Wharf
routes apply on every listener. Settings that Wharf has once for the whole proxy (body size,
timeouts) take the largest value seen, and say so. Sizes are nginx's (k, m, g: powers of 1024).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from wharf.errors import UsageError
from wharf.migrate.proxy_common import ProxyBuilder, balance
from wharf.migrate.result import Result, Where
from wharf.migrate.units import parse_time, size_1024, split_address

Directive = dict[str, Any]

# Directives whose effect Wharf has by itself (so nothing is lost), and why.
_BUILT_IN = {"include", "types", "default_type", "sendfile", "tcp_nopush", "tcp_nodelay",
             "proxy_http_version", "gzip_static", "server_tokens", "charset"}
# proxy_set_header values that say what Wharf sends anyway.
_SAME_HEADERS = {"host": ("$host", "$http_host"), "x-forwarded-for": (
    "$proxy_add_x_forwarded_for",), "x-forwarded-proto": ("$scheme",),
    "x-forwarded-host": ("$host", "$http_host"), "upgrade": ("$http_upgrade",),
    "connection": ("upgrade", "$connection_upgrade")}
_REASONS = {
    "worker_connections": "Wharf has no per-worker connection limit",
    "error_log": "Wharf's own messages go to STATE_DIR/daemon.log (or the terminal)",
    "pid": "Wharf keeps its pid file in daemon.state_dir",
    "user": "the proxy runs as the user that runs `wharf up`",
    "gzip": "Wharf does not compress responses (it serves precompressed .gz/.br siblings)",
    "ssl_ciphers": "Wharf uses OpenSSL's default ciphers (tls.min_version sets the floor)",
    "ssl_prefer_server_ciphers": "Wharf uses OpenSSL's defaults",
    "ssl_session_cache": "Wharf uses OpenSSL's session cache defaults",
    "ssl_session_timeout": "Wharf uses OpenSSL's session cache defaults",
    "ssl_dhparam": "Wharf's TLS uses ECDHE only",
    "ssl_stapling": "Wharf does not staple OCSP responses",
    "index": "Wharf serves index.html for a directory, no other name",
    "autoindex": "Wharf does not list directories",
    "try_files": "Wharf does not fall back from files to another target",
    "proxy_redirect": "Wharf does not rewrite Location headers",
    "rewrite": "Wharf does not rewrite paths (strip_prefix removes a route's prefix)",
    "expires": "set Cache-Control with add_response_headers",
    "large_client_header_buffers": "Wharf limits the whole head: proxy.max_header_size",
    "limit_req": "see the route's rate_limit = { rate, burst }",
}
_GLOBAL_TIMES = {"proxy_read_timeout": "timeouts.upstream", "proxy_send_timeout":
                 "timeouts.upstream", "proxy_connect_timeout": "timeouts.connect",
                 "client_header_timeout": "timeouts.header", "client_body_timeout":
                 "timeouts.header", "keepalive_timeout": "timeouts.idle", "send_timeout":
                 "timeouts.idle"}


def import_nginx(path: Path, result: Result) -> None:
    """Fill `result` from an nginx.conf and what it includes."""
    import crossplane  # nginx's own parser, from NGINX Inc.

    payload = crossplane.parse(str(path), comments=False, catch_errors=True)
    errors = [f"{e['file']}:{e.get('line')}: {e['error']}" for e in payload["errors"]]
    if payload["status"] != "ok":
        raise UsageError(f"{path}: nginx cannot read it:\n  " + "\n  ".join(errors))
    NginxImport(path, payload["config"], result).run()


class NginxImport:
    """One walk over the parsed files."""

    def __init__(self, path: Path, configs: list[dict[str, Any]], result: Result) -> None:
        self.configs, self.result = configs, result
        self.base = path.parent
        self.proxy = ProxyBuilder(result)
        self.upstreams: dict[str, dict[str, Any]] = {}
        self.redirect_http: list[Where] = []

    def block(self, directives: list[Directive], file: str) -> list[tuple[Directive, Where]]:
        """The directives of a block with includes spliced in, each with where it is."""
        out = []
        for d in directives:
            if d["directive"] == "include" and "includes" in d:
                for index in d["includes"]:
                    config = self.configs[index]
                    out += self.block(config["parsed"], config["file"])
                continue
            out.append((d, Where(Path(file), d["line"])))
        return out

    def drop(self, d: Directive, where: Where, reason: str | None = None) -> None:
        """Report a directive as not carried over."""
        text = " ".join([d["directive"], *d["args"]]) + (" { ... }" if "block" in d else "")
        self.result.drop(where, text, reason or _REASONS.get(
            d["directive"], _REASONS.get(d["directive"].split("_")[0], "no Wharf equivalent")))

    def run(self) -> None:
        """Walk main, events and http; write what was found."""
        main = self.configs[0]
        for d, where in self.block(main["parsed"], main["file"]):
            name = d["directive"]
            if name == "http":
                self.http(d["block"], main["file"])
            elif name == "worker_processes":
                workers = d["args"][0]
                self.result.data.setdefault("proxy", {})["workers"] = \
                    "auto" if workers == "auto" else int(workers)
            elif name == "events":
                for e, ewhere in self.block(d["block"], main["file"]):
                    self.drop(e, ewhere)
            elif name not in _BUILT_IN:
                self.drop(d, where)
        if self.redirect_http:
            self.proxy.tls["redirect_http"] = True
        self.proxy.finish()

    def http(self, directives: list[Directive], file: str) -> None:
        """The http block: upstreams first (a server may name one defined after it)."""
        items = self.block(directives, file)
        for d, where in items:
            if d["directive"] == "upstream":
                self.upstream(d, where)
        for d, where in items:
            if d["directive"] == "server":
                self.server(d, where)
            elif d["directive"] != "upstream" and not self.setting(d, where, {}):
                self.drop(d, where)

    def upstream(self, d: Directive, where: Where) -> None:
        """An upstream: its servers and how they are balanced."""
        servers: list[Any] = []
        route: dict[str, Any] = {}
        for s, swhere in self.block(d["block"], str(where.file)):
            name, args = s["directive"], s["args"]
            if name == "server":
                server = self.upstream_server(s, swhere, route)
                if server is not None:
                    servers.append(server)
            elif name in ("least_conn", "ip_hash"):
                route["balance"] = name
            elif name == "random":
                route["balance"] = "p2c"
            elif name == "hash" and (key := _hash_key(args[0])):
                route["balance"], route["hash_key"] = "hash", key
            elif name == "keepalive":
                self.proxy.setting("pool_max_idle", int(args[0]), int(args[0]), swhere)
            elif name == "keepalive_timeout":
                self.proxy.seconds("pool_idle_timeout", parse_time(args[0], "s"), swhere)
            else:
                self.drop(s, swhere)
        if (b := balance(servers, route.get("balance"))) is not None:
            route["balance"] = b
        self.upstreams[d["args"][0]] = {"servers": servers, **route}

    def upstream_server(self, s: Directive, where: Where, route: dict[str, Any]) -> Any:
        """One `server` of an upstream: "host:port", or with its weight."""
        args = s["args"]
        address = split_address(args[0], 80)
        if address is None and not args[0].startswith("unix:"):
            self.drop(s, where, "not an address Wharf can reach (host:port or unix:/path)")
            return None
        options = dict(a.partition("=")[::2] for a in args[1:])
        if "backup" in options or "down" in options:
            self.drop(s, where, "Wharf has no backup servers: left out" if "backup" in options
                      else "a server marked down is left out")
            return None
        for option, key, convert in (("max_fails", "eject_after", int),
                                     ("fail_timeout", "ejection", _seconds),
                                     ("max_conns", "max_conns", int),
                                     ("slow_start", "slow_start", _seconds)):
            if option in options:
                route.setdefault(key, convert(options.pop(option)))
        options.pop("weight", None)
        for option in options:
            self.drop(s, where, f"{option}: no Wharf equivalent")
        text = args[0] if address is None else f"{address[0]}:{address[1]}"  # unix:/path
        weight = next((int(a[7:]) for a in args[1:] if a.startswith("weight=")), 1)
        return {"address": text, "weight": weight} if weight != 1 else text

    def server(self, d: Directive, where: Where) -> None:
        """A server block: listeners, names, then its locations as routes."""
        items = self.block(d["block"], str(where.file))
        hosts: list[str | None] = []
        tls_listen = False
        inherited: dict[str, Any] = {}
        listens = [(s, w) for s, w in items if s["directive"] == "listen"] or \
            [({"directive": "listen", "args": ["80"], "line": where.line}, where)]
        for s, swhere in listens:
            tls_listen |= self.listen(s, swhere)
        for s, swhere in items:
            name = s["directive"]
            if name == "server_name":
                hosts += self.hosts(s, swhere)
            elif name in ("root", "location", "listen", "ssl_certificate",
                          "ssl_certificate_key", "return"):
                continue
            elif not self.setting(s, swhere, inherited):
                self.drop(s, swhere)
        self.certificates(items, where)
        hosts = hosts or [None]
        returns = [(s, w) for s, w in items if s["directive"] == "return"]
        locations = [(s, w) for s, w in items if s["directive"] == "location"]
        if returns and self.https_redirect(returns[0][0]) and not tls_listen:
            self.redirect_http.append(returns[0][1])
            self.result.note(returns[0][1], "a redirect of plain HTTP to https is Wharf's "
                             "tls.redirect_http (a 308, for the names a certificate covers)")
            return
        root = next((s["args"][0] for s, _ in items if s["directive"] == "root"), None)
        if returns:
            self.target(returns[0][0], returns[0][1], "/", hosts, inherited)
            return
        if root is not None and not any(s["args"][-1] == "/" for s, _ in locations):
            for host in hosts:
                self.add_route({"host": host, "path": "/", "static": self.path(root)}, where)
        for s, swhere in locations:
            self.location(s, swhere, hosts, root, inherited, items)

    def listen(self, s: Directive, where: Where) -> bool:
        """A listen directive; True if it is TLS."""
        args = s["args"]
        address = split_address(args[0], 80)
        if address is None or args[0].startswith("unix:"):
            self.drop(s, where, "Wharf listens on TCP addresses")
            return False
        tls = "ssl" in args[1:]
        self.proxy.add_listen(address[0], address[1], tls, where)
        for flag in args[1:]:
            if flag not in ("ssl", "default_server", "default", "reuseport") and \
                    not flag.startswith(("backlog=", "ipv6only=")):
                self.drop(s, where, f"{flag}: Wharf's listeners speak HTTP/1.1 (and TLS)")
        return tls

    def hosts(self, s: Directive, where: Where) -> list[str | None]:
        """server_name values as route hosts."""
        hosts: list[str | None] = []
        for name in s["args"]:
            if name in ("_", "", '""'):
                hosts.append(None)
            elif name.startswith("~") or (name.endswith(".*")):
                self.drop(s, where, f"{name}: Wharf matches exact and *.suffix hosts only")
            elif name.startswith("."):
                hosts += [name[1:], f"*{name}"]
            else:
                hosts.append(name)
        return hosts

    def certificates(self, items: list[tuple[Directive, Where]], where: Where) -> None:
        certs = [s["args"][0] for s, _ in items if s["directive"] == "ssl_certificate"]
        keys = [s["args"][0] for s, _ in items if s["directive"] == "ssl_certificate_key"]
        for cert, key in zip(certs, keys, strict=False):
            self.proxy.certificate(str(self.base / cert), str(self.base / key))
        if len(certs) != len(keys):
            self.result.drop(where, "ssl_certificate", "a certificate and its key go in pairs")

    def location(self, d: Directive, where: Where, hosts: list[str | None], root: str | None,
                 inherited: dict[str, Any], server_items: list[tuple[Directive, Where]]
                 ) -> None:
        """A location: a route per host, to what its directives say."""
        args = d["args"]
        if args[0] in ("~", "~*") or args[0].startswith("@"):
            if not args[0].startswith("@"):
                self.drop(d, where, "Wharf routes match path prefixes, not regular expressions")
            return
        path = args[-1]
        if args[0] == "=":
            self.result.note(where, f"location = {path} (exact) is the prefix {path} in Wharf")
        items = self.block(d.get("block", []), str(where.file))
        route: dict[str, Any] = dict(inherited)
        target = None
        for s, swhere in items:
            name = s["directive"]
            if name in ("proxy_pass", "alias", "root", "return"):
                target = (s, swhere)
                root = s["args"][0] if name == "root" else root
            elif name == "try_files" and s["args"][-1].startswith("@"):
                named = next((n for n, _ in server_items if n["directive"] == "location" and
                              n["args"][0] == s["args"][-1]), None)
                proxy = next((p for p in (named or {}).get("block", [])
                              if p["directive"] == "proxy_pass"), None)
                if proxy is not None:
                    target = (proxy, swhere)
                self.drop(s, swhere, "Wharf does not fall back from files to another target: "
                          "the route sends everything to the fallback")
            elif name == "location":
                self.location(s, swhere, hosts, root, route, server_items)
            elif not self.setting(s, swhere, route):
                self.drop(s, swhere)
        if target is None and root is not None:
            target = ({"directive": "root", "args": [root]}, where)
        if target is None:
            self.drop(d, where, "sends nowhere (no proxy_pass, root, alias or return)")
            return
        self.target(target[0], target[1], path, hosts, route)

    def target(self, s: Directive, where: Where, path: str, hosts: list[str | None],
               route: dict[str, Any]) -> None:
        """Routes for `path` on every host, to what directive `s` says."""
        name, args = s["directive"], s["args"]
        route = {"path": path, **route}
        if name == "proxy_pass":
            if not self.proxy_pass(s, where, route):
                return
        elif name == "alias":
            route["static"] = self.path(args[0])
        elif name == "root":
            route["static"] = self.path(str(Path(args[0]) / path.lstrip("/")))
        elif name == "return" and args[0] in ("301", "302", "303", "307", "308") \
                and len(args) > 1:
            url = _variables(args[1])
            if url is None:
                self.drop(s, where, "Wharf's redirects know {host}, {uri} and {path} only")
                return
            route["redirect"], route["redirect_code"] = url, int(args[0])
        else:
            self.drop(s, where, "Wharf answers a route by proxying, files or a redirect")
            return
        for host in hosts:
            self.add_route({"host": host, **route} if host else dict(route), where)

    def proxy_pass(self, s: Directive, where: Where, route: dict[str, Any]) -> bool:
        """Fill a route from proxy_pass; False (and reported) when Wharf cannot."""
        m = re.fullmatch(r"(https?)://([^/]+)(/.*)?", s["args"][0])
        if m is None or "$" in s["args"][0] or m.group(1) == "https":
            self.drop(s, where, "Wharf proxies to http:// addresses or upstreams, without "
                      "variables")
            return False
        hostport, uri = m.group(2), m.group(3)
        unix = re.fullmatch(r"http://unix:([^:]+):(/.*)?", s["args"][0])  # nginx's spelling
        if unix is not None:
            route["servers"] = [f"unix:{unix.group(1)}"]
            uri = unix.group(2)
        elif hostport in self.upstreams:
            route.update(self.upstreams[hostport])
        elif (address := split_address(hostport, 80)) is not None:
            route["servers"] = [f"{address[0]}:{address[1]}"]
        else:
            self.drop(s, where, "not an address or an upstream")
            return False
        if not route["servers"]:
            self.drop(s, where, "the upstream has no server Wharf can use")
            return False
        if uri == "/":
            route["strip_prefix"] = True
        elif uri:
            self.drop(s, where, f"URI {uri}: Wharf can strip the location's prefix, not "
                      "replace it")
        return True

    def https_redirect(self, s: Directive) -> bool:
        args = s["args"]
        return len(args) == 2 and args[0] in ("301", "302", "307", "308") and \
            args[1].startswith("https://") and args[1].endswith("$request_uri")

    def setting(self, s: Directive, where: Where, route: dict[str, Any]) -> bool:
        """A setting of http, server or location; False if it is not one Wharf has."""
        name, args = s["directive"], s["args"]
        if name in _BUILT_IN:
            return True
        if name in _GLOBAL_TIMES:
            self.proxy.seconds(_GLOBAL_TIMES[name], parse_time(args[0], "s"), where)
        elif name == "client_max_body_size" and args[0] != "0":
            size = size_1024(args[0])
            self.proxy.setting("max_body_size", _bytes(size), size, where)
        elif name == "proxy_buffering":
            route["buffering"] = args[0] == "on"
        elif name == "proxy_set_header":
            return self.header(args, route, "add_request_headers")
        elif name == "add_header":
            if args[0].lower() == "strict-transport-security":
                self.proxy.tls["hsts"] = args[1]
                return True
            return self.header(args, route, "add_response_headers")
        elif name == "ssl_protocols":
            versions = [a for a in args if a.startswith("TLSv")]
            self.proxy.tls["min_version"] = "1.3" if versions == ["TLSv1.3"] else "1.2"
            if any(v in ("TLSv1", "TLSv1.1") for v in versions):
                self.result.note(where, "TLS 1.0 and 1.1 are refused: Wharf's floor is 1.2")
        elif name == "access_log":
            log = self.result.data.setdefault("proxy", {})
            log["access_log"] = "off" if args[0] == "off" else "combined"
            if args[0] != "off":
                log["access_log_file"] = self.path(args[0])
        elif name == "underscores_in_headers":
            self.result.data.setdefault("proxy", {})["underscores_in_headers"] = args[0] == "on"
        elif name == "set_real_ip_from":
            self.result.data.setdefault("proxy", {}).setdefault(
                "trusted_proxies", []).append(args[0])
        else:  # real_ip_header X-Forwarded-For is how Wharf reads trusted_proxies
            return name in ("real_ip_header", "real_ip_recursive") and args[0] in (
                "X-Forwarded-For", "on", "off")
        return True

    def header(self, args: list[str], route: dict[str, Any], key: str) -> bool:
        name, value = args[0], args[1] if len(args) > 1 else ""
        if value in _SAME_HEADERS.get(name.lower(), ()):
            return True
        if "$" in value:
            return False
        route.setdefault(key, {})[name] = value
        return True

    def add_route(self, route: dict[str, Any], where: Where) -> None:
        self.proxy.route(route, where)

    def path(self, p: str) -> str:
        return self.result.path(self.base / p)


def _hash_key(variable: str) -> str | None:
    if variable in ("$request_uri", "$uri"):
        return "uri"
    if variable.startswith("$cookie_"):
        return "cookie:" + variable[8:]
    if variable.startswith("$http_"):
        return "header:" + variable[6:].replace("_", "-")
    return None


def _variables(url: str) -> str | None:
    """nginx's variables in a redirect as Wharf's placeholders; None if others remain."""
    for variable, placeholder in (("$request_uri", "{uri}"), ("$host", "{host}"),
                                  ("$uri", "{path}")):
        url = url.replace(variable, placeholder)
    return None if "$" in url else url


def _seconds(text: str) -> str | float:
    from wharf.migrate.units import duration

    return duration(parse_time(text, "s"))


def _bytes(size: str | int) -> int:
    if isinstance(size, int):
        return size
    return int(size[:-3]) * 1024 ** (" KMG".index(size[-3]))
