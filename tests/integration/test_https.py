"""HTTPS end to end: file certificates chosen by SNI, what is refused, redirects, HSTS, static
files through TLS, certificate swaps under open connections, resumption across workers."""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import Response, get, parse_responses
from wharf.testing.certs import TestCA
from wharf.testing.upstream import ScriptedUpstream

CONFIG = """
[proxy]
listen = ["127.0.0.1:{plain}"]
listen_tls = ["127.0.0.1:{tls}"]
workers = 2

[tls]
certificates = [{{ cert = "certs/a.pem", key = "certs/a.key" }},
                {{ cert = "certs/b.pem", key = "certs/b.key" }}]
hsts = "max-age=31536000"

[[routes]]
path = "/files"
static = "files"

[[routes]]
path = "/"
servers = ["127.0.0.1:{upstream}"]
"""


@dataclass
class Site:
    wharf: Wharf
    upstream: ScriptedUpstream
    ca: TestCA
    plain: int
    tls: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("https")
    ca = TestCA()
    (root / "certs").mkdir()
    ca.write(root / "certs", "a", ["a.test", "*.wild.test"])
    ca.write(root / "certs", "b", ["b.test"])
    (root / "files").mkdir()
    (root / "files" / "big.bin").write_bytes(bytes(range(251)) * 12_000)  # ~3 MB
    upstream = ScriptedUpstream("U")
    wharf = Wharf(root)
    plain, tls = free_port(), free_port()
    wharf.write_config(CONFIG.format(plain=plain, tls=tls, upstream=upstream.port))
    try:
        wharf.up()
        site = Site(wharf, upstream, ca, plain, tls)
        wait_until(lambda: _try(lambda: https(site, "a.test", "/").status == 200),
                   message="the HTTPS listener")
        yield site
    finally:
        wharf.close()
        upstream.close()


def _try(check):  # type: ignore[no-untyped-def]
    try:
        return check()
    except OSError:
        return False


def client_context(site: Site) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=site.ca.cert_pem)
    return ctx


def https(site: Site, name: str | None, path: str, ctx: ssl.SSLContext | None = None,
          headers: str = "") -> Response:
    """One GET over a new TLS connection with SNI `name` (None: no SNI)."""
    ctx = ctx or client_context(site)
    if name is None:
        ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", site.tls), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name or 'a.test'}\r\n{headers}"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    [response] = parse_responses(data)
    return response


def peer_names(site: Site, name: str | None) -> str:
    """The common name of the certificate a handshake with SNI `name` gets."""
    ctx = client_context(site)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", site.tls), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as s:
        cert = s.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_the_backends_answer_comes_over_https_with_x_forwarded_proto(site: Site):
    response = https(site, "a.test", "/echo/hello")
    assert response.status == 200
    seen = [r for r in site.upstream.requests if r.target == "/echo/hello"][-1]
    assert seen.header("X-Forwarded-Proto") == "https"
    get(site.plain, "/echo/plain", host="other.test")
    plain = [r for r in site.upstream.requests if r.target == "/echo/plain"][-1]
    assert plain.header("X-Forwarded-Proto") == "http"


def test_curl_gets_the_backends_answer(site: Site, tmp_path: Path):
    ca = site.ca.write_ca(tmp_path / "ca.pem")
    done = subprocess.run(["curl", "-sS", "--cacert", str(ca), "--resolve",
                           f"b.test:{site.tls}:127.0.0.1", f"https://b.test:{site.tls}/"],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok from U"


def test_sni_picks_between_two_file_certificates_wildcard_included(site: Site):
    assert peer_names(site, "a.test") == "a.test"
    assert peer_names(site, "b.test") == "b.test"
    assert peer_names(site, "x.wild.test") == "a.test"
    assert peer_names(site, "unknown.test") == "a.test"


def test_a_client_without_sni_gets_the_first_certificate(site: Site):
    assert peer_names(site, None) == "a.test"
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{site.tls}",
                           "-noservername"], input="", capture_output=True, text=True,
                          timeout=20)
    assert "CN = a.test" in done.stdout


