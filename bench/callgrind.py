"""User-space instructions per request of one proxy worker, Wharf's and nginx's, under callgrind.

Where the host has no hardware counters (a VM without a virtual PMU), `perf stat -e
instructions:u` cannot count; valgrind's callgrind counts every instruction a process runs in
user space, whatever else loads the machine. Set-up as bench/proxy.py's: one upstream nginx
(`return 200 "hello world\\n"`, on CPU 0, not under valgrind) and in front of it, one at a time:

- `wharf`: one Wharf proxy worker (`python -m wharf.proxy.worker SOCKET`) under callgrind,
  fed its snapshot (one route to the upstream, access log off, pool of 64) by this script
  over the snapshot socket, as the daemon would (valgrind cannot run the daemon: it lacks
  pidfd_open);
- `nginx`: nginx (`master_process on`, one worker, `keepalive 64`, HTTP/1.1 upstream) under
  callgrind (`--trace-children=yes`: the worker is a fork of the master), with
  `timer_resolution 100ms` (callgrind reads its commands only while the process runs, and
  Wharf's worker wakes every 100 ms for its clock);
- `wharf-tls`, `nginx-tls`: the same with TLS on the client side (bench/tls.py's ECDSA P-256
  certificate, TLS 1.2 and 1.3).

For each: a warm-up wrk run, `callgrind_control --zero WORKER`, `taskset -c 0 wrk -t1 -cC -dDs`,
`callgrind_control --dump WORKER`, and the dump's instruction total divided by the requests
wrk completed. Under valgrind a worker runs some 50 times slower, so each wake-up finds more
work waiting than at full speed (fewer loop turns per request): the figures are a floor, the
same kind of floor for both proxies.

Run: python bench/callgrind.py [--only wharf,nginx,wharf-tls,nginx-tls] [--duration 10]
     [--connections 10] [--handshakes] [--keep DIR] [--nginx-tickets N]
Prints instructions per request per proxy and Wharf's divided by nginx's; every process it
starts is stopped by pid. `--handshakes`: the TLS proxies only, each request on a new
connection with a full handshake (bench/tls.py's `openssl s_time -new` clients) instead of
wrk's keep-alive; `--keep DIR`: the dumps, for `callgrind_annotate DIR/wharf.callgrind`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tls
from common import (
    ROOT,
    BenchError,
    become_subreaper,
    children_of,
    format_table,
    free_port,
    kill,
    wait_gone,
    wait_serving,
)
from proxy import BODY, POOL, Nginx, NginxProxy, parse_wrk, upstream_http, wrk

sys.path.insert(0, str(ROOT))
from wharf.registry.frames import frame
from wharf.registry.snapshot import Backend, Certificate, Route, Service, Settings, Snapshot, Tls

TOOLS = ("wharf", "nginx", "wharf-tls", "nginx-tls")
START_TIMEOUT = 120.0  # Python's start-up under callgrind takes tens of seconds
TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def valgrind(out: Path, *children: str) -> list[str]:
    """The callgrind prefix; dumps go to `out`.PID(.N)."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
            *children, f"--log-file={out}.log.%p"]


class SnapshotServer:
    """The daemon's side of the snapshot socket: sends one snapshot, reads the reports."""

    def __init__(self, path: Path, snapshot: Snapshot) -> None:
        self.path = path
        self.snapshot = snapshot
        self.loop = asyncio.new_event_loop()

    def start(self) -> None:
        async def serve() -> None:
            async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(frame(self.snapshot.to_json()))
                while await reader.read(65536):
                    pass
            await asyncio.start_unix_server(client, str(self.path))
        self.loop.run_until_complete(serve())
        import threading
        threading.Thread(target=self.loop.run_forever, daemon=True).start()


def wharf_snapshot(port: int, upstream: int, tls_on: bool) -> Snapshot:
    """One route to the upstream, as bench/proxy.py's wharf.toml makes it."""
    listen, listen_tls = ((), (("127.0.0.1", port),)) if tls_on else ((("127.0.0.1", port),), ())
    certs = ()
    if tls_on:
        c = tls.certs()
        certs = (Certificate((tls.NAME, "127.0.0.1"), c.cert.read_text(), c.key.read_text()),)
    return Snapshot(version=1, listen=listen, listen_tls=listen_tls,
                    settings=Settings(access_log="off", pool_max_idle=POOL),
                    routes=(Route(path="/", service="app"),),
                    services=(Service("app", (Backend("127.0.0.1", upstream),)),),
                    tls=Tls(certificates=certs))


