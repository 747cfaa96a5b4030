"""HTTP/1 helpers: targets, dot-segments, canned responses, chunks."""

import pytest

from wharf.proxy import http1


@pytest.mark.parametrize(("target", "parts"), [
    (b"/a/b?x=1", ("", "/a/b", "x=1")),
    (b"/", ("", "/", "")),
    (b"http://Example.com:8080/p?q", ("Example.com:8080", "/p", "q")),
    (b"https://h", ("h", "/", "")),
    (b"*", None), (b"example.com:443", None), (b"ftp://x/y", None),
])
def test_split_target(target, parts):
    assert http1.split_target(target) == parts


@pytest.mark.parametrize(("path", "dotted"), [
    ("/a/b", False), ("/a/.well-known/x", False), ("/a..b/c", False), ("/a/../b", True),
    ("/a/./b", True), ("/..", True), ("/a/%2e%2e/b", True), ("/a/%2E./b", True),
    ("/a%2f..%2fb", True), ("/%2e", True), ("/file.%2etxt", False),
])
def test_has_dot_segment(path, dotted):
    assert http1.has_dot_segment(path) is dotted


def test_host_without_port():
    assert http1.host_without_port(b"Example.COM:8080") == b"example.com"
    assert http1.host_without_port(b"[::1]:80") == b"[::1]"
    assert http1.host_without_port(b"[::1]") == b"[::1]"
    assert http1.host_without_port(b"h") == b"h"


def test_simple_response_is_complete_and_small():
    data = http1.simple_response(502, close=True)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"Content-Length: %d" % len(body) in head and b"Connection: close" in head
    assert body == b"502 Bad Gateway\n"
    assert http1.simple_response(404, head_only=True).endswith(b"\r\n\r\n")


def test_chunk():
    assert http1.chunk(b"hello") == b"5\r\nhello\r\n"
    assert http1.chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
