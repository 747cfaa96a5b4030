"""The ACME client against real Pebble, with a stand-in for the proxy workers that answers the
challenges the client offers (the daemon end to end is in test_https_acme.py)."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.pebble import Pebble
from wharf.certs.acme import AcmeClient
from wharf.certs.offers import Offer
from wharf.config.tls import AcmeConfig


class Answers:
    """What a worker would hold from the snapshot: HTTP-01 tokens, TLS-ALPN-01 certificates."""

    def __init__(self) -> None:
        self.http01: dict[str, str] = {}
        self.alpn: Offer | None = None
        self.offers: list[Offer | None] = []

    def offer(self, offer: Offer | None) -> None:
        self.offers.append(offer)
        if offer is not None and offer.token:
            self.http01[offer.token] = offer.key_authorization
        elif offer is not None:
            self.alpn = offer


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def http01_server(pebble: Pebble, answers: Answers) -> Iterator[None]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = self.path.rsplit("/", 1)[-1]
            body = answers.http01.get(token, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http_port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def alpn_server(pebble: Pebble, answers: Answers, tmp_path: Path) -> Iterator[None]:
    """Answers every handshake with the offered TLS-ALPN-01 certificate on `acme-tls/1`."""
    listener = socket.create_server(("127.0.0.1", pebble.tls_port))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            if answers.alpn is None:
                conn.close()
                continue
            (tmp_path / "c.pem").write_text(answers.alpn.alpn_cert_pem)
            (tmp_path / "k.pem").write_text(answers.alpn.alpn_key_pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
            context.set_alpn_protocols(["acme-tls/1"])
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        listener.close()


def _client(pebble: Pebble, tmp_path: Path, challenge: str = "http-01") -> AcmeClient:
    config = AcmeConfig(email="ops@example.com", directory=pebble.directory,
                        ca_bundle=pebble.api_ca, challenge=challenge)  # type: ignore[arg-type]
    return AcmeClient(config, tmp_path / "certs", threading.Event())


def test_an_http01_order_brings_a_certificate_for_the_name(
        pebble: Pebble, tmp_path: Path, answers: Answers, http01_server: None):
    order = _client(pebble, tmp_path).obtain("site.wharf.test", answers.offer)
    cert = x509.load_pem_x509_certificate(order.cert_pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["site.wharf.test"]
    assert order.url.startswith("https://127.0.0.1:")
    assert answers.offers[-1] is None  # the challenge was withdrawn at the end


def test_the_account_key_is_made_once_and_kept_private(
        pebble: Pebble, tmp_path: Path, answers: Answers, http01_server: None):
    client = _client(pebble, tmp_path)
    client.obtain("one.wharf.test", answers.offer)
    key = (client.account_dir / "account.key")
    first = key.read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    _client(pebble, tmp_path).obtain("two.wharf.test", answers.offer)  # the same account
    assert key.read_bytes() == first


def test_a_tls_alpn01_order_brings_a_certificate(
        pebble: Pebble, tmp_path: Path, answers: Answers, alpn_server: None):
    order = _client(pebble, tmp_path, "tls-alpn-01").obtain("alpn.wharf.test", answers.offer)
    assert "BEGIN CERTIFICATE" in order.cert_pem and answers.alpn is not None


def test_a_challenge_nobody_answers_fails_validation(pebble: Pebble, tmp_path: Path):
    from acme import errors

    with pytest.raises(errors.ValidationError):
        _client(pebble, tmp_path).obtain("nobody.wharf.test", lambda offer: None)
