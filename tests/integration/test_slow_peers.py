"""Slow peers at the proxy: a client that does not read, a backend that reads late, a client
that sends ahead of a protocol switch, a client that leaves while its backend is being
connected. Every client here is a raw socket (with a small receive buffer where it must be
slow), every backend a raw socket server run in a thread of the test."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get, parse_responses, probe

BIG = 10_000_000
_SYN_SENT = "02"


class Peer:
    """One backend connection: reads request heads, writes answers (blocking)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def head(self) -> bytes | None:
        """The next request head, or None at EOF."""
        while b"\r\n\r\n" not in self.buffer:
            data = self.conn.recv(65536)
            if not data:
                return None
            self.buffer += data
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return head

    def skip_body(self, size: int) -> int:
        """Read `size` bytes of request body (or up to EOF); how many came."""
        got = min(size, len(self.buffer))
        self.buffer = self.buffer[got:]
        while got < size and (data := self.conn.recv(min(1 << 20, size - got))):
            got += len(data)
        return got


class OneAtATime:
    """A backend that serves one connection at a time: `serve(peer)` handles a connection
    (as many requests as it likes); the next is accepted only once it returns."""

    def __init__(self, serve: Callable[[Peer], None], rcvbuf: int = 0) -> None:
        self.serve = serve
        self.listener = socket.socket()
        if rcvbuf:  # inherited by accepted connections
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.targets: list[str] = []
        self.closing = False
        self.current: socket.socket | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.current = conn
            with contextlib.suppress(OSError), conn:
                self.serve(Peer(conn))
            self.current = None

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        if self.current is not None:
            with contextlib.suppress(OSError):
                self.current.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)


def target_of(head: bytes) -> str:
    return head.split(b" ", 2)[1].decode()


@contextlib.contextmanager
def proxy_to(root: Path, backend: OneAtATime, route: str = "", settings: str = ""
             ) -> Iterator[int]:
    """A daemon whose proxy sends everything to `backend`; yields the proxy's port."""
    wharf = Wharf(root)
    port = free_port()
    wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n{settings}\n'
                       f'[[routes]]\nservers = ["127.0.0.1:{backend.port}"]\n{route}\n')
    try:
        wharf.up()
        wait_until(lambda: probe(port), message="the proxy")
        yield port
    finally:
        wharf.close()
        backend.close()


