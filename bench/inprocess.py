"""The request path alone, in one process: one request and its response per iteration.

A `ClientConnection` and a pooled `UpstreamConnection`, each over a stub transport (writes
kept, nothing sent), on a DataPlane with one route to one backend; each iteration feeds the
client's request (wrk's: `GET / HTTP/1.1`, Host) to the client side, and the upstream nginx's
answer (Server, Date, Content-Type, Content-Length, Connection: keep-alive, 12 bytes) to the
upstream side, as the worker would after its two reads. No sockets, no event loop turns:
what this measures is the compiled request path, llhttp and the Python runtime, which is the
user-space time `perf` finds in the worker beside uvloop's and the kernel's.

`--tls`: the client side is a `tlsconn.TlsConnection` over a handshake done in memory with a
client `ssl.SSLObject`; each iteration the client encrypts the request, the server decrypts,
answers, and the client reads the answer back (the client's share is measured apart and
subtracted).

Run: python bench/inprocess.py [--tls] [--requests 200000] [--rounds 5]
Prints the best round's µs per request. Instructions per request, exact on a busy host:

    valgrind --tool=callgrind --toggle-collect='CPyPy_server___ClientConnection___data_received' \
        --toggle-collect='CPyPy_tlsconn___TlsConnection___data_received' \
        --toggle-collect='CPyPy_upstream___UpstreamConnection___data_received' \
        python bench/inprocess.py [--tls] --rounds 1 --requests 5000

and the dump's total divided by 5,000 (collection runs only inside the two data_received
calls; with --tls the client's calls in between are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wharf.proxy.plane import DataPlane
from wharf.proxy.server import ClientConnection
from wharf.proxy.upstream import UpstreamConnection
from wharf.registry.snapshot import Backend, Route, Service, Snapshot

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n"
            b"hello world\n")


class StubTransport:
    """What the connections call on a transport. The calls of every request (write,
    is_closing) are builtins, as uvloop's are C: an interpreted stub would add its own cost.
    Writes are kept in `chunks` (the loops clear it)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.write = self.chunks.append
        self.is_closing = bool  # bool() is False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("the loop closed a connection")

    def abort(self) -> None:
        raise AssertionError("the loop aborted a connection")


def plane_with_pool(loop: asyncio.AbstractEventLoop) -> tuple[DataPlane, UpstreamConnection,
                                                             StubTransport]:
    """One route to one backend, whose pool holds one connection over a stub transport."""
    plane = DataPlane(loop)
    plane.apply(Snapshot(version=1, routes=(Route(path="/", service="app"),),
                         services=(Service("app", (Backend("127.0.0.1", 9),)),)))
    pool = plane.pools[("127.0.0.1", 9)]
    up = UpstreamConnection(pool)
    up_transport = StubTransport()
    up.connection_made(up_transport)  # type: ignore[arg-type]
    pool.put(up, plane.now)
    return plane, up, up_transport


def plain_loop(plane: DataPlane, up: UpstreamConnection, count: int) -> float:
    """`count` requests through one client connection; seconds taken."""
    client = ClientConnection(plane)
    transport = StubTransport()
    client.connection_made(transport)  # type: ignore[arg-type]
    feed_client, feed_upstream = client.data_received, up.data_received
    chunks, clear = transport.chunks, transport.chunks.clear
    clear_upstream = cast(StubTransport, up.transport).chunks.clear
    start = time.perf_counter()
    for _ in range(count):
        feed_client(REQUEST)
        feed_upstream(RESPONSE)
        clear()
        clear_upstream()
    took = time.perf_counter() - start
    feed_client(REQUEST)
    feed_upstream(RESPONSE)
    if len(chunks) != 1 or not chunks[0].endswith(b"hello world\n"):
        raise SystemExit(f"unexpected answers: {chunks!r}")
    up_chunks = cast(StubTransport, up.transport).chunks
    if not up_chunks[-1].startswith(b"GET / HTTP/1.1\r\n"):
        raise SystemExit(f"unexpected request: {up_chunks[-1]!r}")
    up_chunks.clear()
    return took


class TlsPair:
    """A TlsConnection and an in-memory TLS client, handshaken."""

    def __init__(self, plane: DataPlane) -> None:
        from wharf.proxy.downstream import Listener
        from wharf.proxy.tlsconn import TlsConnection
        from wharf.testing.certs import TestCA
        ca = TestCA("inprocess CA")
        chain, key = ca.issue(["bench.test"])
        workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"wharf-inprocess-{os.getpid()}"
        workdir.mkdir(exist_ok=True)
        (workdir / "c.pem").write_text(chain)
        (workdir / "k.pem").write_text(key)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(workdir / "c.pem", workdir / "k.pem")
        for name in ("c.pem", "k.pem"):
            (workdir / name).unlink()
        workdir.rmdir()
        client_ctx = ssl.create_default_context(cadata=ca.cert_pem)
        client_ctx.check_hostname = False
        self.conn = TlsConnection(plane, Listener("https", None, True, "127.0.0.1:8443"),
                                  server_ctx)
        self.transport = StubTransport()
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = client_ctx.wrap_bio(self.incoming, self.outgoing)
        while True:
            try:
                self.client.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.pump()
        self.pump()

    def pump(self) -> None:
        """Client bytes to the server, and the server's last write back to the client."""
        data = self.outgoing.read()
        if data:
            self.conn.data_received(data)
        for chunk in self.transport.chunks:
            self.incoming.write(chunk)
        self.transport.chunks.clear()


def tls_loop(plane: DataPlane, up: UpstreamConnection, count: int,
             pair: TlsPair) -> tuple[float, float]:
    """`count` requests through one TLS connection; seconds taken, and the client's share."""
    client, outgoing, incoming = pair.client, pair.outgoing, pair.incoming
    transport, feed_server, feed_upstream = pair.transport, pair.conn.data_received, \
        up.data_received
    clear_upstream = cast(StubTransport, up.transport).chunks.clear
    client_time = 0.0
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        client.write(REQUEST)
        record = outgoing.read()
        t1 = time.perf_counter()
        feed_server(record)
        feed_upstream(RESPONSE)
        clear_upstream()
        t2 = time.perf_counter()
        for chunk in transport.chunks:
            incoming.write(chunk)
        transport.chunks.clear()
        answer = client.read(4096)
        client_time += time.perf_counter() - t2 + t1 - t0
    took = time.perf_counter() - start
    if not answer.endswith(b"hello world\n"):
        raise SystemExit(f"unexpected answer {answer!r}")
    return took, client_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import gc
    gc.freeze()
    gc.set_threshold(50_000)  # as the worker (wharf/proxy/worker.py)
    loop = asyncio.new_event_loop()
    plane, up, _ = plane_with_pool(loop)
    best = float("inf")
    pair = TlsPair(plane) if args.tls else None
    for _ in range(args.rounds):
        if pair is None:
            took = plain_loop(plane, up, args.requests)
        else:
            total, client = tls_loop(plane, up, args.requests, pair)
            took = total - client
        best = min(best, took)
    print(f"{'tls' if args.tls else 'plain'}: {best / args.requests * 1e6:.3f} µs per request "
          f"(best of {args.rounds} rounds of {args.requests})")
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
