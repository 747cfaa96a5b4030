"""HTTP/1 helpers: targets, dot-segments, canned responses, chunks, known header names."""

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


@pytest.mark.parametrize(("host", "name"), [
    (b"Example.COM:8080", b"example.com"), (b"[::1]:80", b"[::1]"), (b"[::1]", b"[::1]"),
    (b"h", b"h"), (b"example.com.", b"example.com"), (b"example.com.:80", b"example.com"),
    (b"127.0.0.1:8080", b"127.0.0.1"), (b"a-b_c~d", b"a-b_c~d"), (b"h:", b"h"),
    (b"a b", None), (b"evil.com/x", None), (b"user@evil.com", None), (b"a..b", None),
    (b".", None), (b":80", None), (b"h:8x", None), (b"h:80:80", None), (b"[::1", None),
    (b"[]", None), (b"[::1]x", None), (b"[v1.x]", None), (b"a\\b", None), (b"a%2fb", None),
    (b"h\xff", None), (b"h?x", None), (b"h#x", None),
])
def test_host_name_validates_and_normalizes(host, name):
    assert http1.host_name(host) == name


@pytest.mark.parametrize(("path", "normal"), [
    (b"/h2c/%61dmin", b"/h2c/admin"), (b"/%7Euser/%2d%2E%5f", b"/~user/-._"),
    (b"/a%3fb%3Ac", b"/a%3Fb%3Ac"), (b"/a%20b", b"/a%20b"), (b"/%e2%82%ac", b"/%E2%82%AC"),
    (b"//a///b//", b"/a/b/"), (b"/a/.well-known", b"/a/.well-known"), (b"/a..b", b"/a..b"),
    (b"/a%25", b"/a%25"),
    (b"/a/../b", None), (b"/a/./b", None), (b"/..", None), (b"/a/%2e%2e/b", None),
    (b"/a/%2E./b", None), (b"/a//..//b", None), (b"/a%2fb", None), (b"/a%2Fb", None),
    (b"/a%5Cb", None), (b"/a%00", None), (b"/a%", None), (b"/a%4", None), (b"/a%zz", None),
    (b"/a%+1", None), (b"/admin#x", None),
])
def test_normalize_path(path, normal):
    assert http1.normalize_path(path) == normal


def test_absolute_form():
    assert http1.absolute_form(b"http://A.example/x") == (b"A.example", b"/x")
    assert http1.absolute_form(b"HTTPS://h") == (b"h", b"/")
    assert http1.absolute_form(b"ftp://h/x") is None


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


@pytest.mark.parametrize(("name", "found"), [
    (b"Content-Length", "length"), (b"content-length", "length"), (b"CONTENT-LENGTH", "length"),
    (b"Host", "host"), (b"hOsT", "host"),
    (b"Accept", None),  # the length of none of them
    (b"Cookie-Length!", None),  # the length of one, another name
    (b"X-A-Header-Longer-Than-All-Of-Them", None), (b"", None),
])
def test_known_headers_are_found_in_any_spelling(name, found):
    known = http1.KnownHeaders({b"content-length": "length", b"host": "host"})
    assert known.find(name) == found
