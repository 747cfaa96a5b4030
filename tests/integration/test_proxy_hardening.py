"""What the proxy refuses and normalizes so that routing and the backend agree on a request:
protocol upgrades, percent-encoded and doubled paths, underscore headers, Host and
absolute-form targets, redirects that use {host}."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

from tests.integration.proxy_fixture import Proxy, proxy_to_upstream
from tests.integration.proxyutil import exchange, get, parse_responses, request

H2C = "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"


def tag() -> str:
    return uuid.uuid4().hex[:10]


def echoed(body: bytes) -> dict:
    return json.loads(body)


def names(seen_headers: list) -> set[str]:
    return {n.lower() for n, _ in seen_headers}


# -- 1. Upgrade: WebSocket only, unless the route allows more -------------------------------

def test_an_h2c_upgrade_is_forwarded_as_a_plain_request_and_the_connection_parses_on(
        proxy: Proxy):
    """curl --http2 http://HOST/h2c/x http://HOST/h2c/admin: once tunnelled, the second request
    would reach the backend past the route that sends /h2c/admin away."""
    t = tag()
    data, closed = exchange(proxy.port, f"GET /h2c/{t} HTTP/1.1\r\nHost: t\r\n{H2C}\r\n"
                                        "GET /h2c/admin HTTP/1.1\r\nHost: t\r\n"
                                        "Connection: close\r\n\r\n".encode())
    responses = parse_responses(data)
    assert closed and [r.status for r in responses] == [200, 302], data[:300]
    assert responses[1].header("Location") == "/denied"
    seen = proxy.seen(proxy.a, t)
    assert len(seen) == 1 and not names(seen[0].headers) & {"upgrade", "http2-settings"}
    assert "upgrade" not in (seen[0].header("Connection") or "").lower()


def test_a_refused_upgrade_with_a_body_forwards_the_body_and_parses_on(proxy: Proxy):
    t = tag()
    data, closed = exchange(proxy.port, (
        f"POST /echo-{t}-a HTTP/1.1\r\nHost: t\r\n{H2C}Content-Length: 5\r\n\r\nhello"
        f"POST /echo-{t}-b HTTP/1.1\r\nHost: t\r\n{H2C}Transfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n"
        f"GET /echo-{t}-c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").encode())
    responses = parse_responses(data)
    assert closed and [r.status for r in responses] == [200, 200, 200], data[:300]
    assert [echoed(r.body)["body"] for r in responses] == ["hello", "abc", ""]
    assert all("upgrade" not in names(echoed(r.body)["headers"]) for r in responses)


def test_a_refused_upgrade_whose_body_comes_later_is_read_in_full(proxy: Proxy):
    t = tag()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(f"POST /echo-{t} HTTP/1.1\r\nHost: t\r\n{H2C}Content-Length: 10\r\n"
                  "Connection: close\r\n\r\n".encode())
        s.sendall(b"hello")
        s.sendall(b"world")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    [r] = parse_responses(data)
    assert r.status == 200 and echoed(r.body)["body"] == "helloworld"


def test_a_switch_to_a_protocol_the_client_was_not_allowed_is_a_502(proxy: Proxy):
    """/ws answers 101 whatever it is asked: after a refused upgrade, no tunnel opens."""
    data, _ = exchange(proxy.port, f"GET /ws-{tag()} HTTP/1.1\r\nHost: t\r\n{H2C}"
                                   "Connection: close\r\n\r\n".encode(), timeout=3)
    assert data.startswith(b"HTTP/1.1 502"), data[:200]


def test_http_1_0_never_upgrades(proxy: Proxy):
    r = request(proxy.port, f"GET /echo-{tag()} HTTP/1.0\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\n\r\n".encode())
    assert r.status == 200 and "upgrade" not in names(echoed(r.body)["headers"])


def test_a_route_can_allow_h2c(proxy: Proxy):
    t = tag()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(f"GET /ws-h2c/{t} HTTP/1.1\r\nHost: t\r\n{H2C}\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(b"PRI")
        assert s.recv(100) == b"echo:PRI"
    seen = proxy.seen(proxy.a, t)[0]
    assert seen.header("Upgrade") == "h2c" and seen.header("HTTP2-Settings") == "AAMAAABkAAQAAP__"
    assert "http2-settings" in seen.header("Connection").lower()


# -- 2. Routes match, and backends get, the normalized path ---------------------------------

def test_an_encoded_path_routes_as_its_decoded_form(proxy: Proxy):
    for path in ("/h2c/%61dmin", "/h2c/%61%64%6D%69%6E", "/h2c//admin", "//h2c/admin/"):
        r = get(proxy.port, path)
        assert r.status == 302 and r.header("Location") == "/denied", path


def test_the_backend_is_sent_the_path_that_was_matched(proxy: Proxy):
    t = tag()
    r = get(proxy.port, f"/echo-{t}//%7euser/%2D%5f/a%3ab?q=%61//x")
    assert r.status == 200
    assert echoed(r.body)["target"] == f"/echo-{t}/~user/-_/a%3Ab?q=%61//x"  # query untouched


def test_strip_prefix_strips_from_the_normalized_path(proxy: Proxy):
    r = get(proxy.port, "//%61pp//echo-x")
    assert r.status == 200 and b"path=/echo-x\n" in r.body


# -- 3. Headers named with underscores -------------------------------------------------------

def test_request_headers_with_underscores_are_dropped(proxy: Proxy):
    r = get(proxy.port, f"/echo-{tag()}", headers="X_Forwarded_For: 6.6.6.6\r\nX-Ok: 1\r\n")
    headers = names(echoed(r.body)["headers"])
    assert "x-ok" in headers and not [n for n in headers if "_" in n]
    assert "6.6.6.6" not in r.body.decode()


def test_underscores_in_headers_keeps_them(tmp_path: Path):
    with proxy_to_upstream(tmp_path, "underscores_in_headers = true") as (_, upstream, port):
        get(port, "/u", headers="X_Custom: 1\r\n")
        assert upstream.requests[-1].header("X_Custom") == "1"


# -- 4. Host ---------------------------------------------------------------------------------

def test_a_trailing_dot_in_host_routes_as_without_it(proxy: Proxy):
    assert get(proxy.port, "/x", host="api.test.").body == b"ok from B"
    assert get(proxy.port, "/x", host="API.test.:8080").body == b"ok from B"


def test_an_absolute_form_target_routes_by_its_host_and_sends_it_as_host(proxy: Proxy):
    t = tag()
    r = request(proxy.port, f"GET http://api.test/echo-{t}?a=1 HTTP/1.1\r\nHost: other.test\r\n"
                            "Connection: close\r\n\r\n".encode())
    seen = proxy.seen(proxy.b, t)
    assert r.status == 200 and len(seen) == 1
    assert seen[0].target == f"/echo-{t}?a=1"
    assert seen[0].header_values("Host") == ["api.test"]
    assert seen[0].header("X-Forwarded-Host") == "api.test"


def test_redirect_host_is_the_validated_routing_host(proxy: Proxy):
    r = get(proxy.port, "/old/p", host="Site.Test.:8080")
    assert r.status == 301 and r.header("Location") == "https://site.test/new/old/p"
    for host in ("evil.com/x", "evil.com/x?", "user@evil.com", "a b"):
        assert get(proxy.port, "/old/p", host=host).status == 400, host
    # HTTP/1.0 without Host: nothing to redirect to.
    assert request(proxy.port, b"GET /old/p HTTP/1.0\r\n\r\n").status == 400
