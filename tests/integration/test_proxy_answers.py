"""What every answer carries, whoever made it: a Date header; and what HTTP/1.0 must not get."""

from __future__ import annotations

import time

import pytest

from tests.integration.proxy_fixture import Proxy
from tests.integration.proxyutil import assert_current_date, exchange, get, parse_responses
from wharf.testing.upstream import DATE


@pytest.mark.parametrize(("path", "status"), [
    ("/echo-date", 200),  # proxied, from a backend that sends no Date
    ("/old/x", 301),  # a redirect
    ("/dead", 502),  # a backend that refuses connections
    ("/down", 503),  # an app with no instance running
    ("/files/missing", 404),
    ("/files/f.bin", 200),  # a static file
])
def test_every_answer_has_a_date(proxy: Proxy, path: str, status: int):
    before = time.time()
    r = get(proxy.port, path)
    assert r.status == status
    assert len([v for n, v in r.headers if n.lower() == "date"]) == 1
    assert_current_date(r.header("Date"), before)


def test_a_request_refused_while_parsing_gets_a_date(proxy: Proxy):
    before = time.time()
    data, _ = exchange(proxy.port, b"GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n")
    r = parse_responses(data)[0]
    assert r.status == 400
    assert_current_date(r.header("Date"), before)


def test_a_backends_date_is_kept_and_not_repeated(proxy: Proxy):
    r = get(proxy.port, "/echo/dated")
    assert r.status == 200
    assert [v for n, v in r.headers if n.lower() == "date"] == [DATE]


def test_http_1_0_gets_no_100_continue(proxy: Proxy):
    data, closed = exchange(proxy.port, b"POST /echo-10 HTTP/1.0\r\nHost: t\r\nContent-Length: 4"
                                        b"\r\nExpect: 100-continue\r\n\r\nbody")
    assert closed and b"100 Continue" not in data
    assert data.startswith(b"HTTP/1.1 200 ")
    assert proxy.seen(proxy.a, "/echo-10")[-1].body == b"body"


def test_http_1_0_without_host_reaches_the_backend_with_one(proxy: Proxy):
    # Forwarded as HTTP/1.1, which needs a Host (RFC 9112 3.2): the backend's address, as
    # nginx sends ($proxy_host) and Go's reverse proxy; a strict backend would answer 400.
    data, closed = exchange(proxy.port, b"GET /echo-10-nohost HTTP/1.0\r\n\r\n")
    assert closed and data.startswith(b"HTTP/1.1 200 ")
    seen = proxy.seen(proxy.a, "/echo-10-nohost")[-1]
    assert seen.header_values("Host") == [f"127.0.0.1:{proxy.a.port}"]
