"""The reverse proxy end to end: routes, forwarding, pooling, headers, errors, timeouts."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import Proxy, free_port, proxy_to_upstream
from tests.integration.proxyutil import exchange, get, parse_responses, probe, request
from wharf.testing.upstream import ScriptedUpstream

# -- routing ---------------------------------------------------------------------------------

def test_default_route(proxy: Proxy):
    r = get(proxy.port, "/anything")
    assert r.status == 200 and r.body == b"ok from A"


def test_exact_host_beats_the_catch_all(proxy: Proxy):
    assert get(proxy.port, "/x", host="api.test").body == b"ok from B"
    assert get(proxy.port, "/x", host="API.test:8080").body == b"ok from B"


def test_each_request_on_a_connection_routes_by_its_own_host(proxy: Proxy):
    """The routing name of a Host is kept per connection; a new Host must not reuse it."""
    data, closed = exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: api.test\r\n\r\n"
                                        b"GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n"
                                        b"GET /x HTTP/1.1\r\nHost: API.test:81\r\n"
                                        b"Connection: close\r\n\r\n")
    assert closed and [r.body for r in parse_responses(data)] == [
        b"ok from B", b"ok from A", b"ok from B"]


def test_wildcard_host(proxy: Proxy):
    assert get(proxy.port, "/x", host="a.b.wild.test").body == b"ok from B"
    assert get(proxy.port, "/x", host="wild.test").body == b"ok from A"


def test_longest_path_prefix_wins_by_whole_segments(proxy: Proxy):
    assert get(proxy.port, "/b/x").header("X-Resp") == "yes"
    assert get(proxy.port, "/bx").body == b"ok from A"


def test_method_condition(proxy: Proxy):
    post = request(proxy.port, b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                               b"Connection: close\r\n\r\nhi")
    assert post.body == b"ok from B"
    assert get(proxy.port, "/form").body == b"ok from A"


def test_header_condition(proxy: Proxy):
    assert get(proxy.port, "/versioned", headers="X-Version: 2\r\n").body == b"ok from B"
    assert get(proxy.port, "/versioned", headers="X-Version: 1\r\n").body == b"ok from A"


def test_proxy_workers_take_no_port_from_the_range(proxy: Proxy):
    workers = proxy.wharf.instances("wharf-proxy")
    assert workers and all(r["port"] == 0 for r in workers)


def test_app_route_balances_over_running_instances_and_strips_prefix(proxy: Proxy):
    bodies = {get(proxy.port, "/app/hello").body for _ in range(6)}
    ports = {r["port"] for r in proxy.wharf.status() if r["app"] == "web"}
    assert bodies == {f"instance={i} port={p} path=/hello\n".encode()
                      for i, p in enumerate(sorted(ports))}


def test_redirect(proxy: Proxy):
    r = get(proxy.port, "/old/page?q=1", host="site.test")
    assert r.status == 301 and r.header("Location") == "https://site.test/new/old/page"


def test_request_and_response_header_rules(proxy: Proxy):
    r = get(proxy.port, "/b/echo", headers="X-Remove-Me: 1\r\nX-Keep: 2\r\n")
    seen = json.loads(r.body)
    names = {n.lower() for n, _ in seen["headers"]}
    assert "x-remove-me" not in names and "x-keep" in names and ("X-Added", "1") in [
        tuple(h) for h in seen["headers"]]
    assert r.header("X-Resp") == "yes" and r.header("X-Backend") is None


# -- forwarding ------------------------------------------------------------------------------

def test_forwarded_headers_and_request_id(proxy: Proxy):
    r = get(proxy.port, "/echo-fwd", host="site.test:81",
            headers="X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\n")
    seen = proxy.seen(proxy.a, "/echo-fwd")[-1]
    assert seen.header_values("X-Forwarded-For") == ["127.0.0.1"]  # untrusted: replaced
    assert seen.header_values("X-Forwarded-Host") == ["site.test:81"]
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("Via") == "1.1 wharf"
    rid = seen.header("X-Request-ID")
    assert rid and len(rid) >= 16
    assert r.header("Via") == "1.1 wharf"
    get(proxy.port, "/echo-rid", headers="X-Request-ID: given-123\r\n")
    assert proxy.seen(proxy.a, "/echo-rid")[-1].header_values("X-Request-ID") == ["given-123"]
    log = proxy.wharf.root / ".wharf" / "logs" / "access.log"
    wait_until(lambda: log.exists() and "given-123" in log.read_text(), message="access log")
    line = next(json.loads(x) for x in log.read_text().splitlines() if "given-123" in x)
    assert line["status"] == 200 and line["target"] == "/echo-rid"


def test_hop_by_hop_headers_are_removed_both_ways(proxy: Proxy):
    r = get(proxy.port, "/echo-hop", headers="Connection: X-Secret, close\r\nX-Secret: 1\r\n"
                                              "Keep-Alive: 5\r\nTE: trailers\r\n"
                                              "Proxy-Connection: keep-alive\r\n")
    seen = proxy.seen(proxy.a, "/echo-hop")[-1]
    names = {n.lower() for n, _ in seen.headers}
    assert not names & {"x-secret", "keep-alive", "te", "proxy-connection"}
    assert seen.header("Connection") is None
    assert r.header("Keep-Alive") is None and r.header("X-Hop") is None


def test_keep_alive_reuses_the_upstream_connection(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        for _ in range(5):
            s.sendall(b"GET /echo-ka HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not parse_responses(data):
                data += s.recv(65536)
    conns = {r.connection for r in proxy.seen(proxy.a, "/echo-ka")}
    assert len(proxy.seen(proxy.a, "/echo-ka")) == 5
    assert len(conns) == 1


def _head_then_get(port: int, head: bytes, then: bytes) -> tuple[bytes, bytes]:
    """On one client connection: a HEAD (its answer read to the end of its head), then a GET;
    both answers as received."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n" % head)
        first = b""
        while b"\r\n\r\n" not in first:
            first += s.recv(65536)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % then)
        second = b""
        while not parse_responses(second):
            second += s.recv(65536)
    return first, second


