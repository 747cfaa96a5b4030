"""Change-to-serving latency of the providers (issue 14): the file provider, for now.

    .venv/bin/python bench/discovery.py              # 30 edits, about 10 s
    .venv/bin/python bench/discovery.py --edits 100

It starts a Wharf daemon (this checkout's code) in a temp dir with `[providers.file]` and two
upstream servers, then edits `conf.d/ext.toml` `--edits` times, switching its one route's
server from one upstream to the other. Each sample is the time from the write (a plain
in-place `write_text`, as an editor without atomic saves does) until a GET through the proxy
is answered by the new upstream, polled every 2 ms on a kept-alive connection. What it
includes: inotify's event, watchfiles' grouping (10 ms of quiet), reading and checking the
file, the merge, the throttle (50 ms window, so edits closer than that wait for it: the
script waits 60 ms between edits to measure the single-edit case), the snapshot and its
application by the worker. Target: median < 100 ms (Traefik's default throttle alone is 2 s).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wharf.testing.upstream import ScriptedUpstream  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend(conn: http.client.HTTPConnection) -> str | None:
    conn.request("GET", "/ext", headers={"Host": "bench"})
    answer = conn.getresponse()
    answer.read()
    return answer.getheader("X-Backend")


def wait_for(conn_port: int, name: str, deadline: float) -> http.client.HTTPConnection:
    """Poll until `name` answers; the connection used (kept alive)."""
    conn = http.client.HTTPConnection("127.0.0.1", conn_port, timeout=2)
    while time.monotonic() < deadline:
        try:
            if backend(conn) == name:
                return conn
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", conn_port, timeout=2)
        time.sleep(0.002)
    raise SystemExit(f"discovery: {name} never answered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=30)
    args = parser.parse_args()
    ups = [ScriptedUpstream("one"), ScriptedUpstream("two")]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wharf-discovery-") as tmp:
        root = Path(tmp)
        (root / "conf.d").mkdir()
        (root / "wharf.toml").write_text(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n'
                                         '[providers.file]\ndirectory = "conf.d"\n')
        ext = root / "conf.d" / "ext.toml"

        def write(i: int) -> None:
            server = f"127.0.0.1:{ups[i % 2].port}"
            ext.write_text(f'[[routes]]\npath = "/ext"\nservers = ["{server}"]\n')

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = (root / "daemon.log").open("wb")
        daemon = subprocess.Popen([sys.executable, "-m", "wharf", "up", "-c",
                                   str(root / "wharf.toml")], stdout=log, stderr=log, env=env)
        try:
            write(0)
            conn = wait_for(port, "one", time.monotonic() + 30)
            samples = []
            for i in range(1, args.edits + 1):
                time.sleep(0.06)  # past the throttle window: one edit, not a burst
                start = time.monotonic()
                write(i)
                conn = wait_for(port, ups[i % 2].name, start + 10)
                samples.append((time.monotonic() - start) * 1000)
            conn.close()
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            log.close()
            for up in ups:
                up.close()
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"file provider, change-to-serving over {len(samples)} edits: "
          f"median {statistics.median(samples):.1f} ms, p99 {p99:.1f} ms, "
          f"min {samples[0]:.1f} ms, max {samples[-1]:.1f} ms (target: median < 100 ms)")


if __name__ == "__main__":
    main()
