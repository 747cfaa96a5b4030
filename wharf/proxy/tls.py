"""TLS for a worker's HTTPS listeners: the contexts, and which certificate a handshake gets.

Theory of operation. Every TLS listener of a worker is created once with the same *listener
context*; its `sni_callback` runs at each ClientHello and switches the connection to the
context of one certificate (`SSLObject.context = ...`, OpenSSL's `SSL_set_SSL_CTX`):

- the certificate whose names hold the SNI name exactly, else one with the wildcard of its
  parent (`*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`,
  as RFC 6125 reads it); a client without SNI or with an unknown name gets the first
  certificate of the snapshot (file certificates first, in config order);
- a client that offers ALPN `acme-tls/1` for a name with a TLS-ALPN-01 challenge open gets the
  challenge certificate, whose context speaks only `acme-tls/1` (RFC 8737). The offered ALPN
  is read by a ClientHello callback (see `openssl`), set only while a challenge is open, so
  ordinary clients of that name are never affected.

A new snapshot builds contexts for new certificates only (a context is kept while its PEM is
unchanged) and swaps the lookup tables whole: the next handshake sees them, and connections
already open keep theirs. Private keys go to OpenSSL through an anonymous memory file
(`memfd_create`): they are never written to a file system.

Protocols: TLS 1.2 and 1.3 only (1.3 only with `min_version = "1.3"`); for 1.2, Mozilla's
"intermediate" ciphers (ECDHE with AES-GCM or ChaCha20-Poly1305; the DHE ones of that list
are unused, as no DH parameters are loaded); curves are OpenSSL's defaults (X25519, P-256,
P-384, P-521); compression and renegotiation off. Session tickets are encrypted with the
daemon's key, the same in every worker (see `wharf.certs.tickets`); one ticket per full
handshake (`TICKETS`).
"""

from __future__ import annotations

import logging
import os
import ssl

from wharf.proxy import openssl
from wharf.registry.snapshot import Certificate, Tls

log = logging.getLogger("wharf.proxy")

# Mozilla's "intermediate" configuration (version 5.7) for TLS 1.2; TLS 1.3 suites are
# OpenSSL's defaults, which are the same list.
INTERMEDIATE_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305"))
ALPN = ("http/1.1",)  # `h2` joins here once the proxy speaks HTTP/2
ACME_TLS = "acme-tls/1"
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# TLS 1.3 session tickets sent after a full handshake. OpenSSL's default is two; Go's
# crypto/tls (so Caddy and Traefik) sends one. Wharf's tickets are stateless and reusable for
# their lifetime (no server-side cache), so a second one only serves a client that opens
# connections in parallel and spends each ticket once, and it costs an encryption, a record
# and some 250 bytes at every handshake (6 % of its instructions: bench/callgrind.py).
TICKETS = 1