def test_head_answers_have_no_body_and_keep_the_upstream_connection(proxy: Proxy):
    head, after = _head_then_get(proxy.port, b"/echo-ka-h1", b"/echo-ka-h2")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert b"\r\nContent-Length: " in head  # the length a GET would have had, as sent
    assert json.loads(parse_responses(after)[0].body)["target"] == "/echo-ka-h2"
    seen = proxy.seen(proxy.a, "/echo-ka-h")
    assert [r.method for r in seen] == ["HEAD", "GET"]
    assert seen[0].connection == seen[1].connection


def test_a_body_sent_with_a_head_answer_closes_that_upstream_connection(proxy: Proxy):
    """llhttp cannot be told that a HEAD's answer has no body: bytes after it must never be
    read as the next request's answer."""
    head, after = _head_then_get(proxy.port, b"/head-with-body", b"/echo-h3")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert json.loads(parse_responses(after)[0].body)["target"] == "/echo-h3"
    first = proxy.seen(proxy.a, "/head-with-body")[0]
    assert proxy.seen(proxy.a, "/echo-h3")[0].connection != first.connection


def test_a_request_pipelined_after_a_head_answered_with_a_body_gets_its_own_answer(
        proxy: Proxy):
    """The HEAD's connection must not be handed to the next request before the rest of the
    read that carried the HEAD's answer (here, a body it should not have) is parsed."""
    data, _ = exchange(proxy.port, b"HEAD /head-with-body-2 HTTP/1.1\r\nHost: t\r\n\r\n"
                                   b"POST /echo-after-head HTTP/1.1\r\nHost: t\r\n"
                                   b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert [r.status for r in parse_responses(rest)] == [200], data
    posted = proxy.seen(proxy.a, "/echo-after-head")
    assert len(posted) == 1
    assert posted[0].connection != proxy.seen(proxy.a, "/head-with-body-2")[0].connection


def test_pipelined_requests_are_answered_in_order(proxy: Proxy):
    data, closed = exchange(proxy.port, b"GET /echo-p1 HTTP/1.1\r\nHost: t\r\n\r\n"
                                        b"GET /b/echo-p2 HTTP/1.1\r\nHost: t\r\n\r\n"
                                        b"GET /echo-p3 HTTP/1.1\r\nHost: t\r\n"
                                        b"Connection: close\r\n\r\n")
    responses = parse_responses(data)
    assert closed and [json.loads(r.body)["target"] for r in responses] == [
        "/echo-p1", "/b/echo-p2", "/echo-p3"]


def test_http10_client(proxy: Proxy):
    data, closed = exchange(proxy.port, b"GET /chunked HTTP/1.0\r\nHost: t\r\n\r\n")
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower()
    assert body == b"hello chunked world"


def test_chunked_response_is_relayed(proxy: Proxy):
    r = get(proxy.port, "/chunked")
    assert r.body == b"hello chunked world" and r.header("Transfer-Encoding") == "chunked"


def test_chunked_request_body_is_streamed(proxy: Proxy):
    r = request(proxy.port, b"POST /echo-chunk HTTP/1.1\r\nHost: t\r\n"
                            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert json.loads(r.body)["body"] == "hello world"


def test_expect_100_continue(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"POST /echo-100 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"body")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert json.loads(parse_responses(data)[0].body)["body"] == "body"
    assert proxy.seen(proxy.a, "/echo-100")[-1].header("Expect") is None


def test_websocket_upgrade_is_tunnelled(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        assert b"upgrade: websocket" in head.lower()
        for word in (b"ping", b"pong"):
            s.sendall(word)
            assert s.recv(100) == b"echo:" + word


def test_large_response_streams(proxy: Proxy):
    size = 20 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % size)
        total = 0
        while chunk := s.recv(1 << 20):
            total += len(chunk)
    assert total > size


# -- errors and limits -----------------------------------------------------------------------

def test_no_route_is_404(tmp_path: Path):
    with proxy_to_upstream(tmp_path, route='host = "api.test"') as (_, upstream, port):
        assert get(port, "/no-route", host="api.test").status == 200
        r = get(port, "/no-route", host="other.test")
        assert r.status == 404 and b"404" in r.body
        assert [r.target for r in upstream.requests] == ["/no-route"]  # not the 404


def test_refused_backend_is_502(proxy: Proxy):
    r = get(proxy.port, "/dead")
    assert r.status == 502 and b"502 Bad Gateway" in r.body


def test_a_backend_answering_garbage_is_502(proxy: Proxy):
    r = get(proxy.port, "/garbage")
    assert r.status == 502 and b"502 Bad Gateway" in r.body


def test_a_backend_hanging_up_without_answering_is_502(proxy: Proxy):
    r = get(proxy.port, "/hangup")
    assert r.status == 502


def test_no_running_instance_is_503(proxy: Proxy):
    r = get(proxy.port, "/down")
    assert r.status == 503 and b"503 Service Unavailable" in r.body


def test_slow_backend_is_504(proxy: Proxy):
    r = get(proxy.port, "/slow/3")
    assert r.status == 504 and b"504 Gateway Timeout" in r.body


def test_body_over_max_body_size_is_413(proxy: Proxy):
    r = request(proxy.port, b"POST /echo-413 HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n"
                            b"\r\n")
    assert r.status == 413
    assert not proxy.seen(proxy.a, "/echo-413")


def test_chunked_body_over_max_body_size_is_413(proxy: Proxy):
    block = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(block), block) for _ in range(20))
    data, closed = exchange(proxy.port, b"POST /echo-413c HTTP/1.1\r\nHost: t\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    assert closed
    assert parse_responses(data)[0].status == 413


def test_a_pipelined_body_over_the_limit_is_answered_in_its_turn(tmp_path: Path):
    """The 413 of a request queued behind a slow one must not overtake the slow one's answer
    (the client would take it for the first answer)."""
    with proxy_to_upstream(tmp_path, 'max_body_size = "1000"') as (_, upstream, port):
        data, closed = exchange(port, b"GET /slow/0.3/first HTTP/1.1\r\nHost: t\r\n\r\n"
                                      b"POST /echo-big HTTP/1.1\r\nHost: t\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n"
                                      b"800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n")
    assert [r.status for r in parse_responses(data)] == [200, 413], data
    assert closed
    assert "/echo-big" not in [r.target for r in upstream.requests]


def test_headers_over_max_header_size_are_431(proxy: Proxy):
    big = b"X-Big: " + b"a" * 5000 + b"\r\n"
    r = request(proxy.port, b"GET /echo-431 HTTP/1.1\r\nHost: t\r\n" + big + b"\r\n")
    assert r.status == 431
    long_line = request(proxy.port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert long_line.status == 431
    assert not proxy.seen(proxy.a, "/echo-431")


def test_slowloris_is_closed_after_the_header_timeout(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET /echo-slow HTTP/1.1\r\nHost: t\r\n")
        started = time.monotonic()
        for _ in range(20):
            try:
                s.sendall(b"X-A: b\r\n")
            except OSError:
                break
            if not _still_open(s, 0.25):
                break
        assert not _still_open(s, 3)
        assert time.monotonic() - started < 9
    assert not proxy.seen(proxy.a, "/echo-slow")


def test_idle_keep_alive_connection_is_closed(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while not parse_responses(data):
            data += s.recv(4096)
        assert s.recv(10) == b""  # closed by the proxy after idle = 1s


def test_idle_keep_alive_connection_is_closed_after_a_local_answer(proxy: Proxy):
    """A redirect (or 404, or static file) is answered before the request's end is parsed;
    the idle deadline must still be armed after it."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET /old/x HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while not parse_responses(data):
            data += s.recv(4096)
        assert parse_responses(data)[0].status == 301
        assert s.recv(10) == b""  # closed by the proxy after idle = 1s


def test_a_response_that_ends_when_the_backend_closes_is_complete(proxy: Proxy):
    r = get(proxy.port, "/until-close")
    assert r.status == 200 and r.body == b"all of it, then EOF"


def test_a_stalled_upload_is_a_408_not_the_backend_s_fault(proxy: Proxy):
    data, closed = exchange(proxy.port, b"POST /stalled HTTP/1.1\r\nHost: t\r\n"
                                        b"Content-Length: 100\r\n\r\nonly ten b")
    assert closed and parse_responses(data)[0].status == 408
    assert not proxy.seen(proxy.a, "/stalled")  # held back: the backend saw nothing


def test_a_pipelined_request_s_late_body_is_read(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"POST /echo-pp1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                  b"POST /echo-pp2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  b"Connection: close\r\n\r\nwo")
        time.sleep(0.3)  # the second request waits its turn with reading paused
        s.sendall(b"rld")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert [json.loads(r.body)["body"] for r in parse_responses(data)] == ["hello", "world"]


def test_a_half_closed_client_gets_every_pipelined_answer(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET /echo-hc1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /echo-hc2 HTTP/1.1\r\nHost: t\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert [json.loads(r.body)["target"] for r in parse_responses(data)] == [
        "/echo-hc1", "/echo-hc2"]


def test_a_pipelined_head_that_began_mid_read_is_held_to_the_size_limit(proxy: Proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nX-Big: ")
        data = b""
        try:
            for _ in range(8):  # 8 KB of one header value; the limit is 4 KB
                s.sendall(b"v" * 1024)
                time.sleep(0.05)
        except OSError:
            pass  # closed after the 431: fine
        while chunk := s.recv(65536):
            data += chunk
    assert [r.status for r in parse_responses(data)] == [200, 431]


def _still_open(s: socket.socket, seconds: float) -> bool:
    s.settimeout(seconds)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except TimeoutError:
        return True
    except OSError:
        return False


def test_pooled_connection_closed_by_the_backend_is_not_used(tmp_path: Path):
    backend = ScriptedUpstream("C", idle_close=0.2)
    with proxy_to_upstream(tmp_path, upstream=backend) as (_, upstream, port):
        for _ in range(5):
            time.sleep(0.4)  # longer than the backend keeps an idle connection
            assert get(port, "/echo-after-idle").status == 200
        assert len({r.connection for r in upstream.requests}) >= 5


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _worker_pid(wharf: Wharf) -> int:
    return wharf.instances("wharf-proxy")[0]["pid"]


def test_a_slow_client_does_not_make_the_proxy_buffer_the_response(proxy: Proxy):
    pid = _worker_pid(proxy.wharf)
    before = peak = _rss(pid)
    size = 60_000_000
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /big/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % size)
        total = 0
        while chunk := s.recv(65536):
            total += len(chunk)
            if total % (4 << 20) < 65536:
                peak = max(peak, _rss(pid))
                time.sleep(0.01)  # a slow reader
    assert total > size
    assert peak - before < 16_000_000, f"the worker grew by {peak - before} bytes"


def test_a_large_upload_is_streamed_not_read_whole(tmp_path: Path):
    size = 40_000_000
    with proxy_to_upstream(tmp_path, 'max_body_size = "100MB"') as (wharf, upstream, port):
        pid = _worker_pid(wharf)
        before = peak = _rss(pid)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /sink-upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % size)
            block = b"u" * 1_000_000
            for _ in range(size // len(block)):
                s.sendall(block)
                peak = max(peak, _rss(pid))
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert parse_responses(data)[0].status == 200
        assert upstream.requests[-1].body_size == size
        assert peak - before < 16_000_000, f"the worker grew by {peak - before} bytes"


def test_trusted_proxies_keep_and_extend_forwarded_headers(tmp_path: Path):
    with proxy_to_upstream(tmp_path, 'trusted_proxies = ["127.0.0.0/8"]') as (_, upstream, port):
        get(port, "/echo-trusted", headers="X-Forwarded-For: 203.0.113.9\r\n"
                                           "X-Forwarded-For: 198.51.100.2\r\n"
                                           "X-Forwarded-Proto: https\r\n"
                                           "X-Forwarded-Host: public.example\r\n")
        seen = [r for r in upstream.requests if r.target == "/echo-trusted"][-1]
        assert seen.header_values("X-Forwarded-For") == ["203.0.113.9, 198.51.100.2, 127.0.0.1"]
        assert seen.header_values("X-Forwarded-Proto") == ["https"]
        assert seen.header_values("X-Forwarded-Host") == ["public.example"]


@pytest.mark.parametrize(("routes", "problem"), [
    ('[[routes]]\napp = "nope"\n', "routes[0].app: no app named 'nope'"),
    ('[[routes]]\nstatic = "missing-dir"\n', "routes[0].static: is not a readable directory"),
    ('[[routes]]\npath = "/x"\n', "routes[0]: needs exactly one of service, app, servers, static"),
    ('[[routes]]\nservers = ["nowhere"]\n', "routes[0].servers[0]: must be an address"),
])
def test_route_errors_exit_2_before_anything_starts(tmp_path: Path, routes: str, problem: str):
    wharf = Wharf(tmp_path)
    wharf.write_config('[apps.web]\ncommand = "sleep 1000"\n' + routes)
    result = wharf.run("up")
    assert result.returncode == 2 and problem in result.stderr
    assert not (tmp_path / ".wharf").exists()


def test_a_listen_port_in_use_is_a_config_error(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        wharf = Wharf(tmp_path)
        wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n')
        result = wharf.run("up")
    assert result.returncode == 2
    assert f"proxy.listen[0]: 127.0.0.1:{port} is already in use" in result.stderr
    assert not (tmp_path / ".wharf").exists()


def test_a_reload_to_a_listen_port_in_use_changes_nothing(tmp_path: Path):
    with proxy_to_upstream(tmp_path) as (wharf, _, port), socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        worker = _worker_pid(wharf)
        text = wharf.config.read_text()
        wharf.config.write_text(text.replace(f'"127.0.0.1:{port}"',
                                             f'"127.0.0.1:{port}", "127.0.0.1:{busy}"'))
        result = wharf.run("reload")
        assert result.returncode == 2
        assert f"proxy.listen[1]: 127.0.0.1:{busy} is already in use" in result.stderr
        assert get(port, "/").status == 200 and _worker_pid(wharf) == worker


def test_several_workers_share_the_port_and_log_combined(tmp_path: Path):
    settings = 'workers = 2\naccess_log = "combined"'
    with proxy_to_upstream(tmp_path, settings) as (wharf, upstream, port):
        wait_until(lambda: [r["state"] for r in wharf.instances("wharf-proxy")] == ["RUNNING"] * 2,
                   message="two workers")
        for i in range(40):
            assert get(port, f"/echo-w{i}", headers="User-Agent: probe\r\n").status == 200
        ids = {r.header("X-Request-ID") for r in upstream.requests if "/echo-w" in r.target}
        prefixes = {rid[:12] for rid in ids if rid}
        assert len(ids) == 40 and len(prefixes) == 2  # each worker has its own id prefix
        log = tmp_path / ".wharf" / "logs" / "access.log"
        wait_until(lambda: log.exists() and log.read_text().count("/echo-w") == 40,
                   message="40 access log lines")
        line = next(x for x in log.read_text().splitlines() if "/echo-w7 " in x)
        assert line.startswith("127.0.0.1 - - [")
        assert '"GET /echo-w7 HTTP/1.1" 200 ' in line and '"probe"' in line and "rid=" in line


def test_a_reload_opens_new_listeners_and_lets_removed_ones_drain(tmp_path: Path):
    new_port = free_port()
    with proxy_to_upstream(tmp_path) as (wharf, _, port):
        text = wharf.config.read_text()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
            kept.sendall(b"GET /echo-before HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not parse_responses(data):
                data += kept.recv(65536)
            wharf.config.write_text(text.replace(f'"127.0.0.1:{port}"',
                                                 f'"127.0.0.1:{new_port}"'))
            assert wharf.run("reload").returncode == 0
            wait_until(lambda: probe(new_port).startswith(b"HTTP/1.1 200"),
                       message="the new listener")
            wait_until(lambda: not probe(port), message="the old one to stop accepting")
            kept.sendall(b"GET /slow/0.3 HTTP/1.1\r\nHost: t\r\n\r\n")  # in flight, old port
            data = b""
            while not parse_responses(data):
                chunk = kept.recv(65536)
                assert chunk, "the open connection was cut"
                data += chunk
            assert parse_responses(data)[0].status == 200
