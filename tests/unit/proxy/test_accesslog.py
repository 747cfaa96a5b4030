"""Escaping what clients send before it reaches the access log."""

import pytest

from wharf.proxy.accesslog import escape


@pytest.mark.parametrize(("raw", "logged"), [
    (b"Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (X11; Linux)"),
    (b'a"b', "a\\x22b"), (b"a\\b", "a\\x5Cb"), (b"\x00\x1f\x7f", "\\x00\\x1F\\x7F"),
    (b"caf\xc3\xa9", "caf\\xC3\\xA9"), (b"\xff", "\\xFF"), (b"", ""),
])
def test_escape_writes_unsafe_bytes_as_nginx_does(raw: bytes, logged: str):
    assert escape(raw) == logged
