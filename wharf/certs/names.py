"""Which names get a certificate from ACME or the local CA, and what `wharf check` says of those
that cannot (pure: the config and the names the file certificates cover in, decisions out).

Decisions, as Caddy's automatic HTTPS makes them:
- ACME covers every exact `host` of every route, then `acme.hosts`, that no file certificate
  covers (by its exact or `*.` wildcard SANs).
- The local CA covers the same names and `localhost` (which also carries 127.0.0.1 and ::1).
- With both, names no public CA will certify (localhost, `.localhost`, `.local`, `.internal`,
  `.home.arpa`, IP literals) go to the local CA, every other name to ACME.
- A wildcard host needs DNS-01, which Wharf does not do: a warning naming the route, so that
  the user adds a file certificate for it. An IP literal cannot get an ACME certificate from
  HTTP-01 or TLS-ALPN-01 either (Let's Encrypt issues none): a warning too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from wharf.certs.store import Source, storable
from wharf.config.model import Config
from wharf.errors import Problem

LOCAL_NAMES = ("localhost",)
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


@dataclass(frozen=True, slots=True)
class Managed:
    """A name the daemon gets a certificate for, and from where."""

    name: str
    source: Source


def is_ip(name: str) -> bool:
    """True for an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def is_local(name: str) -> bool:
    """True for a name that only this machine or network resolves (no public CA certifies)."""
    return name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES) or is_ip(name)


def covers(pattern: str, name: str) -> bool:
    """True if a certificate name (exact, or `*.` wildcard of one label) covers `name`."""
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def _hosts(config: Config) -> list[str]:
    """Exact route hosts, then `acme.hosts`, each once, in config order."""
    hosts = [r.host for r in config.routes if r.host and not r.host.startswith("*")]
    extra = config.tls.acme.hosts if config.tls and config.tls.acme else ()
    return list(dict.fromkeys(h.rstrip(".") for h in (*hosts, *extra)))


def managed(config: Config, file_names: Iterable[str] = ()) -> list[Managed]:
    """The names to get certificates for, in config order (localhost first for the local CA:
    the first certificate is the one a client without SNI gets)."""
    tls = config.tls
    if tls is None or not (tls.acme or tls.local_ca):
        return []
    patterns = list(file_names)
    names = [*(LOCAL_NAMES if tls.local_ca else ()), *_hosts(config)]
    out: list[Managed] = []
    for name in dict.fromkeys(names):
        if name.startswith("*") or not storable(name) or any(covers(p, name) for p in patterns):
            continue
        if tls.local_ca and (tls.acme is None or is_local(name)):
            out.append(Managed(name, "local"))
        elif tls.acme is not None and not is_ip(name):
            out.append(Managed(name, "acme"))
    return out


def warnings(config: Config, file_names: Iterable[str] = ()) -> list[Problem]:
    """What `wharf check` and `wharf up` warn of: names that ACME cannot get a certificate
    for and no file certificate or local CA covers."""
    tls = config.tls
    if tls is None or tls.acme is None:
        return []
    patterns = list(file_names)
    out = []
    for i, route in enumerate(config.routes):
        host = route.host
        if host is None or any(covers(p, host) for p in patterns):
            continue
        if host.startswith("*."):
            out.append(Problem(f"routes[{i}].host", f"{host!r} is a wildcard: ACME gives "
                               "wildcard certificates only through DNS-01, which Wharf does not "
                               "do; add a file certificate for it in tls.certificates"))
        elif is_ip(host) and not tls.local_ca:
            out.append(Problem(f"routes[{i}].host", f"{host!r} is an IP address: ACME "
                               "certifies names; add a file certificate or set local_ca"))
    for i, host in enumerate(tls.acme.hosts):
        if host.startswith("*") and not any(covers(p, host) for p in patterns):
            out.append(Problem(f"tls.acme.hosts[{i}]", f"{host!r} is a wildcard: ACME needs "
                               "DNS-01 for it, which Wharf does not do"))
        elif not host.startswith("*") and not storable(host):
            out.append(Problem(f"tls.acme.hosts[{i}]", f"{host!r} is not a host name"))
    return out
