"""The typed `[tls]` table: where certificates come from and how HTTPS answers.

Checks that read files (a certificate that exists, matches its key, has not expired) live in
`wharf.certs`; this module only says what the file may contain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from wharf.config import converters as c

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path string, got {value!r}")
    return Path(value).expanduser()


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"must be an http(s):// URL, got {value!r}")
    return value


def _hosts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(v, str) and v and not any(ch.isspace() or ch in "/:" for ch in v)
            for v in value):
        raise ValueError(f"must be a list of host names, got {value!r}")
    return tuple(v.lower().rstrip(".") for v in value)


def _header_value(value: Any) -> str:
    if not isinstance(value, str) or not all(ch == "\t" or " " <= ch <= "~" for ch in value):
        raise ValueError(f"must be a header value (printable, no line breaks), got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """A certificate (PEM, chain included) and its private key, from files."""

    cert: Annotated[Path, _path] = field(default=Path(), metadata={"required": True})
    key: Annotated[Path, _path] = field(default=Path(), metadata={"required": True})


Challenge = Literal["http-01", "tls-alpn-01"]


@dataclass(frozen=True, slots=True)
class AcmeConfig:
    """Automatic certificates from an ACME CA (`acme = {...}`), as Caddy gets them."""

    email: str | None = None
    directory: Annotated[str, _url] = LETS_ENCRYPT
    ca_bundle: Annotated[Path | None, _path] = None  # trust for a private CA (Pebble)
    challenge: Annotated[Challenge, c.one_of("http-01", "tls-alpn-01")] = "http-01"
    hosts: Annotated[tuple[str, ...], _hosts] = ()  # names beyond the routes' hosts


@dataclass(frozen=True, slots=True)
class LoadedCertificate:
    """A file certificate as read and checked by the loader (`wharf.certs.files`): kept with
    the config it came from, so that snapshots never read files. `key_pem` is left out of the
    repr: a config is printed in logs."""

    cert_path: Path
    names: tuple[str, ...]  # DNS (and IP) SANs, lower case; the CN only if there is no SAN
    not_after: float  # Unix time
    issuer: str
    cert_pem: str  # the chain, leaf first
    key_pem: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """`[tls]`: certificate sources and HTTPS behaviour."""

    certificates: tuple[CertificateFiles, ...] = ()
    acme: AcmeConfig | None = None
    local_ca: bool = False  # certificates from a CA of Wharf's own, as Caddy's `tls internal`
    redirect_http: bool | None = None  # None: true once a TLS listener exists
    hsts: Annotated[str | None, _header_value] = None  # Strict-Transport-Security value
    min_version: Annotated[Literal["1.2", "1.3"], c.one_of("1.2", "1.3")] = "1.2"
