"""Bad input at the proxy: every smuggling shape is refused with 400 and a closed connection,
and never reaches a backend; a fuzzer finds no request that gets through malformed."""

from __future__ import annotations

import uuid

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.proxy_fixture import Proxy
from tests.integration.proxyutil import exchange, get, parse_responses


def marker() -> str:
    return "/smuggle-" + uuid.uuid4().hex[:12]


def assert_refused(proxy: Proxy, raw: bytes, path: str, status: int = 400) -> None:
    data, closed = exchange(proxy.port, raw)
    responses = parse_responses(data)
    assert responses and responses[0].status == status, data[:200]
    assert responses[0].header("Connection") == "close"
    assert closed
    assert not proxy.seen(proxy.a, path), "a malformed request reached the backend"
    assert not [h for h in proxy.a.heads if path in h], "its head reached the backend"


SMUGGLING = {
    "content-length with transfer-encoding":
        "POST {p} HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
        "\r\n0\r\n\r\n",
    "two different content-lengths":
        "POST {p} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "content-length list": "POST {p} HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd",
    "transfer-encoding not ending in chunked":
        "POST {p} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "transfer-encoding unknown": "POST {p} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n"
                                 "\r\n0\r\n\r\n",
    "two transfer-encoding headers":
        "POST {p} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    "invalid chunk size": "POST {p} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "zz\r\nabc\r\n0\r\n\r\n",
    "chunk size with 0x": "POST {p} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "0x3\r\nabc\r\n0\r\n\r\n",
    "invalid chunk extension": "POST {p} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                               "\r\n3;\x01\r\nabc\r\n0\r\n\r\n",
    "chunk line ending in bare LF": "POST {p} HTTP/1.1\r\nHost: t\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n",
    "whitespace before the colon": "GET {p} HTTP/1.1\r\nHost: t\r\nContent-Length : 0\r\n\r\n",
    "obs-fold": "GET {p} HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n",
    "bare CR in a header": "GET {p} HTTP/1.1\r\nHost: t\rX-A: b\r\n\r\n",
    "bare LF line endings": "GET {p} HTTP/1.1\nHost: t\n\n",
    "NUL in a value": "GET {p} HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
    "control character in a value": "GET {p} HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n",
    "control character in a name": "GET {p} HTTP/1.1\r\nHost: t\r\nX\x01A: b\r\n\r\n",
    "invalid method": "G@T {p} HTTP/1.1\r\nHost: t\r\n\r\n",
    "unknown version": "GET {p} HTTP/1.3\r\nHost: t\r\n\r\n",
    "HTTP/0.9 request line": "GET {p}\r\n\r\n",
    "HTTP/2.0 in an HTTP/1 request line": "GET {p} HTTP/2.0\r\nHost: t\r\n\r\n",
    "space inside the target": "GET {p} x HTTP/1.1\r\nHost: t\r\n\r\n",
    "negative content-length": "POST {p} HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    "two Host headers": "GET {p} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "missing Host in HTTP/1.1": "GET {p} HTTP/1.1\r\nX-A: b\r\n\r\n",
    "dot-segments in the path": "GET /public/..{p} HTTP/1.1\r\nHost: t\r\n\r\n",
    "encoded dot-segments": "GET /public/%2e%2e{p} HTTP/1.1\r\nHost: t\r\n\r\n",
    "request target that is not a path": "GET example{p} HTTP/1.1\r\nHost: t\r\n\r\n",
    "encoded slash": "GET {p}%2Fx HTTP/1.1\r\nHost: t\r\n\r\n",
    "encoded backslash": "GET {p}%5Cx HTTP/1.1\r\nHost: t\r\n\r\n",
    "encoded NUL": "GET {p}%00 HTTP/1.1\r\nHost: t\r\n\r\n",
    "malformed escape": "GET {p}%zz HTTP/1.1\r\nHost: t\r\n\r\n",
    "dot-segment made of decoded escapes": "GET {p}/%2E%2e/x HTTP/1.1\r\nHost: t\r\n\r\n",
    "fragment in the target": "GET {p}#x HTTP/1.1\r\nHost: t\r\n\r\n",
    "Host with a space": "GET {p} HTTP/1.1\r\nHost: a b\r\n\r\n",
    "Host with a path": "GET {p} HTTP/1.1\r\nHost: evil.com/x\r\n\r\n",
    "Host with userinfo": "GET {p} HTTP/1.1\r\nHost: user@evil.com\r\n\r\n",
    "Host with a bad port": "GET {p} HTTP/1.1\r\nHost: t:80x\r\n\r\n",
    "absolute-form with userinfo": "GET http://user@t{p} HTTP/1.1\r\nHost: t\r\n\r\n",
    "absolute-form without a host": "GET http://{p} HTTP/1.1\r\nHost: t\r\n\r\n",
    "HTTP/1.0 with Transfer-Encoding": "POST {p} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
                                       "\r\n0\r\n\r\n",
    "HTTP/1.0 keep-alive with Transfer-Encoding":
        "POST {p} HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
        "\r\n5\r\nhello\r\n0\r\n\r\nGET {p}-next HTTP/1.0\r\n\r\n",
}