def slow_reader(port: int, path: str) -> socket.socket:
    """A client with a 4 KiB receive buffer that asks for `path` and reads nothing yet."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return s


def big_answers(extra: bytes = b"") -> Callable[[Peer], None]:
    """Serve /big with BIG bytes (and `extra` header lines), anything else with "ok"."""

    def serve(peer: Peer) -> None:
        while (head := peer.head()) is not None:
            if target_of(head).startswith("/big"):
                peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n"
                                  % (BIG, extra) + b"x" * BIG)
            else:
                peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    return serve


def read_response(s: socket.socket, size: int = 0) -> bytes:
    """A response head, then `size` bytes of body."""
    s.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < size:
        more = s.recv(1 << 20)
        if not more:
            break
        data += more
    return data


# -- 8: a slow reader does not pin its backend ------------------------------------------------

ONE_CONN = 'max_conns = 1\nqueue_timeout = "1s"\n'


def test_a_client_that_does_not_read_lets_go_of_its_backend(tmp_path: Path):
    backend = OneAtATime(big_answers())
    with proxy_to(tmp_path, backend, ONE_CONN) as port:
        reader = slow_reader(port, "/big")
        with reader:
            second = get(port, "/second")
            assert second.status == 200 and second.body == b"ok"
            # and the buffered answer still reaches the slow reader whole
            data = read_response(reader, BIG)
            head, body = data.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200")
            assert len(body) == BIG and body.count(b"x") == BIG
            # and its connection serves the next request
            reader.sendall(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(reader, 2).endswith(b"\r\n\r\nok")


def response_files(wharf: Wharf) -> int:
    """How many response buffer temp files the proxy worker holds open."""
    pid = next(r["pid"] for r in wharf.status() if r["app"] == "wharf-proxy")
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += "wharf-response-" in os.readlink(fd)
    return count


def test_a_client_that_never_reads_is_cut_after_the_idle_timeout(tmp_path: Path):
    backend = OneAtATime(big_answers())
    settings = 'timeouts = { idle = "1s" }\n'
    with proxy_to(tmp_path, backend, settings=settings) as port, slow_reader(port, "/big"):
        wharf = Wharf(tmp_path)
        wait_until(lambda: response_files(wharf) == 1, message="the answer in a temp file")
        wait_until(lambda: response_files(wharf) == 0, message="the reader cut, its file freed")


def test_an_answer_buffered_only_in_memory_holds_its_backend(tmp_path: Path):
    backend = OneAtATime(big_answers())
    route = ONE_CONN + "max_temp_file_size = 0\n"
    with proxy_to(tmp_path, backend, route) as port, slow_reader(port, "/big"):
        assert get(port, "/second").status == 503  # waited for the backend, in vain


@pytest.mark.parametrize("how", ["route", "header"])
def test_without_buffering_a_slow_reader_holds_its_backend(tmp_path: Path, how: str):
    backend = OneAtATime(big_answers(b"X-Accel-Buffering: no\r\n" if how == "header" else b""))
    route = ONE_CONN + ("buffering = false\n" if how == "route" else "")
    with proxy_to(tmp_path, backend, route) as port, slow_reader(port, "/big") as reader:
        assert get(port, "/second").status == 503
        head = read_response(reader).split(b"\r\n\r\n")[0]
        assert b"x-accel-buffering" not in head.lower()  # as nginx, not passed on


def event_stream(events: list[threading.Event], extra: bytes) -> Callable[[Peer], None]:
    """Serve an SSE stream: event i is sent once events[i] is set."""

    def serve(peer: Peer) -> None:
        while (head := peer.head()) is not None:
            if not target_of(head).startswith("/events"):
                peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                continue
            peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n%s"
                              b"Transfer-Encoding: chunked\r\n\r\n" % extra)
            for i, event in enumerate(events):
                assert event.wait(10)
                data = b"data: event %d\n\n" % i
                peer.conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            peer.conn.sendall(b"0\r\n\r\n")

    return serve


@pytest.mark.parametrize("how", ["route", "header", "buffered"])
def test_an_event_stream_streams_event_by_event(tmp_path: Path, how: str):
    events = [threading.Event() for _ in range(3)]
    extra = b"X-Accel-Buffering: no\r\n" if how == "header" else b""
    backend = OneAtATime(event_stream(events, extra))
    with proxy_to(tmp_path, backend, "buffering = false\n" if how == "route" else "") as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            received = b""
            for i, event in enumerate(events):
                event.set()
                while b"event %d" % i not in received:
                    more = s.recv(65536)
                    assert more, received
                    received += more
            while more := s.recv(65536):
                received += more
        response = parse_responses(received)[0]
        assert response.body == b"".join(b"data: event %d\n\n" % i for i in range(3))
        assert response.header("X-Accel-Buffering") is None


# -- 9: a backend that reads an upload late is not a client's stall ----------------------------

def test_a_backend_that_reads_the_upload_late_gets_it_whole(tmp_path: Path):
    size = 32_000_000  # more than every socket buffer on the way holds

    def serve(peer: Peer) -> None:
        while (head := peer.head()) is not None:
            if not target_of(head).startswith("/upload"):
                peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                continue
            time.sleep(2.5)  # the backend is busy: longer than timeouts.header (and a sweep)
            got = peer.skip_body(size)
            peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d"
                              % (len(str(got)), got))

    backend = OneAtATime(serve, rcvbuf=4096)
    settings = 'timeouts = { header = "1s", upstream = "6s" }\nmax_body_size = "100MB"\n'
    with proxy_to(tmp_path, backend, settings=settings) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % size)
            with contextlib.suppress(OSError):  # a refused upload may be cut mid-send
                s.sendall(b"u" * size)
            received = b""
            while more := s.recv(65536):
                received += more
        response = parse_responses(received)[0]
        assert response.status == 200, received[:200]
        assert response.body == str(size).encode()


# -- 10: bytes sent ahead of a protocol switch are bounded -------------------------------------

def test_bytes_sent_ahead_of_a_protocol_switch_pause_the_client(tmp_path: Path):
    answer = threading.Event()
    relayed: list[int] = []

    def serve(peer: Peer) -> None:
        head = peer.head()
        if head is None:
            return
        if not target_of(head).startswith("/ws"):
            peer.conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        assert answer.wait(30)
        peer.conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\n\r\n")
        count = len(peer.buffer)
        while more := peer.conn.recv(1 << 20):
            count += len(more)
        relayed.append(count)

    total = 64_000_000
    backend = OneAtATime(serve)
    with proxy_to(tmp_path, backend) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            s.setblocking(False)
            sent, block = 0, b"w" * 65536
            while sent < total:
                try:
                    sent += s.send(block[:total - sent])
                except BlockingIOError:
                    if not select.select([], [s], [], 2)[1]:
                        break  # the proxy stopped reading: what this test wants
            assert sent < total, "the proxy took every byte sent ahead of the 101"
            answer.set()
            s.setblocking(True)
            rest = total - sent
            s.sendall(b"w" * rest)
            s.shutdown(socket.SHUT_WR)
            wait_until(lambda: relayed, timeout=30, message="the backend to see the EOF")
        assert relayed == [total]


# -- 11: a client that leaves while its backend is connected -----------------------------------

def syn_sent_to(port: int) -> int:
    """How many sockets on this machine are connecting to 127.0.0.1:`port`."""
    remote = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return sum(1 for line in f.read().splitlines()[1:]
                   if line.split()[2] == remote and line.split()[3] == _SYN_SENT)


def test_a_client_that_leaves_cancels_the_connect_in_progress(tmp_path: Path):
    # A backend whose accept queue is full: connects to it hang in SYN_SENT.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    try:
        while True:
            s = socket.socket()
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                break
            held.append(s)
        wait_until(lambda: syn_sent_to(port) == 0, message="the filler's SYN to go")
        wharf = Wharf(tmp_path)
        proxy_port = free_port()
        wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{proxy_port}"]\n'
                           'timeouts = { connect = "30s" }\n'
                           f'[[routes]]\nservers = ["127.0.0.1:{port}"]\nretries = 0\n')
        try:
            wharf.up()
            wait_until(lambda: probe(proxy_port, b"G@T / HTTP/1.1\r\n\r\n"), message="the proxy")
            with socket.create_connection(("127.0.0.1", proxy_port)) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                wait_until(lambda: syn_sent_to(port) == 1, message="the proxy to connect")
                # gone for sure (a reset; a FIN could be a half-close awaiting its answer)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            wait_until(lambda: syn_sent_to(port) == 0, timeout=5,
                       message="the proxy to give up the connect of a client gone")
        finally:
            wharf.close()
    finally:
        for s in held:
            s.close()
        listener.close()
