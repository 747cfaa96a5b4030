"""Change-to-serving latency of the providers (issue 14): file, etcd, Docker; and a change at scale.

    .venv/bin/python bench/discovery.py              # 30 edits, about 10 s
    .venv/bin/python bench/discovery.py --edits 100
    .venv/bin/python bench/discovery.py --etcd       # 30 etcd puts (Debian's /usr/bin/etcd)
    .venv/bin/python bench/discovery.py --docker     # 30 container starts (podman, as the tests)
    .venv/bin/python bench/discovery.py --scale      # 1,000 services x 10, 20 changes, 30 s

It starts a Wharf daemon (this checkout's code) in a temp dir with `[providers.file]` and two
upstream servers, then edits `conf.d/ext.toml` `--edits` times, switching its one route's
server from one upstream to the other. Each sample is the time from the write (a plain
in-place `write_text`, as an editor without atomic saves does) until a GET through the proxy
is answered by the new upstream, polled every 2 ms on a kept-alive connection. What it
includes: inotify's event, watchfiles' grouping (10 ms of quiet), reading and checking the
file, the merge, the throttle (50 ms window, so edits closer than that wait for it: the
script waits 60 ms between edits to measure the single-edit case), the snapshot and its
application by the worker. Target: median < 100 ms (Traefik's default throttle alone is 2 s).

`--etcd` starts its own etcd in the temp dir (as the tests do) and a daemon with
`[providers.etcd]`, then puts `/wharf/routes/ext` `--edits` times the same way: each sample is
from the put (a POST to etcd's JSON gateway, as `etcdctl put` makes) until the new upstream
answers: etcd's commit, the watch event, checking the value, the merge, the throttle, the
snapshot and the worker.

`--docker` starts podman's Docker-compatible API service in the temp dir (as the tests do) and
a daemon with `[providers.docker]`, then starts `--edits` busybox httpd containers one after
the other, all labelled for one service and host (host networking, a free port each), and
removes each one's predecessor once it is measured. Each sample is from the container's start
(`State.StartedAt`, the engine's clock, which is this host's) until a GET through the proxy is
answered by the new container (its body is its name), polled every 2 ms from another thread:
the engine's event, inspecting the container, the labels' checks, the merge, the throttle, the
snapshot, the worker, and busybox httpd's own start in the container. A second figure starts
from the daemon's log line saying the container joined (the provider has read the event and
inspected the container): Wharf's part without the engine's. The `podman run` command itself
(~150 ms here: creating the container) comes before and is not counted.
`--scale`: a daemon with 1,000 services of 10 servers each, every service on its own route
(`host = "hN.test"`), spread over ten files of conf.d (100 services each). Service s0 is a
sticky (`balance = "cookie"`) one whose first server is an upstream; `--changes` times the
script switches that one server between two upstreams (one edit of one file) and waits until a
GET pinned to the new one by its cookie is answered by it. The daemon and its worker run with
WHARF_LOG_LEVEL=debug: the daemon logs each build's time, the worker each frame's kind (whole
or delta), size and apply time (decoding and `DataPlane.apply`); the script reads those logs
and prints the build time (first build, and per change), the frame sizes (whole vs delta), the
worker's apply time (whole vs delta, against the 5 ms target), the worker's and the daemon's
RSS, and the change-to-serving latency at that scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wharf.proxy.balancers import backend_id  # noqa: E402
from wharf.registry.snapshot import Backend  # noqa: E402
from wharf.testing.upstream import ScriptedUpstream  # noqa: E402

SERVICES, BACKENDS, FILES = 1000, 10, 10
BUILT = re.compile(r"built snapshot \d+ \((\d+) services.* in ([\d.]+) ms")
APPLIED = re.compile(r"serving snapshot \d+ \((whole|delta), (\d+) bytes.*applied in ([\d.]+) ms")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend(conn: http.client.HTTPConnection, path: str = "/ext",
            headers: dict[str, str] | None = None) -> str | None:
    conn.request("GET", path, headers=headers or {"Host": "bench"})
    answer = conn.getresponse()
    answer.read()
    return answer.getheader("X-Backend")


def wait_for(conn_port: int, name: str, deadline: float, path: str = "/ext",
             headers: dict[str, str] | None = None) -> http.client.HTTPConnection:
    """Poll until `name` answers; the connection used (kept alive)."""
    conn = http.client.HTTPConnection("127.0.0.1", conn_port, timeout=2)
    while time.monotonic() < deadline:
        try:
            if backend(conn, path, headers) == name:
                return conn
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", conn_port, timeout=2)
        time.sleep(0.002)
    raise SystemExit(f"discovery: {name} never answered")


@contextlib.contextmanager
def daemon(root: Path, extra_env: dict[str, str] | None = None
           ) -> Iterator[subprocess.Popen[bytes]]:
    """Run `wharf up` on `root/wharf.toml` (this checkout's code) until the block ends."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    log = (root / "daemon.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "wharf", "up", "-c",
                             str(root / "wharf.toml")], stdout=log, stderr=log, env=env)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def switches(port: int, ups: list[ScriptedUpstream], change: Callable[[int], None],
             count: int) -> list[float]:
    """`change(0)`, then `count` times `change(i)`: the ms from each until upstream i % 2
    answers."""
    change(0)
    conn = wait_for(port, ups[0].name, time.monotonic() + 30)
    samples = []
    for i in range(1, count + 1):
        time.sleep(0.06)  # past the throttle window: one change, not a burst
        start = time.monotonic()
        change(i)
        conn = wait_for(port, ups[i % 2].name, start + 10)
        samples.append((time.monotonic() - start) * 1000)
    conn.close()
    return samples