@pytest.mark.parametrize("case", list(SMUGGLING), ids=list(SMUGGLING))
def test_smuggling_shapes_are_refused(proxy: Proxy, case: str):
    path = marker()
    assert_refused(proxy, SMUGGLING[case].format(p=path).encode("latin-1"), path)


def test_a_coding_before_chunked_is_refused_too(proxy: Proxy):
    """llhttp accepts `gzip, chunked`; the proxy cannot forward a coding it would have to undo."""
    path = marker()
    assert_refused(proxy, f"POST {path} HTTP/1.1\r\nHost: t\r\n"
                          "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".encode(), path)


def test_a_bad_request_after_a_good_one_closes_the_connection(proxy: Proxy):
    path = marker()
    data, closed = exchange(proxy.port, f"GET /echo{path}-ok HTTP/1.1\r\nHost: t\r\n\r\n"
                                        f"GET {path} HTTP/1.1\r\nHost : t\r\n\r\n".encode())
    responses = parse_responses(data)
    assert [r.status for r in responses] == [200, 400] and closed
    assert not proxy.seen(proxy.a, path + " ") and not [
        r for r in proxy.a.requests if r.target == path]


# -- fuzzing ---------------------------------------------------------------------------------

TEMPLATES = [
    b"GET /fz HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n",
    b"POST /fz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /fz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /fz HTTP/1.0\r\n\r\n",
]
NASTY = [b"\r", b"\n", b"\x00", b"\x01", b" ", b"\t", b":", b",", b";", b"\r\n", b"\r\n ",
         b"Transfer-Encoding: chunked\r\n", b"Content-Length: 3\r\n", b"Content-Length: 99\r\n",
         b"Host: x\r\n", b"0\r\n\r\n", b"\x7f", b"\xff", b"/../", b"%2e%2e", b"HTTP/1.1"]


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(NASTY), st.binary(min_size=1, max_size=4)))
        if action == "insert":
            data[where:where] = piece
        elif action == "delete":
            del data[where:where + len(piece)]
        else:
            data[where:where + len(piece)] = piece
    return bytes(data)


def valid_requests(raw: bytes) -> int:
    """How many complete requests llhttp, as a reference, parses before any error in `raw`."""

    class Sink:
        complete = 0

        def on_message_complete(self) -> None:
            self.complete += 1

    sink = Sink()
    try:
        httptools.HttpRequestParser(sink).feed_data(raw)
    except httptools.HttpParserError:
        pass
    return sink.complete


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=mutated_request())
def test_fuzzed_requests_never_reach_a_backend_malformed(proxy: Proxy, raw: bytes):
    tag = uuid.uuid4().hex[:10].encode()
    raw = raw.replace(b"/fz", b"/fz-" + tag)
    before = len(proxy.a.requests)
    data, _ = exchange(proxy.port, raw, timeout=3)
    if data:
        assert data.startswith(b"HTTP/1.1 "), data[:100]
    reached = [r for r in proxy.a.requests[before:] if tag.decode() in r.target]
    assert len(reached) <= valid_requests(raw), f"a malformed request got through: {raw!r}"


def test_the_worker_survived_the_fuzzing(proxy: Proxy):
    assert get(proxy.port, "/still-alive").status == 200
    worker = [r for r in proxy.wharf.status() if r["app"] == "wharf-proxy"]
    assert worker and all(r["restarts"] == 0 for r in worker)
