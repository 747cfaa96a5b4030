"""What an exchange knows of its client side: the listener facts reach the backend."""

import asyncio

import pytest

from wharf.proxy.downstream import PLAIN, Listener, Peer
from wharf.proxy.http1 import VIA
from wharf.proxy.plane import DataPlane
from wharf.proxy.request import Request
from wharf.proxy.rewrite import request_head
from wharf.proxy.server import ClientConnection
from wharf.registry.snapshot import Route

HTTPS = Listener(scheme="https", alpn="http/1.1", tls=True, address="127.0.0.1:8443")


def _head(listener: Listener, headers: list[tuple[bytes, bytes]]) -> bytes:
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        client = ClientConnection(plane, listener)
        ex = Request(client, Peer(b"10.0.0.1", False, listener, VIA), plane)
        ex.method, ex.target, ex.route, ex.request_id = b"GET", b"/", Route(service="s"), b"1"
        ex.headers = headers
        ex.plain = not any(name.lower() == b"connection" for name, _ in headers)
        return request_head(ex)
    finally:
        loop.close()


@pytest.mark.parametrize("filtered", [False, True], ids=["plain", "filtered"])
@pytest.mark.parametrize("listener, proto", [(PLAIN, b"http"), (HTTPS, b"https")],
                         ids=["http", "https"])
def test_x_forwarded_proto_is_the_listeners_scheme(listener: Listener, proto: bytes,
                                                    filtered: bool):
    headers = [(b"Host", b"t")] + ([(b"Connection", b"x-gone"), (b"X-Gone", b"1")]
                                   if filtered else [])
    head = _head(listener, headers)
    assert head.count(b"X-Forwarded-Proto: ") == 1
    assert b"X-Forwarded-Proto: " + proto + b"\r\n" in head
    assert b"X-Forwarded-For: 10.0.0.1\r\n" in head and b"X-Gone" not in head


def test_a_listener_seen_by_a_connection_gets_its_alpn():
    assert HTTPS.over_tls("h2") == Listener("https", "h2", True, "127.0.0.1:8443")
    assert PLAIN.over_tls(None) == Listener("https", None, True, "")
    assert PLAIN.scheme == "http" and PLAIN.alpn is None and not PLAIN.tls