def report(what: str, samples: list[float]) -> str:
    """The median, p99, min and max of `samples` (ms), in a line."""
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return (f"{what}, change-to-serving over {len(samples)} changes: "
            f"median {statistics.median(samples):.1f} ms, p99 {p99:.1f} ms, "
            f"min {samples[0]:.1f} ms, max {samples[-1]:.1f} ms (target: median < 100 ms)")


def file_latency(edits: int) -> str:
    """The file provider: `edits` in-place writes of conf.d/ext.toml."""
    ups = [ScriptedUpstream("one"), ScriptedUpstream("two")]
    port = free_port()
    try:
        with tempfile.TemporaryDirectory(prefix="wharf-discovery-") as tmp:
            root = Path(tmp)
            (root / "conf.d").mkdir()
            (root / "wharf.toml").write_text(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n'
                                             '[providers.file]\ndirectory = "conf.d"\n')
            ext = root / "conf.d" / "ext.toml"

            def write(i: int) -> None:
                server = f"127.0.0.1:{ups[i % 2].port}"
                ext.write_text(f'[[routes]]\npath = "/ext"\nservers = ["{server}"]\n')

            with daemon(root):
                samples = switches(port, ups, write, edits)
    finally:
        for up in ups:
            up.close()
    return report("file provider", samples)


def etcd_latency(puts: int) -> str:
    """The etcd provider: `puts` puts of /wharf/routes/ext into an etcd of its own."""
    import base64

    from tests.integration.etcd_server import run_etcd  # the etcd the tests start

    ups = [ScriptedUpstream("one"), ScriptedUpstream("two")]
    port = free_port()
    try:
        with tempfile.TemporaryDirectory(prefix="wharf-discovery-etcd-") as tmp:
            root = Path(tmp)
            with run_etcd(root / "etcd") as etcd:
                (root / "wharf.toml").write_text(
                    f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n'
                    f'[providers.etcd]\nendpoints = ["{etcd.url}"]\n')

                def put(i: int) -> None:
                    value = json.dumps({"path": "/ext",
                                        "servers": [f"127.0.0.1:{ups[i % 2].port}"]})
                    body = json.dumps({"key": base64.b64encode(b"/wharf/routes/ext").decode(),
                                       "value": base64.b64encode(value.encode()).decode()})
                    with urllib.request.urlopen(f"{etcd.url}/v3/kv/put", body.encode(),
                                                timeout=5) as answer:
                        answer.read()

                with daemon(root):
                    samples = switches(port, ups, put, puts)
    finally:
        for up in ups:
            up.close()
    return report("etcd provider", samples)


