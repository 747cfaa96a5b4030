"""What the TLS listeners of the workers are sent: the `Tls` part of a snapshot."""

from __future__ import annotations

from wharf.config.model import Config
from wharf.registry.snapshot import Certificate, Tls


def build_tls(config: Config, issued: tuple[Certificate, ...] = (),
              http01: tuple[tuple[str, str], ...] = (), alpn01: tuple[Certificate, ...] = (),
              ticket_keys: tuple[str, ...] = ()) -> Tls:
    """The TLS settings of `config` for the workers.

    The file certificates come first, in config order (so the first of them is the default
    for a client without SNI), then `issued`: the ACME and local-CA ones the daemon's
    certificate manager holds. `http01` and `alpn01` are the challenges it has open;
    `ticket_keys` the shared session-ticket keys, newest first (see `tickets`).
    """
    tls = config.tls
    listen_tls = config.proxy.listen_tls if config.proxy is not None else ()
    if tls is None and not listen_tls:
        return Tls(http01=http01)
    files = tuple(Certificate(c.names, c.cert_pem, c.key_pem) for c in config.tls_files)
    redirect = tls.redirect_http if tls is not None else None
    return Tls(
        certificates=files + issued,
        min_version=tls.min_version if tls is not None else "1.2",
        hsts=tls.hsts if tls is not None else None,
        redirect_http=bool(listen_tls) if redirect is None else redirect and bool(listen_tls),
        redirect_port=listen_tls[0][1] if listen_tls else 443,
        ticket_keys=ticket_keys, http01=http01, alpn01=alpn01)