def new_context(min_version: str, alpn: tuple[str, ...] = ALPN) -> ssl.SSLContext:
    """A server context with Wharf's protocol settings and no certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = VERSIONS.get(min_version, ssl.TLSVersion.TLSv1_2)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_alpn_protocols(list(alpn))
    openssl.no_session_cache(ctx)
    ctx.num_tickets = TICKETS
    return ctx


def load_certificate(ctx: ssl.SSLContext, cert: Certificate) -> None:
    """Load a PEM chain and key into `ctx` from memory (raises ssl.SSLError if bad)."""
    fd = os.memfd_create("wharf-certificate", os.MFD_CLOEXEC)
    try:
        os.write(fd, f"{cert.key_pem.strip()}\n{cert.cert_pem.strip()}\n".encode())
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


class TlsContexts:
    """The contexts of one worker's TLS listeners, swapped as snapshots come."""

    def __init__(self) -> None:
        self._min_version = "1.2"
        self.listener = new_context(self._min_version)
        self.listener.sni_callback = self._choose
        self._ticket_key = ""
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}  # by (cert, key) PEM
        self._exact: dict[str, ssl.SSLContext] = {}
        self._wildcard: dict[str, ssl.SSLContext] = {}  # "example.com" for "*.example.com"
        self._default: ssl.SSLContext | None = None
        self._challenges: dict[str, ssl.SSLContext] = {}  # TLS-ALPN-01, by name
        self._challenge_contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._acme_offered: set[int] = set()  # SSL * of handshakes offering acme-tls/1
        self._hello_hook: object | None = None  # keeps the ctypes callback alive
        self._listener_holds: tuple[str, str] | None = None  # the PEMs loaded into listener

    def __repr__(self) -> str:
        return (f"<TlsContexts certificates={len(self._contexts)} names={len(self._exact)}"
                f"+{len(self._wildcard)} wildcard challenges={len(self._challenges)}>")

    def apply(self, tls: Tls) -> None:
        """Serve the certificates and settings of `tls` from the next handshake on."""
        if tls.min_version != self._min_version:
            self._min_version = tls.min_version
            self.listener.minimum_version = VERSIONS.get(tls.min_version,
                                                         ssl.TLSVersion.TLSv1_2)
            self._contexts = {}  # rebuilt below with the new floor
        key = tls.ticket_keys[0] if tls.ticket_keys else ""
        rekey = key != self._ticket_key
        self._ticket_key = key
        if rekey and key:
            openssl.set_ticket_key(self.listener, bytes.fromhex(key))
        contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        default = None
        for cert in tls.certificates:
            ctx = self._context_of(cert, self._contexts, contexts, rekey)
            if ctx is None:
                continue
            default = default or ctx
            for name in cert.names:
                table, host = (wildcard, name[2:]) if name.startswith("*.") else (exact, name)
                table.setdefault(host, ctx)  # the first certificate to name it wins
        self._contexts, self._exact, self._wildcard, self._default = \
            contexts, exact, wildcard, default
        self._apply_challenges(tls.alpn01)
        self._hold_default(tls)

    def _hold_default(self, tls: Tls) -> None:
        """Load the default certificate into the listener context itself: a handshake that
        would pick it needs no switch of context, and with one certificate and no TLS-ALPN-01
        challenge every handshake picks it, so no SNI callback runs at all (a Python call
        and a copy of the certificate settings into the connection, at each handshake)."""
        first = next((c for c in tls.certificates
                      if self._contexts.get((c.cert_pem, c.key_pem)) is self._default), None)
        pem = (first.cert_pem, first.key_pem) if first is not None else None
        if pem != self._listener_holds:
            self._listener_holds = None
            if first is not None:
                try:
                    load_certificate(self.listener, first)
                    self._listener_holds = pem
                except (ssl.SSLError, OSError):
                    pass  # the callback switches to the certificate's own context
        alone = self._listener_holds is not None and len(self._contexts) == 1 \
            and not self._challenges
        self.listener.sni_callback = None if alone else self._choose

    def _context_of(self, cert: Certificate, old: dict[tuple[str, str], ssl.SSLContext],
                    new: dict[tuple[str, str], ssl.SSLContext], rekey: bool,
                    alpn: tuple[str, ...] = ALPN) -> ssl.SSLContext | None:
        pem = (cert.cert_pem, cert.key_pem)
        ctx = new.get(pem) or old.get(pem)
        if ctx is None:
            ctx = new_context(self._min_version, alpn)
            try:
                load_certificate(ctx, cert)
            except (ssl.SSLError, OSError) as exc:
                log.error("wharf-proxy: certificate for %s not served: %s",
                          ", ".join(cert.names), exc)
                return None
            rekey = True
        if rekey and self._ticket_key:
            openssl.set_ticket_key(ctx, bytes.fromhex(self._ticket_key))
        new[pem] = ctx
        return ctx

    def _apply_challenges(self, alpn01: tuple[Certificate, ...]) -> None:
        challenges: dict[str, ssl.SSLContext] = {}
        built: dict[tuple[str, str], ssl.SSLContext] = {}
        for cert in alpn01:
            ctx = self._context_of(cert, self._challenge_contexts, built, False, (ACME_TLS,))
            if ctx is not None:
                for name in cert.names:
                    challenges[name] = ctx
        if challenges and not self._challenges:
            self._hello_hook = openssl.set_client_hello_callback(self.listener,
                                                                 self._on_client_hello)
        elif self._challenges and not challenges:
            self._hello_hook = openssl.set_client_hello_callback(self.listener, None)
            self._acme_offered.clear()
        self._challenges, self._challenge_contexts = challenges, built

    def _on_client_hello(self, ssl_pointer: int) -> None:
        if ACME_TLS.encode() in openssl.offered_alpn(ssl_pointer):
            self._acme_offered.add(ssl_pointer)

    def choose(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context for a ClientHello naming `server_name` (None: no SNI)."""
        if server_name is None:
            return self._default
        name = server_name.lower().rstrip(".")
        ctx = self._exact.get(name)
        if ctx is None:
            dot = name.find(".")
            ctx = self._wildcard.get(name[dot + 1:]) if dot > 0 else None
        return ctx or self._default

    def _choose(self, obj: ssl.SSLObject, server_name: str | None,
                listener: ssl.SSLContext) -> int | None:
        """The SNI callback: switch the connection to its certificate's context."""
        if self._acme_offered and server_name is not None:
            pointer = openssl.connection_pointer(obj, listener)
            if pointer in self._acme_offered:
                self._acme_offered.discard(pointer)
                challenge = self._challenges.get(server_name.lower())
                if challenge is not None:
                    obj.context = challenge
                    return None
        ctx = self.choose(server_name)
        if ctx is None:  # no certificate at all (ACME has none yet): refuse, say why
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        if ctx is not self._default or self._listener_holds is None:
            obj.context = ctx  # else the listener context holds it already
        return None

