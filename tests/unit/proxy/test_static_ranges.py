"""Byte ranges and content types of static files."""

import pytest

from wharf.proxy.static import content_type, parse_range


@pytest.mark.parametrize(("header", "result"), [
    ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-5", (95, 99)),
    ("bytes=90-200", (90, 99)), ("bytes=-500", (0, 99)),
    ("bytes=100-", False), ("bytes=5-2", False), ("bytes=-0", False),
    ("bytes=0-1,3-4", None), ("items=0-1", None), ("bytes=a-b", None), ("bytes=", None),
])
def test_parse_range(header, result):
    assert parse_range(header, 100) == result


def test_content_type():
    assert content_type("a.html") == b"text/html; charset=utf-8"
    assert content_type("a.png") == b"image/png"
    assert content_type("a.unknownext") == b"application/octet-stream"