def worker_of(master: int, marker: str, timeout: float) -> int:
    """The child of `master` whose command line has `marker` (valgrind keeps the name)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children_of(master):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    return pid
        time.sleep(0.2)
    raise BenchError(f"no worker of {master} found")


def count(pid: int, out: Path, port: int, args: argparse.Namespace, scheme: str) -> dict:
    """Zero the worker's counts, run wrk, dump them: instructions per request."""
    wrk(port, 2, args.connections, 0, scheme=scheme)  # warm-up
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True,
                   timeout=60)
    if args.handshakes:  # a new TLS connection per request, as bench/tls.py's handshake rounds
        connections, seconds = tls.s_time(port, args.duration, 0)
        found = {"requests": connections, "req_per_s": connections / seconds,
                 "non_2xx_3xx": 0}
    else:
        found = parse_wrk(wrk(port, args.duration, args.connections, 0, scheme=scheme))
    before = set(out.parent.glob(f"{out.name}.{pid}*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True,
                   timeout=60)
    deadline = time.monotonic() + 60
    while not (new := set(out.parent.glob(f"{out.name}.{pid}*")) - before):
        if time.monotonic() > deadline:
            raise BenchError("callgrind wrote no dump")
        time.sleep(0.2)
    time.sleep(1)  # the dump is written whole before the next poll
    dump = max(new, key=lambda p: p.stat().st_mtime)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(dump, args.keep / f"{re.split(r'[-.]', out.name)[0]}.callgrind")
    text = dump.read_text(errors="replace")
    match = TOTALS.search(text)
    if match is None:
        raise BenchError("no totals in the callgrind dump")
    return {"requests": found["requests"], "req_per_s": found["req_per_s"],
            "non_2xx_3xx": found["non_2xx_3xx"],
            "instructions_per_request": int(match[1]) / found["requests"]}


def run_wharf(workdir: Path, upstream: int, args: argparse.Namespace, tls_on: bool) -> dict:
    port = free_port()
    sock = workdir / f"snap-{port}.sock"
    SnapshotServer(sock, wharf_snapshot(port, upstream, tls_on)).start()
    out = workdir / f"wharf-{port}.cg"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(["taskset", "-c", "1", *valgrind(out), sys.executable, "-m",
                             "wharf.proxy.worker", str(sock)], env=env, cwd=workdir,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_serving(port, "wharf under callgrind", BODY, START_TIMEOUT, None,
                     tls=tls.certs().client if tls_on else None)
        return count(proc.pid, out, port, args, "https" if tls_on else "http")
    finally:
        proc.send_signal(signal.SIGTERM)
        if not wait_gone(proc.pid, 60):
            kill(proc.pid)
        proc.wait()


def run_nginx(workdir: Path, upstream: int, args: argparse.Namespace, tls_on: bool) -> dict:
    port = free_port()
    kind = tls.TlsNginx if tls_on else NginxProxy
    proxy = kind(workdir / f"nginx-{port}", port, upstream, 100)
    nginx = proxy.nginx
    (nginx.workdir / "tmp").mkdir(parents=True, exist_ok=True)
    nginx.workdir.chmod(0o755)
    from proxy import nginx_conf
    # A worker blocked in epoll_wait never reads callgrind_control's commands: a 100 ms timer
    # wakes it as Wharf's clock tick wakes its worker.
    # And the worker runs as root, as Wharf's here: callgrind_control (vgdb) cannot reach a
    # process of another user.
    nginx.conf.write_text("timer_resolution 100ms;\nuser root;\n" +
                          nginx_conf(nginx.workdir, nginx.connections, proxy.http(), 1))
    out = nginx.workdir / "nginx.cg"
    proc = subprocess.Popen(["taskset", "-c", "1", *valgrind(out, "--trace-children=yes"),
                             "nginx", "-p", str(nginx.workdir), "-c", str(nginx.conf), "-e",
                             str(nginx.log)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(port, "nginx under callgrind", BODY, START_TIMEOUT, nginx.log,
                     tls=tls.certs().client if tls_on else None)
        worker = next(iter(children_of(proc.pid)))
        return count(worker, out, port, args, "https" if tls_on else "http")
    finally:
        proc.send_signal(signal.SIGTERM)
        for pid in [proc.pid, *children_of(proc.pid)]:
            if not wait_gone(pid, 60):
                kill(pid)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(TOOLS))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--handshakes", action="store_true",
                        help="a full TLS handshake per request (the -tls proxies only)")
    parser.add_argument("--keep", type=Path, help="copy the callgrind dumps to this folder")
    parser.add_argument("--nginx-tickets", type=int,
                        help="session tickets nginx sends per full handshake (as bench/tls.py)")
    args = parser.parse_args()
    tls.NGINX_TICKETS = args.nginx_tickets
    tools = [t for t in args.only.split(",") if t]
    if args.handshakes:
        tools = [t for t in tools if t.endswith("-tls")]
    become_subreaper()
    workdir = Path(tempfile.mkdtemp(prefix="wcg-"))
    if any(t.endswith("-tls") for t in tools):
        tls.CERTS = tls.Certs(workdir / "certs")
    upstream_port = free_port()
    upstream = Nginx(workdir / "upstream", upstream_http(upstream_port), cpu=0)
    results: dict[str, dict] = {}
    try:
        upstream.start()
        wait_serving(upstream_port, "the upstream nginx", BODY, 20, upstream.log)
        for name in tools:
            print(f"[{name}] under callgrind", file=sys.stderr, flush=True)
            run = run_wharf if name.startswith("wharf") else run_nginx
            try:
                results[name] = run(workdir, upstream_port, args, name.endswith("-tls"))
            except (BenchError, subprocess.SubprocessError) as exc:
                results[name] = {"error": str(exc)}
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for name in tools:
        r = results[name]
        if "error" in r:
            rows.append([name, r["error"][:50], "", ""])
            continue
        other = results.get(name.replace("wharf", "nginx"), {}).get("instructions_per_request")
        ratio = f"x{r['instructions_per_request'] / other:.2f}" \
            if other and name.startswith("wharf") else ""
        rows.append([name, f"{r['requests']:,}", f"{r['instructions_per_request']:,.0f}", ratio])
    print(format_table(["proxy", "requests", "instructions:u/request", "÷ nginx"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
