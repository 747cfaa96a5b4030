"""HTTPS end to end with real Pebble: the daemon orders a certificate for a route host, the
workers serve it, a restart reuses it, a forced renewal swaps it under an open connection, and
a CA that is down leaves the old one serving with the error shown."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.pebble import Pebble, free_port

HOST = "site.wharf.test"

CONFIG = """
[proxy]
listen = ["127.0.0.1:{http}"]
listen_tls = ["127.0.0.1:{tls}"]

[tls]
acme = {{ email = "ops@example.com", directory = "{directory}", ca_bundle = "{ca}", \
challenge = "{challenge}" }}

[apps.web]
command = "{{py}} {{apps}}/httpapp.py"
startsecs = "0.2s"

[[routes]]
host = "{host}"
app = "web"

[[routes]]
host = "*.wild.wharf.test"
app = "web"
"""


def configure(wharf: Wharf, pebble: Pebble, challenge: str = "http-01",
              directory: str | None = None) -> None:
    wharf.write_config(CONFIG.format(http=pebble.http_port, tls=pebble.tls_port,
                                     directory=directory or pebble.directory,
                                     ca=pebble.api_ca, challenge=challenge, host=HOST))


def cert_row(wharf: Wharf, name: str = HOST) -> dict:
    result = wharf.run("certs", "--json")
    assert result.returncode == 0, result.stderr
    return next(r for r in json.loads(result.stdout) if r["name"] == name)


def wait_issued(wharf: Wharf, pebble: Pebble) -> dict:
    """The row of HOST once it has a certificate and the workers serve it (the row is
    written a moment before the snapshot that carries it)."""
    row: dict = wait_until(lambda: (r := cert_row(wharf))["serial"] and r, timeout=60,
                           message=f"a certificate for {HOST}")  # type: ignore[assignment]

    def served() -> bool:
        try:
            return served_serial(pebble) == row["serial"]
        except (OSError, ssl.SSLError):
            return False

    wait_until(served, message="the certificate served")
    return row


def curl(pebble: Pebble, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--resolve", f"{HOST}:{pebble.tls_port}:127.0.0.1",
         "--resolve", f"{HOST}:{pebble.http_port}:127.0.0.1", "--cacert", str(pebble.root),
         *args, url], capture_output=True, text=True, check=False)


def served_serial(pebble: Pebble, conn: ssl.SSLSocket | None = None) -> str:
    """The serial of the certificate a new handshake gets (hex, as `wharf certs` prints it)."""
    context = ssl.create_default_context(cafile=str(pebble.root))
    with socket.create_connection(("127.0.0.1", pebble.tls_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=HOST) as tls:
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return f"{x509.load_der_x509_certificate(der).serial_number:X}"


def read_answer(conn: ssl.SSLSocket) -> bytes:
    """One HTTP/1.1 answer with a Content-Length (head and body may come in two records)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def https(wharf: Wharf, pebble: Pebble) -> Wharf:
    """A daemon serving a Pebble certificate for HOST (TLS-ALPN-01; HTTP-01 has its test)."""
    configure(wharf, pebble, challenge="tls-alpn-01")
    wharf.up()
    wait_issued(wharf, pebble)
    return wharf


def test_a_route_host_gets_a_certificate_from_pebble_and_serves_https(
        https: Wharf, pebble: Pebble):
    row = cert_row(https)
    assert row["source"] == "acme" and "Pebble" in row["issuer"] and row["last_error"] == ""
    answer = curl(pebble, f"https://{HOST}:{pebble.tls_port}/hello")
    assert answer.returncode == 0, answer.stderr
    assert "path=/hello" in answer.stdout
    assert served_serial(pebble) == row["serial"]


def test_plain_http_redirects_to_https(https: Wharf, pebble: Pebble):
    answer = curl(pebble, f"http://{HOST}:{pebble.http_port}/x?y=1", "-o", "/dev/null",
                  "-w", "%{http_code} %{redirect_url}")
    assert answer.stdout == f"308 https://{HOST}:{pebble.tls_port}/x?y=1"


def test_a_restart_reuses_the_stored_certificate(https: Wharf, pebble: Pebble):
    serial = cert_row(https)["serial"]
    https.close()
    https.up()
    assert cert_row(https)["serial"] == serial
    wait_until(lambda: curl(pebble, f"https://{HOST}:{pebble.tls_port}/").returncode == 0,
               message="https after the restart")
    assert served_serial(pebble) == serial


def test_a_forced_renewal_swaps_the_certificate_under_an_open_connection(
        https: Wharf, pebble: Pebble):
    old = cert_row(https)["serial"]
    context = ssl.create_default_context(cafile=str(pebble.root))
    raw = socket.create_connection(("127.0.0.1", pebble.tls_port), timeout=5)
    with context.wrap_socket(raw, server_hostname=HOST) as conn:
        request = f"GET /before HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        conn.sendall(request)
        assert b"path=/before" in read_answer(conn)
        renewed = https.run("certs", "--renew", HOST)
        assert renewed.returncode == 0, renewed.stderr
        new = cert_row(https)["serial"]
        assert new != old
        conn.sendall(request.replace(b"/before", b"/after"))
        assert b"path=/after" in read_answer(conn)  # the old connection keeps working
    wait_until(lambda: served_serial(pebble) == new, message="the new certificate served")


def test_a_wildcard_route_is_named_in_a_warning_of_check(https: Wharf):
    result = https.run("check")
    assert result.returncode == 0
    assert "routes[1].host" in result.stderr and "DNS-01" in result.stderr


def test_a_ca_that_is_down_leaves_the_old_certificate_serving_and_says_why(
        https: Wharf, pebble: Pebble):
    serial = cert_row(https)["serial"]
    configure(https, pebble, directory=f"https://127.0.0.1:{free_port()}/dir")
    assert https.run("reload").returncode == 0
    failed = https.run("certs", "--renew", HOST)
    assert failed.returncode == 1 and "cannot reach the CA" in failed.stderr
    row = cert_row(https)
    assert row["serial"] == serial and "cannot reach the CA" in row["last_error"]
    assert row["next_renewal"] > row["last_error_at"]  # backing off
    assert served_serial(pebble) == serial
    status = https.run("status")
    assert HOST in status.stdout and "cannot reach the CA" in status.stdout


def test_http_01_gets_a_certificate(wharf: Wharf, pebble: Pebble):
    configure(wharf, pebble, challenge="http-01")
    wharf.up()
    row = wait_issued(wharf, pebble)
    assert row["last_error"] == ""
    assert curl(pebble, f"https://{HOST}:{pebble.tls_port}/").returncode == 0
