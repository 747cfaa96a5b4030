"""Unix sockets both ways: routes to servers on Unix sockets, and apps that Wharf hands a Unix
socket it binds (the classic gunicorn-on-a-socket stack), with health, status and restarts."""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get, probe, request
from tests.integration.test_balancing import _more_traffic, under_load
from wharf.addresses import bind_unix, remove_unix, unix_bind_problem
from wharf.testing.upstream import ScriptedUpstream

GUNICORN = str(Path(sys.executable).parent / "gunicorn")  # a dev dependency
WSGI_APP = '''
import os
def app(environ, start_response):
    body = f"pid={os.getpid()} instance={os.environ['WHARF_INSTANCE']}\\n".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: pytest's tmp_path can be too long for sun_path."""
    path = Path(tempfile.mkdtemp(prefix="wu-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _curl(*args: str) -> str:
    done = subprocess.run(["curl", "-sS", "--max-time", "5", *args], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- routes to servers on Unix sockets -----------------------------------------------------

@contextlib.contextmanager
def _proxy_to(root: Path, upstreams: list[ScriptedUpstream], route: str = "") -> Iterator[int]:
    port = free_port()
    wharf = Wharf(root)
    servers = ", ".join(f'"{u.address}"' for u in upstreams)
    wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n[[routes]]\n'
                       f'servers = [{servers}]\n{route}\n')
    try:
        wharf.up()
        wait_until(lambda: probe(port).startswith(b"HTTP/1.1 200"), message="the proxy")
        yield port
    finally:
        wharf.close()
        for u in upstreams:
            u.close()


def test_a_route_forwards_to_a_server_on_a_unix_socket_over_pooled_connections(
        short_dir: Path):
    upstream = ScriptedUpstream("U", path=str(short_dir / "up.sock"))
    with _proxy_to(short_dir, [upstream]) as port:
        answers = [get(port, "/echo", host="example.test") for _ in range(5)]
        assert [a.status for a in answers] == [200] * 5
        seen = upstream.requests[-1]
        assert seen.header("host") == "example.test"  # the client's, as over TCP
        assert upstream.connections == 1  # one keep-alive connection, reused
        assert request(port, b"GET /echo HTTP/1.0\r\n\r\n").status == 200
        assert upstream.requests[-1].header("host") == "localhost"  # as nginx sends there
        rows = [r for r in Wharf(short_dir).status_json() if r["kind"] == "backend"]
        assert [r["backend"] for r in rows] == [f"unix:{short_dir}/up.sock"]


def test_health_checks_take_a_dead_unix_backend_out(short_dir: Path):
    ups = [ScriptedUpstream(n, path=str(short_dir / f"{n}.sock")) for n in "AB"]
    health = 'health = { path = "/healthz", interval = "100ms", rise = 1, fall = 1 }'
    with _proxy_to(short_dir, ups, health) as port:
        wharf = Wharf(short_dir)
        wait_until(lambda: {r["health"] for r in wharf.backends()} == {"up"}, message="up")
        ups[1].close()  # dead: its socket file stays, nobody accepts
        wait_until(lambda: [(r["backend"], r["health"]) for r in wharf.backends()] == [
            (f"unix:{short_dir}/A.sock", "up"), (f"unix:{short_dir}/B.sock", "down")],
            message="B down")
        assert "connect" in wharf.backends()[1]["last_error"]
        assert {get(port, "/").header("X-Backend") for _ in range(10)} == {"A"}


# -- apps on a Unix socket that Wharf binds ------------------------------------------------

def _gunicorn_web(root: Path, proxy_port: int, extra: str = "") -> Wharf:
    (root / "app.py").write_text(WSGI_APP)
    wharf = Wharf(root)
    # --no-control-socket: gunicorn's default control socket is one path for every instance.
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{proxy_port}"]
        [apps.web]
        command = "{GUNICORN} --bind unix:{{socket}} --workers 2 --no-control-socket app:app"
        instances = 2
        socket = "unix:run/web.sock"
        startsecs = "0.3s"
        stop_timeout = "5s"
        {extra}
        [[routes]]
        app = "web"
    """)
    return wharf


def test_gunicorn_instances_share_a_unix_socket_behind_the_proxy_and_restart_losing_nothing(
        short_dir: Path):
    proxy_port = free_port()
    wharf = _gunicorn_web(short_dir, proxy_port)
    path = short_dir / "run" / "web.sock"
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660 and stat.S_ISSOCK(path.stat().st_mode)
        assert [i["listen"] for i in wharf.instances("web")] == [[f"unix:{path}"]] * 2
        assert [b["backend"] for b in wharf.backends()] == [f"unix:{path}"]
        pids = {i["pid"] for i in wharf.instances("web")}
        assert _curl(f"http://127.0.0.1:{proxy_port}/").startswith("pid=")
        assert _curl("--unix-socket", str(path), "http://localhost/").startswith("pid=")
        instances = {get(proxy_port, "/").body.split()[1] for _ in range(40)}
        assert instances == {b"instance=0", b"instance=1"}  # the kernel spreads them
        with under_load(proxy_port, post=False) as results:
            _more_traffic(results)
            restarted = wharf.run("restart", "web")
            assert restarted.returncode == 0, restarted.stderr
            _more_traffic(results)
        assert set(results) == {200}, Counter(results)
        assert not pids & {i["pid"] for i in wharf.instances("web")}
        assert path.exists()  # the socket outlives the instances: it is Wharf's
    finally:
        wharf.close()
    assert not path.exists()  # removed at shutdown


def test_a_stale_socket_file_is_replaced_and_a_live_one_refused(short_dir: Path):
    (short_dir / "run").mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(short_dir / "run" / "web.sock"))
    stale.close()  # as a server killed with SIGKILL leaves it
    proxy_port = free_port()
    wharf = _gunicorn_web(short_dir, proxy_port)
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        assert get(proxy_port, "/").status == 200
    finally:
        wharf.close()
    live = ScriptedUpstream(path=str(short_dir / "run" / "web.sock"))
    try:
        refused = wharf.run("up")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"apps.web.socket: {short_dir}/run/web.sock is in use: a process accepts " \
            "connections on it" in refused.stderr
    finally:
        live.close()


def test_socket_mode_and_group_are_set_on_the_socket_file(short_dir: Path):
    group = os.getgid()
    name = grp.getgrgid(group).gr_name
    path = str(short_dir / "deep" / "er" / "s.sock")
    sock, inode = bind_unix(path, 0o600, name, 8)
    try:
        info = os.stat(path)
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_gid == group
        assert oct(stat.S_IMODE(os.stat(short_dir / "deep").st_mode)) == "0o755"
    finally:
        sock.close()
    remove_unix(path, inode + 1)  # another socket's file now: left alone
    assert os.path.exists(path)
    remove_unix(path, inode)
    assert not os.path.exists(path)


def test_a_path_that_cannot_be_bound_says_why(short_dir: Path):
    (short_dir / "file").write_text("")
    assert unix_bind_problem(str(short_dir / "file")) == \
        "exists and is not a socket (only a stale socket is removed)"
    assert unix_bind_problem(str(short_dir / "file" / "s.sock")) == \
        f"cannot be created: {short_dir}/file is not a directory"
    assert unix_bind_problem(str(short_dir / "new" / "s.sock")) is None