def test_tls_1_1_and_plain_http_on_the_tls_port_are_refused_cleanly(site: Site):
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{site.tls}",
                           "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                          input="", capture_output=True, text=True, timeout=20)
    assert done.returncode != 0
    assert "no peer certificate available" in done.stdout
    with socket.create_connection(("127.0.0.1", site.tls), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    # nginx's answer: a plain 400 that says why, then the connection is closed
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert answer.endswith(b"The plain HTTP request was sent to the HTTPS port.\n")
    assert https(site, "a.test", "/").status == 200  # and the workers serve on
    logs = "".join(p.read_text() for p in (site.wharf.root / ".wharf" / "logs").glob("*.log"))
    assert "Traceback" not in logs


def test_static_files_over_tls_arrive_intact(site: Site):
    response = https(site, "a.test", "/files/big.bin")
    assert response.status == 200
    assert response.body == (site.wharf.root / "files" / "big.bin").read_bytes()


def test_plain_requests_for_a_certified_name_get_308_to_https(site: Site):
    response = get(site.plain, "/some/path?q=1", host="a.test")
    assert response.status == 308
    assert response.header("Location") == f"https://a.test:{site.tls}/some/path?q=1"
    assert get(site.plain, "/x", host="y.wild.test").header("Location") == \
        f"https://y.wild.test:{site.tls}/x"
    assert get(site.plain, "/", host="not-covered.test").status == 200  # proxied as before
    assert get(site.plain, "/.well-known/acme-challenge/unknown", host="a.test").status == 404


def test_hsts_is_sent_on_https_answers_only(site: Site):
    assert https(site, "a.test", "/").header("Strict-Transport-Security") == "max-age=31536000"
    assert https(site, "a.test", "/files/nope").header("Strict-Transport-Security")
    assert https(site, "a.test", "/files/big.bin").header("Strict-Transport-Security")
    assert get(site.plain, "/", host="other.test").header("Strict-Transport-Security") is None


def test_sessions_resume_on_either_of_two_workers(site: Site):
    ctx = client_context(site)
    first = None
    with socket.create_connection(("127.0.0.1", site.tls), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="a.test") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        first = s.session
    reused = []
    for _ in range(30):  # SO_REUSEPORT spreads them: both workers see some (2^-29 otherwise)
        with socket.create_connection(("127.0.0.1", site.tls), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="a.test", session=first) as s:
            reused.append(s.session_reused)
    assert all(reused), f"{reused.count(False)} of {len(reused)} did a full handshake"


def test_a_reload_swaps_the_certificate_under_an_open_keep_alive_connection(site: Site):
    ctx = client_context(site)
    raw = socket.create_connection(("127.0.0.1", site.tls), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="b.test") as kept:
        old_serial = ssl.DER_cert_to_PEM_cert(kept.getpeercert(binary_form=True))
        kept.sendall(b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        chain, key = site.ca.issue(["b.test"], valid_for=datetime.timedelta(days=30))
        (site.wharf.root / "certs" / "b.pem").write_text(chain)
        (site.wharf.root / "certs" / "b.key").write_text(key)
        done = site.wharf.run("reload")
        assert done.returncode == 0, done.stderr

        def new_cert() -> bool:
            c = client_context(site)
            with socket.create_connection(("127.0.0.1", site.tls), timeout=5) as r, \
                    c.wrap_socket(r, server_hostname="b.test") as s:
                return ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True)) != old_serial
        wait_until(new_cert, message="the new certificate")
        for _ in range(3):  # both workers have it
            assert new_cert()
        kept.sendall(b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")


BAD = """
[proxy]
listen = ["127.0.0.1:{plain}"]
listen_tls = ["127.0.0.1:{tls}"]
[tls]
certificates = [{certs}]
[[routes]]
servers = ["127.0.0.1:9"]
"""


def test_check_and_up_refuse_bad_certificates_with_key_paths(wharf: Wharf):
    ca = TestCA()
    ca.write(wharf.root, "a", ["a.test"])
    ca.write(wharf.root, "b", ["b.test"])
    ca.write(wharf.root, "old", ["old.test"], valid_for=-datetime.timedelta(days=1))
    wharf.write_config(BAD.format(plain=free_port(), tls=free_port(), certs=(
        '{ cert = "missing.pem", key = "a.key" }, { cert = "a.pem", key = "b.key" }, '
        '{ cert = "old.pem", key = "old.key" }')))
    for command in ("check", "up"):
        done = wharf.run(command)
        assert done.returncode == 2, done.stderr
        assert f"tls.certificates[0].cert: no such file: {wharf.root / 'missing.pem'}" \
            in done.stderr
        assert "tls.certificates[1].key:" in done.stderr
        assert "tls.certificates[2].cert:" in done.stderr and "expired" in done.stderr
    wharf.write_config(BAD.format(plain=free_port(), tls=free_port(), certs=""))
    done = wharf.run("check")
    assert done.returncode == 2 and "proxy.listen_tls: needs a certificate source" in done.stderr


def test_check_warns_of_a_certificate_that_expires_within_a_week(wharf: Wharf):
    TestCA().write(wharf.root, "soon", ["soon.test"], valid_for=datetime.timedelta(days=2))
    wharf.write_config(BAD.format(plain=free_port(), tls=free_port(),
                                  certs='{ cert = "soon.pem", key = "soon.key" }'))
    done = wharf.run("check")
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "tls.certificates[0].cert" in done.stderr
    assert "expires in" in done.stderr
