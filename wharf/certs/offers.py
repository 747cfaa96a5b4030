"""What an ACME order hands the manager while it runs (kept apart from `acme`, whose library
costs the daemon about 10 MiB: it is imported only when `[tls] acme` is set)."""

from __future__ import annotations

from dataclasses import dataclass


class Stopped(Exception):
    """The daemon is stopping: the order was abandoned."""


@dataclass(frozen=True, slots=True)
class Offer:
    """A challenge for the proxy workers to answer: an HTTP-01 token and its key
    authorization, or a TLS-ALPN-01 certificate (PEM) and its key for `name`."""

    name: str
    token: str = ""
    key_authorization: str = ""
    alpn_cert_pem: str = ""
    alpn_key_pem: str = ""