def _started_at(podman: Any, name: str) -> float:
    """A container's start, in seconds since the epoch, from the engine's inspect answer."""
    import datetime

    from wharf.clients.http import Endpoint, request_json

    _, data = asyncio.run(request_json(Endpoint.parse(podman.endpoint), "GET",
                                       f"/containers/{name}/json"))
    whole, _, fraction = data["State"]["StartedAt"].rstrip("Z").partition(".")
    start = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    return start.replace(tzinfo=datetime.UTC).timestamp() + float(f"0.{fraction or 0}")


def _joined_at(log: Path, name: str, deadline: float) -> float:
    """When the daemon logged that `name` joined (its provider had it: event read, container
    inspected), in seconds since the epoch."""
    mark = f" wharf: docker: container {name} joined".encode()
    while time.monotonic() < deadline:
        for line in log.read_bytes().splitlines():
            if line.endswith(mark):
                stamp, _, millis = line[:23].decode().partition(".")
                return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
        time.sleep(0.01)
    raise SystemExit(f"discovery: the daemon never logged that {name} joined")


def _served_by(port: int, host: str, name: str, deadline: float, served: list[float]) -> None:
    """Poll GET / until `name` answers it; append the wall-clock time it did."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    while time.monotonic() < deadline:
        try:
            conn.request("GET", "/", headers={"Host": host})
            answer = conn.getresponse()
            if answer.read().strip() == name.encode():
                served.append(time.time())
                break
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        time.sleep(0.002)
    conn.close()


def docker_latency(starts: int) -> str:
    """The Docker provider: `starts` containers started, each timed until it serves."""
    import threading

    from tests.integration.podman import Podman  # the engine the tests start

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wharf-discovery-docker-") as tmp:
        root = Path(tmp)
        (root / "podman").mkdir()
        podman = Podman(root / "podman")
        try:
            podman.prepare()
            podman.start_service()
            (root / "wharf.toml").write_text(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n'
                                             f'[providers.docker]\nendpoint = '
                                             f'"{podman.endpoint}"\n')
            labels = {"wharf.enable": "true", "wharf.port": "{port}",
                      "wharf.service": "bench", "wharf.host": "bench.test"}
            from_join: list[float] = []
            from_start: list[float] = []
            runs: list[float] = []
            previous = None
            with daemon(root):
                for i in range(starts + 1):  # the first one waits for the daemon: not counted
                    name, served = f"bench{i}", []
                    poller = threading.Thread(target=_served_by, args=(
                        port, "bench.test", name, time.monotonic() + 30, served))
                    poller.start()
                    ran = time.monotonic()
                    podman.run_httpd(labels=labels, name=name)
                    runs.append((time.monotonic() - ran) * 1000)
                    poller.join()
                    if not served:
                        raise SystemExit(f"discovery: {name} never answered")
                    if i:
                        joined = _joined_at(root / "daemon.log", name, time.monotonic() + 5)
                        from_join.append((served[0] - joined) * 1000)
                        from_start.append((served[0] - _started_at(podman, name)) * 1000)
                    if previous is not None:
                        podman.remove(previous)
                    previous = name
                    time.sleep(0.06)  # past the throttle window: one change, not a burst
        finally:
            podman.close()
    return "\n".join([
        report("docker provider, from a container's start (StartedAt)", from_start),
        report("docker provider, from the provider's having it (its log)", from_join),
        f"(`podman run` itself, before either: median {statistics.median(runs[1:]):.0f} ms)"])


def scale_file(index: int, live: str) -> str:
    """conf.d/NN.toml: services index*100 .. +99, each with 10 servers and its own route; the
    first server of s0 is `live`, every other one an address where nothing listens."""
    per = SERVICES // FILES
    parts = []
    for i in range(index * per, (index + 1) * per):
        servers = [f"127.{1 + i // 250}.{i % 250}.{j + 1}:9" for j in range(BACKENDS)]
        extra = ""
        if i == 0:
            servers[0], extra = live, 'balance = "cookie"\n'
        listed = ", ".join(f'"{s}"' for s in servers)
        parts.append(f'[services.s{i}]\nservers = [{listed}]\n{extra}'
                     f'[[routes]]\nhost = "h{i}.test"\nservice = "s{i}"\n')
    return "".join(parts)


def rss_mib(pid: int) -> tuple[float, float]:
    """RSS in MiB of the daemon `pid` and of its proxy worker."""
    import psutil

    main = psutil.Process(pid)
    worker = next(c for c in main.children(recursive=True)
                  if "wharf.proxy.worker" in " ".join(c.cmdline()))
    return main.memory_info().rss / 2**20, worker.memory_info().rss / 2**20


def scale(changes: int) -> str:
    """`changes` one-backend changes among 1,000 services x 10 backends (see the module's
    doc): the build, frame, apply and RSS figures, in lines."""
    ups = [ScriptedUpstream("A"), ScriptedUpstream("B")]
    port = free_port()

    def pinned(i: int) -> dict[str, str]:
        b = Backend("127.0.0.1", ups[i % 2].port)
        return {"Host": "h0.test", "Cookie": f"wharf_backend={backend_id(b)}"}

    try:
        with tempfile.TemporaryDirectory(prefix="wharf-discovery-scale-") as tmp:
            root = Path(tmp)
            confd = root / "conf.d"
            confd.mkdir()
            (root / "wharf.toml").write_text(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n'
                                             '[providers.file]\ndirectory = "conf.d"\n')
            for index in range(FILES):
                (confd / f"{index:02}.toml").write_text(scale_file(index, ups[0].address))
            with daemon(root, {"WHARF_LOG_LEVEL": "debug"}) as proc:
                conn = wait_for(port, "A", time.monotonic() + 60, "/", pinned(0))
                time.sleep(1)  # the first snapshots' garbage settles before RSS is read
                samples = []
                for i in range(1, changes + 1):
                    time.sleep(0.06)  # past the throttle window
                    start = time.monotonic()
                    (confd / "00.toml").write_text(scale_file(0, ups[i % 2].address))
                    conn = wait_for(port, ups[i % 2].name, start + 10, "/", pinned(i))
                    samples.append((time.monotonic() - start) * 1000)
                conn.close()
                time.sleep(0.5)  # the daemon writes the worker's output to its log file
                daemon_rss, worker_rss = rss_mib(proc.pid)
            daemon_log = (root / "daemon.log").read_text()
            worker_log = "".join(p.read_text() for p in root.glob(".wharf/**/wharf-proxy*.log"))
    finally:
        for up in ups:
            up.close()
    builds = [float(ms) for services, ms in BUILT.findall(daemon_log)
              if int(services) == SERVICES]
    applied = [(kind, int(size), float(ms)) for kind, size, ms in APPLIED.findall(worker_log)]
    whole = [a for a in applied if a[0] == "whole"]
    deltas = [a for a in applied if a[0] == "delta"]
    if not builds or not whole or not deltas:
        raise SystemExit("discovery: the debug log lines were not found")
    first, later = builds[0], builds[1:]
    return "\n".join([
        f"scale, {SERVICES} services x {BACKENDS} backends, {changes} one-backend changes:",
        f"  build: first {first:.1f} ms" + (f", per change median "
                                           f"{statistics.median(later):.1f} ms" if later else ""),
        f"  frame: whole {max(w[1] for w in whole) / 1024:.0f} KiB, delta median "
        f"{statistics.median(d[1] for d in deltas):.0f} bytes",
        f"  worker apply: whole {max(w[2] for w in whole):.1f} ms, delta median "
        f"{statistics.median(d[2] for d in deltas):.2f} ms, max "
        f"{max(d[2] for d in deltas):.2f} ms (target: < 5 ms)",
        f"  RSS: worker {worker_rss:.1f} MiB, daemon {daemon_rss:.1f} MiB",
        "  " + report("file edit", samples)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=30, help="changes to time")
    parser.add_argument("--etcd", action="store_true",
                        help="the etcd provider (an etcd of its own), not the file one")
    parser.add_argument("--docker", action="store_true",
                        help="the Docker provider (podman's API, as the tests run it)")
    parser.add_argument("--scale", action="store_true",
                        help="the cost of a one-backend change at 1,000 services x 10")
    parser.add_argument("--changes", type=int, default=20, help="--scale: changes to time")
    args = parser.parse_args()
    if args.scale:
        print(scale(args.changes))
    else:
        print(etcd_latency(args.edits) if args.etcd else docker_latency(args.edits)
              if args.docker else file_latency(args.edits))

if __name__ == "__main__":
    main()
