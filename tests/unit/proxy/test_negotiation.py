"""What a static answer should be: ranges, types, encodings, preconditions."""

import pytest

from wharf.proxy.negotiation import (
    content_type,
    not_modified,
    parse_range,
    precondition_failed,
    preferred_encoding,
)

ETAG = '"17-2a"'
MTIME = 1_000_000_000.0  # Sun, 09 Sep 2001 01:46:40 GMT


@pytest.mark.parametrize(("header", "result"), [
    ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-5", (95, 99)),
    ("bytes=90-200", (90, 99)), ("bytes=-500", (0, 99)),
    ("bytes=100-", False), ("bytes=5-2", False), ("bytes=-0", False),
    ("bytes=0-1,3-4", None), ("items=0-1", None), ("bytes=a-b", None), ("bytes=", None),
    ("bytes=\xb2-", None), ("bytes=-\xb2", None),
])
def test_parse_range(header, result):
    assert parse_range(header, 100) == result


def test_content_type():
    assert content_type("a.html") == b"text/html; charset=utf-8"
    assert content_type("a.png") == b"image/png"
    assert content_type("a.unknownext") == b"application/octet-stream"
    assert content_type("style.css.gz") == b"application/gzip"
    assert content_type("app.js.br") == b"application/octet-stream"


@pytest.mark.parametrize(("header", "offered", "chosen"), [
    ("gzip, br", ("br", "gzip"), "br"), ("gzip;q=0", ("br", "gzip"), ""),
    ("gzip;q=0", ("gzip",), ""), ("*;q=0", ("br", "gzip"), ""),
    ("br;q=0, *", ("br", "gzip"), "gzip"),
    ("br;q=0.5, gzip;q=1", ("br", "gzip"), "gzip"), ("br;q=0.5", ("gzip",), ""),
    ("gzip;q=0.5, identity", ("gzip",), ""), ("gzip, identity", ("gzip",), "gzip"),
    ("identity;q=0", ("gzip",), ""), ("gzip ; q=0.001", ("gzip",), "gzip"),
    ("gzip;q=bad", ("gzip",), ""), ("gzip;q=2", ("gzip",), "gzip"), ("", ("gzip",), ""),
    ("gzip", (), ""), ("x-gzip", ("gzip",), "gzip"), ("Br", ("br",), "br"),
])
def test_preferred_encoding(header, offered, chosen):
    assert preferred_encoding(header, offered) == chosen


@pytest.mark.parametrize(("headers", "failed"), [
    ({}, False), ({b"if-match": ETAG}, False), ({b"if-match": '"x", ' + ETAG}, False),
    ({b"if-match": "*"}, False), ({b"if-match": '"x"'}, True), ({b"if-match": "W/" + ETAG}, True),
    ({b"if-unmodified-since": "Sun, 09 Sep 2001 01:46:40 GMT"}, False),
    ({b"if-unmodified-since": "Sun, 09 Sep 2001 01:46:39 GMT"}, True),
    ({b"if-unmodified-since": "garbage"}, False),
    ({b"if-match": ETAG, b"if-unmodified-since": "Mon, 01 Jan 1990 00:00:00 GMT"}, False),
])
def test_precondition_failed(headers, failed):
    assert precondition_failed(headers, ETAG, MTIME) is failed


@pytest.mark.parametrize(("headers", "result"), [
    ({}, False), ({b"if-none-match": "W/" + ETAG}, True), ({b"if-none-match": '"x"'}, False),
    ({b"if-modified-since": "Sun, 09 Sep 2001 01:46:40 GMT"}, True),
    ({b"if-modified-since": "Sun, 09 Sep 2001 01:46:39 GMT"}, False),
    ({b"if-modified-since": "Mon, 01 Jan 0000 00:00:00 GMT"}, False),
])
def test_not_modified(headers, result):
    assert not_modified(headers, ETAG, MTIME) is result
