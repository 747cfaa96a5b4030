"""Benchmark Wharf's reverse proxy against nginx and HAProxy, on this machine, in one run.

One upstream serves every proxy: nginx with one worker, answering `GET /` with a fixed 12-byte
body ("hello world\\n") from a `return 200` (no disk, no access log, keep-alive with a high
keepalive_requests). In front of it, each proxy runs with ONE worker, keep-alive to the
upstream on (a pool of up to 64 idle connections), and no access log:

- Wharf: `[proxy] workers = 1`, run by its daemon (`wharf up -d`); its worker is the supervised
  `wharf-proxy` process (pid from `wharf status --json`). Pooling is Wharf's default
  (pool_max_idle = 64), the access log is off.
- nginx: `worker_processes 1`, an `upstream` block with `keepalive 64`, `proxy_http_version
  1.1` and `proxy_set_header Connection ""`.
- HAProxy: `nbthread 1`, `mode http`, `http-reuse always`, one process (`haproxy -db`).

Pinning (the machine needs CPUs 0 and 1): each proxy's serving process - Wharf's worker, nginx's
worker, HAProxy's process - has every thread pinned to CPU 1 with sched_setaffinity. The
upstream nginx (master and worker) and wrk run on CPU 0 (`taskset -c 0`). The control processes
(Wharf's daemon, nginx's master) are not pinned: they are idle while traffic flows (Wharf's
daemon CPU is measured and reported apart). The proxies compete with nothing on CPU 1;
the load generator and the upstream share CPU 0, so a proxy faster than them is capped by
CPU 0: the "CPU busy" row tells how close to saturated each proxy ran (100% = a full CPU).

Throughput, latency, CPU: all proxies run at once, each on its own port. Each gets a 2 s wrk
warm-up, then N rounds (default 3) alternate between them (wharf, nginx, haproxy, wharf, ...):
`taskset -c 0 wrk -t1 -c50 -d10s --latency http://127.0.0.1:PORT/`. From wrk's output: req/s,
p50 and p99 latency, non-2xx responses and socket errors. CPU per request: user + system time
(/proc/<pid>/stat utime + stime, clock ticks) of the proxy's processes - for Wharf the worker
only, for nginx master + worker, for HAProxy its process - read just before wrk starts and
just after it exits, divided by the requests wrk completed. Medians of the rounds are reported.

Memory per idle connection: from the bench process, 5,000 (`--idle`) keep-alive connections
are opened to the proxy, 50 at a time; on each, one full request (`GET / HTTP/1.1`) is sent
and its response read, then it stays open and idle. VmRSS of the proxy's serving process is
read before (after the throughput rounds, no clients) and 2 s after the last one is open,
well inside the 60 s idle timeout of every proxy (Wharf's default is 60 s; nginx's
keepalive_timeout and HAProxy's `timeout http-keep-alive` are set to 75 s). (after - before)
/ open connections = KiB per idle connection. The kernel's socket buffers are not in RSS, and
nginx preallocates its connection structures (worker_connections) at start, so they count in
"before", not in the difference.

Missing tools are installed with `apt-get install -y nginx haproxy wrk` (a policy-rc.d keeps
Debian from starting its own services; if they run anyway, that is noted, never touched).
Every process this script starts is stopped by pid (Wharf with `wharf down`) in finally
blocks, also on SIGTERM and when the time budget (345 s, installs included) runs out; the
script is a child subreaper and kills by pid whatever its daemons left behind.

Load-balancing strategies (`--strategies`, run instead of all of the above): four backends,
one nginx (one worker, on CPU 0 with wrk) listening on four ports, each answering `return 200
"port N\n"` and counting its requests in a buffered access log (one 2-byte line a request,
flushed within 100 ms). Wharf (one worker on CPU 1) has one route per strategy - round_robin,
weighted (weights 3,2,1,1), least_conn, ip_hash, hash (hash_key = "uri"), cookie, p2c, ewma -
each over the four backends and selected by its Host header (`round-robin.bench`, ...: an
exact-host lookup, the same cost for every route). nginx (one worker on CPU 1) has one upstream
block and server_name per strategy it has: plain round robin, `server ... weight=3` (3,2,1,1),
`least_conn;`, `ip_hash;`, each with `keepalive 64`. Per target, a sample of 40 sequential
requests (new connection each) shows which backends answer (hash: 20 URIs twice each, a URI
must keep its backend; cookie: the cookie of the first response must pin the next ones), then
a 1 s warm-up. Then N rounds (default 3) alternate over the targets (wharf round_robin, nginx
round_robin, wharf weighted, nginx weighted, ...): `taskset -c 0 wrk -t1 -c50 -d5s -H "Host:
..."`, with CPU per request measured as above and each backend's requests counted around the
run. wrk is one client asking for `/`, so ip_hash and hash send all of it to one backend
(expected, and said so); it sends no cookie, so cookie is round robin plus a Set-Cookie on
every response. Around each round, the CPU used by processes outside the bench is measured
(all tasks' time in /proc/stat minus the bench's processes, wrk and ksoftirqd); a round where
it exceeds 10% of a CPU is repeated once, time permitting. Reported, best round (highest req/s,
lowest CPU per request: a slower host only adds time) and median: req/s and CPU per request per
strategy, divided by Wharf's round_robin (target: every strategy >= 0.95x its req/s, judged on
the best rounds, the median verdict beside it), Wharf divided by nginx for the four matching
ones, and the share of requests each backend served. Budget 290 s, about 3.5 minutes with the
defaults. Results: bench/results/proxy-strategies.json.

Run: .venv/bin/python bench/proxy.py [--only wharf,nginx] [--duration 10] [--rounds 3]
     [--connections 50] [--skip-idle]
     .venv/bin/python bench/proxy.py --strategies [--only wharf] [--duration 5] [--rounds 3]
     .venv/bin/python bench/proxy.py --only wharf,wharf-metrics,nginx   # the cost of /metrics
Prints a table (medians per proxy, and Wharf's figure divided by nginx's and HAProxy's) and
the targets, and writes everything, each round included, to bench/results/proxy.json.
`wharf-metrics` is Wharf with `[admin]` on, so that its worker counts every request for
`/metrics` (target: req/s >= 0.97x and CPU per request <= 1.03x of `wharf` in the same run).
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
from pathlib import Path
from typing import Any

from common import (
    CLOCK_TICKS,
    RESULTS_DIR,
    ROOT,
    BenchError,
    alive,
    all_pids,
    apt_install,
    argv_of,
    become_subreaper,
    children_of,
    cpu_seconds,
    format_table,
    free_port,
    grep_log,
    kill,
    log_tail,
    machine_info,
    pin,
    raise_fd_limit,
    rss_kib,
    run,
    run_and_clean_up,
    selected_tools,
    trap_signals,
    wait_gone,
    wait_serving,
    wait_until,
    write_json,
)

RESULTS_FILE = RESULTS_DIR / "proxy.json"
STRATEGY_RESULTS_FILE = RESULTS_DIR / "proxy-strategies.json"
TOOLS = ("wharf", "nginx", "haproxy")
LOAD_CPU = 0  # upstream nginx and wrk
PROXY_CPU = 1  # each proxy's serving process
BODY = b"hello world\n"
WARMUP = 2  # seconds of wrk before the measured rounds, per proxy
IDLE_CONNECTIONS = 5000
IDLE_CONCURRENCY = 50  # connections being opened (and doing their first request) at once
IDLE_SETTLE = 2.0  # seconds between the last idle connection open and the RSS reading
IDLE_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
KEEPALIVE_TIMEOUT = "75s"  # nginx and HAProxy client side; Wharf's idle timeout is 60 s
POOL = 64  # idle upstream connections kept per proxy (Wharf's default pool_max_idle)
BUDGET = 345  # seconds for the whole run, installs included; then everything is stopped
START_TIMEOUT = 20.0


# -- small helpers ----------------------------------------------------------------------------

def taskset(cpu: int | None) -> list[str]:
    """The `taskset -c CPU` prefix, or nothing when pinning is off."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def stop_popen(proc: subprocess.Popen[bytes] | None, sig: int, others: list[int]) -> None:
    """Stop a process we spawned with `sig` (SIGKILL after 10 s), then any of `others` left."""
    if proc is not None:
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid in others:
        if alive(pid):
            kill(pid)
            wait_gone(pid, 5)


# -- nginx, as the upstream and as a proxy ----------------------------------------------------

def nginx_conf(workdir: Path, connections: int, http: str, workers: int = 1) -> str:
    """A self-contained nginx.conf: one worker, files in `workdir`, no access log."""
    w = workdir
    temps = "".join(f"    {kind}_temp_path {w}/tmp/{kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"daemon off;\nmaster_process on;\nworker_processes {workers};\n"
            f"worker_rlimit_nofile {connections * 2 + 1024};\n"
            f"pid {w}/nginx.pid;\nerror_log {w}/error.log warn;\n"
            f"events {{\n    worker_connections {connections};\n}}\n"
            f"http {{\n    access_log off;\n{temps}"
            f"    keepalive_timeout {KEEPALIVE_TIMEOUT};\n    keepalive_requests 1000000;\n"
            f"{http}}}\n")


class Nginx:
    """An nginx master (`daemon off`, a child of this script) with one worker."""

    def __init__(self, workdir: Path, http: str, connections: int = 4096,
                 cpu: int | None = None, workers: int = 1) -> None:
        self.workdir = workdir
        self.workers = workers
        self.http = http  # what goes inside `http {}`: upstreams and servers
        self.connections = connections
        self.cpu = cpu  # the whole server is started under taskset when set
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker: int | None = None
        self.conf = workdir / "nginx.conf"
        self.log = workdir / "error.log"

    def start(self) -> None:
        """Write the config, start nginx, wait for its worker process."""
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # the worker runs as nobody when we are root
        self.conf.write_text(nginx_conf(self.workdir, self.connections, self.http,
                                        self.workers))
        argv = [*taskset(self.cpu), "nginx", "-p", str(self.workdir), "-c", str(self.conf),
                "-e", str(self.log)]
        with (self.workdir / "stdout.log").open("wb") as out:
            proc = self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_until(lambda: self._find_worker() is not None or proc.poll() is not None,
                   START_TIMEOUT, "the nginx worker")
        if proc.poll() is not None:
            raise BenchError(f"nginx exited {proc.returncode}{log_tail(self.log)}")
        self.worker = self._find_worker()

    def _find_worker(self) -> int | None:
        assert self.proc is not None
        for pid in children_of(self.proc.pid):
            argv = argv_of(pid)
            if argv and argv[0].startswith("nginx: worker"):
                return pid
        return None

    def stop(self) -> None:
        """Fast shutdown (SIGTERM) of the master; SIGKILL by pid for anything left."""
        stop_popen(self.proc, signal.SIGTERM, [self.worker] if self.worker else [])

    def version(self) -> str:
        """nginx's version (`nginx -v` writes it to stderr)."""
        return run(["nginx", "-v"], check=False).stderr.strip().rsplit("/", 1)[-1]

    def problems(self) -> list[str]:
        """Warnings and errors from its error log."""
        return grep_log(self.log, re.compile(r"\[(warn|error|crit|alert|emerg)\]"))


def upstream_http(port: int, unix: Path | None = None) -> str:
    """The upstream's server: `return 200 "hello world\\n"` on 127.0.0.1:port (and on the
    Unix socket `unix`, if given: bench/unix.py)."""
    also = f"        listen unix:{unix};\n" if unix is not None else ""
    return (f"    server {{\n        listen 127.0.0.1:{port};\n{also}"
            f"        location / {{\n            default_type text/plain;\n"
            f"            return 200 \"hello world\\n\";\n        }}\n    }}\n")


# -- the proxies ------------------------------------------------------------------------------

class Proxy:
    """One reverse proxy with one worker, in front of the upstream, on its own port."""

    name = ""
    scheme = "http"  # what wrk speaks to it

    def __init__(self, workdir: Path, port: int, upstream: int, idle: int) -> None:
        self.workdir = workdir
        self.port = port
        self.upstream = upstream
        self.idle = idle  # idle client connections it must hold, besides the load

    def start(self) -> None:
        """Start it and wait until it serves the upstream's body."""
        raise NotImplementedError

    def upstream_address(self) -> str:
        """The upstream as its config names it (bench/unix.py: a Unix socket instead)."""
        return f"127.0.0.1:{self.upstream}"

    def wait_ready(self, what: str, log: Path | None) -> None:
        """Wait until it serves: by default, `GET /` answers the upstream's body."""
        wait_serving(self.port, what, BODY, START_TIMEOUT, log)

    def serving_pids(self) -> list[int]:
        """The process(es) that serve traffic: pinned, and measured for RSS."""
        raise NotImplementedError

    def cpu_pids(self) -> list[int]:
        """The processes whose CPU time is charged to the proxy."""
        return self.serving_pids()

    def side_pids(self) -> dict[str, int]:
        """Processes whose CPU time is reported apart (Wharf's daemon)."""
        return {}

    def check(self) -> None:
        """BenchError if the serving process changed (a crash and restart) since start."""

    def stop(self) -> None:
        """Stop every process it runs."""
        raise NotImplementedError

    def version(self) -> str:
        """Its version."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Errors and warnings it logged, restarts."""
        return []


class NginxProxy(Proxy):
    """nginx as a reverse proxy: upstream block with `keepalive 64`, HTTP/1.1 to it."""

    name = "nginx"

    def __init__(self, workdir: Path, port: int, upstream: int, idle: int) -> None:
        super().__init__(workdir, port, upstream, idle)
        self.nginx = Nginx(workdir, self.http(), connections=idle + 1024)

    def http(self) -> str:
        """An upstream block with a keep-alive pool, and the proxying server."""
        return (f"    upstream backend {{\n        server {self.upstream_address()};\n"
                f"        keepalive {POOL};\n        keepalive_requests 1000000;\n    }}\n"
                f"    server {{\n        listen 127.0.0.1:{self.port};\n"
                f"        location / {{\n            proxy_pass http://backend;\n"
                f"            proxy_http_version 1.1;\n"
                f"            proxy_set_header Connection \"\";\n        }}\n    }}\n")

    def start(self) -> None:
        self.nginx.start()
        self.wait_ready("nginx (proxy)", self.nginx.log)

    def serving_pids(self) -> list[int]:
        if self.nginx.worker is None:
            raise BenchError("nginx worker unknown")
        return [self.nginx.worker]

    def cpu_pids(self) -> list[int]:
        assert self.nginx.proc is not None
        return [self.nginx.proc.pid, *self.serving_pids()]

    def check(self) -> None:
        if self.nginx.worker is None or not alive(self.nginx.worker):
            raise BenchError(f"nginx worker {self.nginx.worker} is gone")

    def stop(self) -> None:
        self.nginx.stop()

    def version(self) -> str:
        return self.nginx.version()

    def problems(self) -> list[str]:
        return self.nginx.problems()


class HaproxyProxy(Proxy):
    """HAProxy, one process and one thread (`nbthread 1`), `http-reuse always`."""

    name = "haproxy"

    def __init__(self, workdir: Path, port: int, upstream: int, idle: int) -> None:
        super().__init__(workdir, port, upstream, idle)
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / "haproxy.cfg"
        self.log = workdir / "haproxy.log"

    def config(self) -> str:
        """haproxy.cfg: no `log` lines, so no access log."""
        maxconn = self.idle + 1024
        return (f"global\n    nbthread 1\n    maxconn {maxconn}\n\n"
                f"defaults\n    mode http\n    option http-keep-alive\n"
                f"    http-reuse always\n    maxconn {maxconn}\n"
                f"    timeout connect 5s\n    timeout client {KEEPALIVE_TIMEOUT}\n"
                f"    timeout server 60s\n    timeout http-request 10s\n"
                f"    timeout http-keep-alive {KEEPALIVE_TIMEOUT}\n\n"
                f"frontend bench\n    bind 127.0.0.1:{self.port}\n"
                f"    default_backend upstream\n\n"
                f"backend upstream\n    server up1 127.0.0.1:{self.upstream}\n")

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config())
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.workdir)
        self.wait_ready("haproxy", self.log)

    def serving_pids(self) -> list[int]:
        if self.proc is None:
            raise BenchError("haproxy not started")
        return [self.proc.pid]

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"haproxy exited{log_tail(self.log)}")

    def stop(self) -> None:
        stop_popen(self.proc, signal.SIGTERM, [])

    def version(self) -> str:
        return run(["haproxy", "-v"], check=False).stdout.split()[2]

    def problems(self) -> list[str]:
        return grep_log(self.log, re.compile(r"\[(WARNING|ALERT)\]"))


WHARF_TROUBLE = re.compile(r"error|exception|traceback|warning|critical|fatal|killed|exited"
                           r"|crash|backoff|refused|reset|timed? ?out", re.IGNORECASE)


def checkout_env() -> dict[str, str]:
    """The environment for Wharf's commands: this checkout's `wharf` first on the path of the
    daemon and its workers (they run elsewhere, where an installed or editable `wharf`, or a
    relative PYTHONPATH, would load other code)."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


class WharfProxy(Proxy):
    """Wharf's daemon (`wharf up -d`) running one proxy worker, the `wharf-proxy` app."""

    name = "wharf"
    workers = 1

    def __init__(self, workdir: Path, port: int, upstream: int, idle: int) -> None:
        super().__init__(workdir, port, upstream, idle)
        self.config = workdir / "wharf.toml"
        self.state = workdir / ".wharf"
        self.daemon: int | None = None
        self.worker: int | None = None
        self.restarts = 0

    def _wharf(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "wharf", "-c", str(self.config), *args],
                   env=checkout_env(), timeout=30, check=check)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"[daemon]\nstate_dir = {json.dumps(str(self.state))}\n\n"
            f"[proxy]\n{self.listen_toml()}\nworkers = {self.workers}\n"
            f"access_log = \"off\"\npool_max_idle = {POOL}\n\n{self.routes_toml()}"
            f"{self.extra_toml()}")
        run([sys.executable, "-m", "wharf", "up", "-d", "-c", str(self.config)],
            env=checkout_env(), timeout=30)
        pidfile = self.state / "wharf.pid"
        wait_until(pidfile.exists, 10, "wharf.pid")
        self.daemon = int(pidfile.read_text().strip())
        wait_until(lambda: self._row() is not None, START_TIMEOUT, "wharf-proxy RUNNING")
        row = self._row()
        assert row is not None
        self.worker, self.restarts = int(row["pid"]), int(row.get("restarts") or 0)
        self.wait_ready("wharf", self.state / "daemon.log")

    def extra_toml(self) -> str:
        """More tables for its wharf.toml (none here)."""
        return ""

    def listen_toml(self) -> str:
        """Where it listens, in `[proxy]`."""
        return f"listen = [\"127.0.0.1:{self.port}\"]"

    def routes_toml(self) -> str:
        """The `[[routes]]` of its wharf.toml: one route to the upstream."""
        return f"[[routes]]\npath = \"/\"\nservers = [\"{self.upstream_address()}\"]\n"

    def _row(self, running: bool = True) -> dict[str, Any] | None:
        """The wharf-proxy row of `wharf status --json` (when `running`, only if RUNNING)."""
        done = self._wharf("status", "--json", check=False)
        if done.returncode != 0:
            return None
        for row in json.loads(done.stdout):
            if row.get("app") == "wharf-proxy" and (
                    not running or (row.get("state") == "RUNNING" and row.get("pid"))):
                return dict(row)
        return None

    def serving_pids(self) -> list[int]:
        if self.worker is None:
            raise BenchError("wharf-proxy worker pid unknown")
        return [self.worker]

    def side_pids(self) -> dict[str, int]:
        return {"daemon": self.daemon} if self.daemon else {}

    def check(self) -> None:
        if self.worker is None or not alive(self.worker):
            row = self._row()
            now = f"now pid {row['pid']}, restarts {row.get('restarts')}" if row else \
                "none running now"
            raise BenchError(f"wharf-proxy worker {self.worker} is gone ({now})")

    def stop(self) -> None:
        with contextlib.suppress(BenchError):
            row = self._row(running=False)
            if row is not None:
                self.restarts = max(self.restarts, int(row.get("restarts") or 0))
        if self.daemon is not None and alive(self.daemon):
            self._wharf("down", check=False)
        for pid in (self.daemon, self.worker):
            if pid is not None and not wait_gone(pid, 15):
                print(f"warning: wharf pid {pid} still alive after `wharf down`; killing it",
                      file=sys.stderr)
                kill(pid)
                wait_gone(pid, 5)

    def version(self) -> str:
        return self._wharf("--version").stdout.split()[-1]

    def problems(self) -> list[str]:
        found = [f"wharf-proxy restarted {self.restarts} time(s)"] if self.restarts else []
        logs = sorted((self.state / "logs").glob("wharf-proxy.*.log"))
        for path in [*logs, self.state / "daemon.log"]:
            found += grep_log(path, WHARF_TROUBLE)
        return found


class WharfMetricsProxy(WharfProxy):
    """Wharf with `[admin]` on, so that its worker counts every request for `/metrics`."""

    name = "wharf-metrics"

    def __init__(self, workdir: Path, port: int, upstream: int, idle: int) -> None:
        super().__init__(workdir, port, upstream, idle)
        self.admin = free_port()
        self.metrics_problem = ""

    def extra_toml(self) -> str:
        return f"\n[admin]\nlisten = \"127.0.0.1:{self.admin}\"\n"

    def counted(self) -> float:
        """Requests `/metrics` says the worker answered."""
        page = urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=10)
        return sum(float(line.rsplit(" ", 1)[1]) for line in page.read().decode().splitlines()
                   if line.startswith("wharf_http_requests_total{"))

    def stop(self) -> None:
        try:  # read before the daemon goes: problems() is asked after the stop
            self.metrics_problem = "" if self.counted() > 0 else "/metrics counted no request"
        except OSError as exc:
            self.metrics_problem = f"/metrics: {exc}"
        super().stop()

    def problems(self) -> list[str]:
        found = super().problems()
        return [*found, self.metrics_problem] if self.metrics_problem else found


PROXIES: dict[str, type[Proxy]] = {"wharf": WharfProxy, "nginx": NginxProxy,
                                   "haproxy": HaproxyProxy, "wharf-metrics": WharfMetricsProxy}


# -- throughput, latency, CPU -----------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    """A wrk duration ("812.00us", "1.20ms", "2.01s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * UNITS[match[2]]


def parse_wrk(out: str) -> dict[str, Any]:
    """req/s, p50, p99, requests, non-2xx/3xx responses and socket errors from wrk's output."""
    found: dict[str, Any] = {"non_2xx_3xx": 0, "socket_errors": {}}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("50%", "99%"):
            found[f"p{words[0][:-1]}_ms"] = to_ms(words[1])
        elif len(words) >= 3 and words[1:3] == ["requests", "in"]:
            found["requests"] = int(words[0])
        elif line.startswith("Requests/sec:"):
            found["req_per_s"] = float(words[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            found["non_2xx_3xx"] = int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            found["socket_errors"] = {k: int(v) for k, v in
                                      re.findall(r"(\w+) (\d+)", line.split(":", 1)[1])}
    missing = [k for k in ("p50_ms", "p99_ms", "requests", "req_per_s") if k not in found]
    if missing:
        raise BenchError(f"wrk output lacks {', '.join(missing)}: {out.strip()[-300:]}")
    return found


def wrk(port: int, seconds: int, connections: int, cpu: int | None,
        host: str | None = None, scheme: str = "http") -> str:
    """Run wrk (one thread) against 127.0.0.1:port (with `Host: host` if given); its output."""
    argv = [*taskset(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            *(["-H", f"Host: {host}"] if host else []), f"{scheme}://127.0.0.1:{port}/"]
    return run(argv, timeout=seconds + 30).stdout


def cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU, from /proc/stat: (busy ticks, total ticks) since boot; steal counts as busy."""
    found = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
                busy = user + nice + system + irq + softirq + steal
                found[int(name[3:])] = (busy, busy + idle + iowait)
    return found


def cpu_busy_pct(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]],
                 cpu: int | None) -> float | None:
    """How busy one CPU was, all tasks together, between two cpu_ticks() readings."""
    if cpu is None or cpu not in before or cpu not in after:
        return None
    busy, total = (after[cpu][i] - before[cpu][i] for i in (0, 1))
    return 100 * busy / total if total else None


def cpu_of(pids: list[int]) -> float:
    """Total CPU seconds of `pids`."""
    return sum(cpu_seconds(pid) for pid in pids)


def measure_round(proxy: Proxy, seconds: int, connections: int,
                  cpus: tuple[int | None, int | None], host: str | None = None) -> dict[str, Any]:
    """One wrk run through `proxy`, with the proxy's CPU time over exactly that run, and how
    busy the load CPU and the proxy CPU were (all tasks: other work shows up there)."""
    load_cpu, proxy_cpu = cpus
    proxy.check()
    pids, side = proxy.cpu_pids(), proxy.side_pids()
    side_before = {name: cpu_seconds(pid) for name, pid in side.items()}
    ticks = cpu_ticks()
    before = cpu_of(pids)
    start = time.perf_counter()
    out = wrk(proxy.port, seconds, connections, load_cpu, host, proxy.scheme)
    wall = time.perf_counter() - start
    try:
        used = cpu_of(pids) - before
    except BenchError:
        proxy.check()  # says which process went away, and what runs now
        raise
    ticks_after = cpu_ticks()
    proxy.check()
    result = parse_wrk(out)
    result.update(
        wall_s=round(wall, 3), cpu_s=round(used, 3),
        cpu_us_per_req=used / result["requests"] * 1e6 if result["requests"] else None,
        cpu_busy_pct=100 * used / wall,
        load_cpu_busy_pct=cpu_busy_pct(ticks, ticks_after, load_cpu),
        proxy_cpu_all_busy_pct=cpu_busy_pct(ticks, ticks_after, proxy_cpu),
        side_cpu_s={name: round(cpu_seconds(pid) - side_before[name], 3)
                    for name, pid in side.items()})
    return result


# -- memory per idle keep-alive connection ----------------------------------------------------

async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response with a Content-Length: (status, keep-alive)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (ln.partition(":") for ln in lines[1:] if ln)}
    if "content-length" not in headers:
        raise BenchError(f"response without Content-Length: {lines[0]}")
    await reader.readexactly(int(headers["content-length"]))
    return status, headers.get("connection", "").lower() != "close"


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_one(port: int, gate: asyncio.Semaphore) -> Conn:
    """Connect, send one request, read the response; the still-open connection."""
    async with gate:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout=10)
        try:
            writer.write(IDLE_REQUEST)
            status, keep_alive = await asyncio.wait_for(read_response(reader), timeout=10)
        except BaseException:
            writer.close()
            raise
        if status != 200 or not keep_alive:
            writer.close()
            raise BenchError(f"status {status}, keep-alive {keep_alive}")
        return reader, writer


async def idle_memory(proxy: Proxy, count: int) -> dict[str, Any]:
    """Open `count` idle keep-alive connections to `proxy`; its RSS growth per connection."""
    pids = proxy.serving_pids()
    before = sum(rss_kib(pid) for pid in pids)
    gate = asyncio.Semaphore(IDLE_CONCURRENCY)
    start = time.perf_counter()
    outcomes = await asyncio.gather(*(open_one(proxy.port, gate) for _ in range(count)),
                                    return_exceptions=True)
    opened_s = time.perf_counter() - start
    conns = [c for c in outcomes if isinstance(c, tuple)]
    failures = [repr(e) for e in outcomes if isinstance(e, BaseException)]
    try:
        await asyncio.sleep(IDLE_SETTLE)
        proxy.check()
        after = sum(rss_kib(pid) for pid in pids)
        still_open = sum(1 for reader, _ in conns if not reader.at_eof())
    finally:
        for _, writer in conns:
            writer.close()
        await asyncio.sleep(0.2)
    return {"connections": count, "opened": len(conns), "failed": len(failures),
            "failures_sample": sorted(set(failures))[:5], "open_at_reading": still_open,
            "open_s": round(opened_s, 2), "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_conn": (after - before) / still_open if still_open else None}


# -- the run ----------------------------------------------------------------------------------

class BenchBase:
    """What both benchmarks share: the settings, the CPUs, an nginx upstream (set by the
    subclass), the proxies started so far (each numbered by its starts), their cleanup.
    Each subclass records its own results."""

    upstream: Nginx

    def __init__(self, args: argparse.Namespace, workdir: Path, pinning: bool) -> None:
        self.args = args
        self.workdir = workdir
        self.load_cpu = LOAD_CPU if pinning else None
        self.proxy_cpu = PROXY_CPU if pinning else None
        self.upstream_problems: list[str] = []
        self.notes: list[str] = []
        self.proxies: dict[str, Proxy] = {}
        self.starts: dict[str, int] = {}

    def say(self, text: str) -> None:
        """Progress, on stderr."""
        print(text, file=sys.stderr, flush=True)

    def new_proxy(self, name: str, workdir: Path, port: int) -> Proxy:
        """A proxy of kind `name`, not yet started, in `workdir`, listening on `port`."""
        raise NotImplementedError

    def launch(self, name: str) -> Proxy:
        """Start (or restart) one proxy, in a workdir of its own, and pin its serving
        process(es) to the proxy CPU."""
        self.starts[name] = self.starts.get(name, 0) + 1
        proxy = self.new_proxy(name, self.workdir / f"{name}-{self.starts[name]}", free_port())
        self.proxies[name] = proxy
        proxy.start()
        if self.proxy_cpu is not None:
            for pid in proxy.serving_pids():
                pin(pid, {self.proxy_cpu})
        return proxy

    def stop_upstream(self) -> None:
        """Stop the upstream nginx, then keep what it logged."""
        try:
            self.upstream.stop()
        finally:
            self.upstream_problems = self.upstream.problems()


class Bench(BenchBase):
    """The upstream and the proxies, their measurements, and their cleanup."""

    def __init__(self, args: argparse.Namespace, workdir: Path, pinning: bool) -> None:
        super().__init__(args, workdir, pinning)
        self.upstream_port = free_port()
        self.upstream = Nginx(workdir / "upstream", upstream_http(self.upstream_port),
                              cpu=self.load_cpu)
        self.results: dict[str, dict[str, Any]] = {
            name: {"rounds": [], "problems": []} for name in args.tools}

    def new_proxy(self, name: str, workdir: Path, port: int) -> Proxy:
        return PROXIES[name](workdir, port, self.upstream_port, self.args.idle)

    def fail(self, name: str, exc: Exception) -> None:
        """Record that a proxy failed for good, and stop it."""
        self.say(f"[{name}] failed: {exc}")
        self.results[name]["error"] = str(exc)
        proxy = self.proxies.pop(name, None)
        if proxy is not None:
            self.retire(name, proxy)

    def retire(self, name: str, proxy: Proxy) -> None:
        """Stop a proxy, then keep what it logged (shutdown included)."""
        try:
            proxy.stop()
        finally:
            self.results[name]["problems"] += proxy.problems()

    def start_proxy(self, name: str) -> None:
        """Start (or restart) one proxy, pin its worker, warm it up."""
        proxy = self.launch(name)
        self.results[name]["version"] = proxy.version()
        self.results[name]["serving_pids"] = proxy.serving_pids()
        self.say(f"[{name}] serving on port {proxy.port} (pid {proxy.serving_pids()}); "
                 f"{WARMUP} s warm-up")
        wrk(proxy.port, WARMUP, self.args.connections, self.load_cpu, scheme=proxy.scheme)

    def retry(self, name: str, what: str, exc: Exception) -> bool:
        """After a failure: restart the proxy once and say True, or give up and say False."""
        problem = f"{what} failed: {exc}"
        self.results[name]["problems"].append(problem)
        proxy = self.proxies.pop(name, None)
        if proxy is not None:
            self.retire(name, proxy)
        if self.starts.get(name, 0) >= 2:
            self.fail(name, BenchError(problem))
            return False
        self.say(f"[{name}] {problem}; restarting it and retrying once")
        try:
            self.start_proxy(name)
        except BenchError as again:
            self.fail(name, again)
            return False
        return True

    def rounds(self) -> None:
        """Alternate wrk rounds over the proxies."""
        for number in range(1, self.args.rounds + 1):
            for name in self.args.tools:
                while name in self.proxies:
                    self.say(f"[{name}] round {number}/{self.args.rounds}: "
                             f"wrk -c{self.args.connections} -d{self.args.duration}s")
                    try:
                        result = measure_round(self.proxies[name], self.args.duration,
                                               self.args.connections,
                                               (self.load_cpu, self.proxy_cpu))
                    except BenchError as exc:
                        if self.retry(name, f"round {number}", exc):
                            continue
                        break
                    self.results[name]["rounds"].append(result)
                    self.note_errors(name, number, result)
                    self.note_interference(name, number, result)
                    break

    def note_errors(self, name: str, number: int, result: dict[str, Any]) -> None:
        """Non-2xx responses and socket errors of a round count as problems."""
        errors = {k: v for k, v in result["socket_errors"].items() if v}
        if result["non_2xx_3xx"] or errors:
            self.results[name]["problems"].append(
                f"round {number}: {result['non_2xx_3xx']} non-2xx/3xx responses, "
                f"socket errors {errors or 'none'} (of {result['requests']} requests)")

    def note_interference(self, name: str, number: int, result: dict[str, Any]) -> None:
        """Other work on the proxy's CPU during a round (another process, interrupts)."""
        everything = result.get("proxy_cpu_all_busy_pct")
        if isinstance(everything, float) and everything - result["cpu_busy_pct"] > 5:
            self.notes.append(f"{name} round {number}: CPU {self.proxy_cpu} was "
                              f"{everything:.0f}% busy, the proxy's own share "
                              f"{result['cpu_busy_pct']:.0f}%: other tasks ran there")

    def idle(self) -> None:
        """Memory per idle keep-alive connection, one proxy at a time."""
        for name in self.args.tools:
            while name in self.proxies:
                self.say(f"[{name}] {self.args.idle} idle keep-alive connections")
                try:
                    found = asyncio.run(idle_memory(self.proxies[name], self.args.idle))
                except BenchError as exc:
                    if self.retry(name, "idle connections", exc):
                        continue
                    break
                self.results[name]["idle"] = found
                self.note_idle(name, found)
                break

    def note_idle(self, name: str, found: dict[str, Any]) -> None:
        """Idle connections that failed, or that the proxy closed, count as problems."""
        if found["failed"] or found["open_at_reading"] < found["opened"]:
            self.results[name]["problems"].append(
                f"idle connections: {found['failed']} failed to open "
                f"{found['failures_sample']}, {found['opened'] - found['open_at_reading']} "
                f"closed by the proxy before the reading")

    def run(self) -> None:
        """Everything, in order; the caller stops it all with close()."""
        self.upstream.start()
        wait_serving(self.upstream_port, "the upstream nginx", BODY, START_TIMEOUT,
                     self.upstream.log)
        self.say(f"upstream nginx on port {self.upstream_port}")
        for name in self.args.tools:
            try:
                self.start_proxy(name)
            except BenchError as exc:
                self.retry(name, "start", exc)
        self.rounds()
        if not self.args.skip_idle:
            self.idle()

    def close(self) -> None:
        """Stop every proxy and the upstream."""
        for name, proxy in list(self.proxies.items()):
            try:
                self.retire(name, proxy)
            except BenchError as exc:
                self.results[name]["problems"].append(f"stopping: {exc}")
        self.proxies.clear()
        self.stop_upstream()


def summarize(result: dict[str, Any]) -> None:
    """Medians of the rounds, and the idle figure, next to the raw data."""
    rounds = result.get("rounds") or []
    for key in ("req_per_s", "p50_ms", "p99_ms", "cpu_us_per_req", "cpu_busy_pct",
                "load_cpu_busy_pct", "proxy_cpu_all_busy_pct"):
        values = [r[key] for r in rounds if isinstance(r.get(key), int | float)]
        result[key] = statistics.median(values) if values else None
    sides = {name for r in rounds for name in r.get("side_cpu_s", {})}
    result["side_cpu_s_per_round"] = {
        name: statistics.median(r["side_cpu_s"][name] for r in rounds) for name in sides}
    idle = result.get("idle") or {}
    result["kib_per_idle_conn"] = idle.get("kib_per_conn")
    result["rss_idle_mib"] = idle["rss_before_kib"] / 1024 if idle else None


# -- reporting --------------------------------------------------------------------------------

ROWS = (  # key, label, format, whether Wharf's ratio to the others means something
    ("req_per_s", "requests/s (higher is better)", "{:.0f}", True),
    ("p50_ms", "latency p50 (ms)", "{:.2f}", True),
    ("p99_ms", "latency p99 (ms)", "{:.2f}", True),
    ("cpu_us_per_req", "proxy CPU per request (us)", "{:.1f}", True),
    ("kib_per_idle_conn", "memory per idle conn (KiB)", "{:.2f}", True),
    ("rss_idle_mib", "worker RSS, no clients (MiB)", "{:.1f}", True),
    ("cpu_busy_pct", "proxy's own CPU use (% of 1 CPU)", "{:.0f}", False),
    ("proxy_cpu_all_busy_pct", "CPU 1 busy, all tasks (%)", "{:.0f}", False),
    ("load_cpu_busy_pct", "CPU 0 busy, wrk + upstream (%)", "{:.0f}", False),
)


def ratio(results: dict[str, dict[str, Any]], other: str, key: str) -> float | None:
    """Wharf's figure divided by `other`'s, when both exist."""
    mine, theirs = results.get("wharf", {}).get(key), results.get(other, {}).get(key)
    if not isinstance(mine, int | float) or not isinstance(theirs, int | float) or theirs <= 0:
        return None
    return float(mine) / theirs


def table(results: dict[str, dict[str, Any]], tools: list[str]) -> str:
    """Medians per proxy and Wharf's ratios, as a fixed-width text table."""
    others = [t for t in tools if t != "wharf"] if "wharf" in tools else []
    header = ["metric (median of rounds)", *tools, *(f"wharf/{t}" for t in others)]
    rows = []
    for key, label, fmt, compare in ROWS:
        cells = [label]
        for tool in tools:
            value = results.get(tool, {}).get(key)
            cells.append(fmt.format(value) if isinstance(value, int | float) else "n/a")
        for other in others:
            r = ratio(results, other, key) if compare else None
            cells.append(f"x{r:.2f}" if r is not None else "n/a" if compare else "")
        rows.append(cells)
    return format_table(header, rows)


def targets(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The three targets: value, limit, met (None when not measured)."""
    rps, cpu = ratio(results, "nginx", "req_per_s"), ratio(results, "nginx", "cpu_us_per_req")
    kib = results.get("wharf", {}).get("kib_per_idle_conn")
    found = {}
    if "wharf-metrics" in results:  # metrics on, against off: 1 / (off / on)
        off_rps, off_cpu = (ratio(results, "wharf-metrics", k) for k in ("req_per_s",
                                                                        "cpu_us_per_req"))
        on_rps = 1 / off_rps if off_rps else None
        on_cpu = 1 / off_cpu if off_cpu else None
        found = {
            "metrics on req/s >= 0.97x off": {"value": on_rps, "met": None if on_rps is None
                                              else on_rps >= 0.97},
            "metrics on CPU/request <= 1.03x off": {"value": on_cpu, "met": None if on_cpu
                                                    is None else on_cpu <= 1.03},
        }
    return found | {
        "wharf req/s >= 0.80x nginx": {"value": rps, "met": None if rps is None
                                       else rps >= 0.8},
        "wharf CPU/request <= 1.25x nginx": {"value": cpu, "met": None if cpu is None
                                             else cpu <= 1.25},
        "wharf memory per idle conn < 10 KiB": {"value": kib, "met": None if kib is None
                                                else kib < 10},
    }


def print_report(report: dict[str, Any], tools: list[str]) -> None:
    """The table, the targets, side CPU, problems."""
    results, s = report["results"], report["settings"]
    info = report["machine"]
    versions = ", ".join(f"{t} {results[t].get('version', '?')}" for t in tools)
    print(f"{info['cpus']} CPUs, Linux {info['kernel']}, Python {info['python']}; {versions}; "
          f"{report['wrk_version']}")
    print(f"wrk -t1 -c{s['connections']} -d{s['duration_s']}s, {s['rounds']} rounds each "
          f"after a {WARMUP} s warm-up; {s['idle_connections']} idle connections; "
          f"pinning: {report['pinning']['summary']}\n")
    print(table(results, tools))
    print()
    for label, t in report["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        value = f"{t['value']:.2f}" if isinstance(t["value"], float) else "n/a"
        print(f"target {label}: {value} -> {verdict}")
    for name in tools:
        for side, cpu in results[name].get("side_cpu_s_per_round", {}).items():
            print(f"{name} {side} CPU per round (not in the figures above): {cpu * 1000:.0f} ms")
    for name in tools:
        if "error" in results[name]:
            print(f"\n{name}: FAILED: {results[name]['error']}")
        if results[name].get("problems"):
            print(f"\n{name} problems:\n  " + "\n  ".join(results[name]["problems"]))
    if report.get("upstream_problems"):
        print("\nupstream nginx problems:\n  " + "\n  ".join(report["upstream_problems"]))
    for note in report["notes"]:
        print(f"\nnote: {note}")
    print(f"\nsaved to {RESULTS_FILE.relative_to(ROOT)}")


# -- load-balancing strategies (--strategies) -------------------------------------------------

STRATEGIES = ("round_robin", "weighted", "least_conn", "ip_hash", "hash", "cookie", "p2c",
              "ewma")
NGINX_METHODS = {  # Wharf's strategies that nginx has, and the directive of nginx's upstream
    "round_robin": "", "weighted": "", "least_conn": "least_conn;", "ip_hash": "ip_hash;"}
STRATEGY_TOOLS = ("wharf", "nginx")
BACKENDS = 4
WEIGHTS = (3, 2, 1, 1)  # of the backends, for "weighted" (nginx: `server ... weight=N`)
STRATEGY_DURATION = 5  # default seconds per wrk round with --strategies
STRATEGY_WARMUP = 1  # seconds of wrk per target before the rounds
STRATEGY_BUDGET = 290  # seconds for the --strategies run, installs included
HIT_FLUSH = 0.25  # seconds: the backends' buffered access logs are written within 100 ms
SAMPLE = 40  # sequential requests, each on a new connection, per target
SLACK = 0.05  # a strategy may cost at most 5% of Wharf's round-robin throughput
FOREIGN_LIMIT = 10.0  # % of one CPU used by other processes: above it, a round is disturbed
SINGLE_KEY = {  # strategies that send all of wrk's traffic to one backend, and why
    "ip_hash": "wrk is one client address (127.0.0.1): one key, one backend",
    "hash": "wrk asks for `/` only: one URI, one backend",
}
STRATEGY_NOTES = (
    "ip_hash: wrk is a single client (127.0.0.1), so all its requests go to one backend - "
    "expected, for Wharf (hashes the whole address) and nginx (hashes the first three "
    "octets); the throughput figure is the cost of hashing, not of spreading.",
    "hash (hash_key = \"uri\"): wrk requests `/` only, so all its requests go to one backend "
    "- expected; the sequential sample uses 20 URIs, each twice, to show the spread and that "
    "a URI keeps its backend.",
    "cookie: wrk sends no cookie, so every request is a first visit: round robin, and a "
    "Set-Cookie in each response; the sample checks that the cookie pins the backend.",
)


def all_task_seconds() -> float:
    """CPU time of every task on every CPU so far (/proc/stat: user, nice, system, irq,
    softirq; a task's own stime includes the softirq work done in its context)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def own_seconds() -> float:
    """CPU time of this script and of its children it has waited for (wrk)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def softirq_threads() -> list[int]:
    """The kernel's ksoftirqd threads: they do network work for the bench's traffic too."""
    found = []
    for pid in all_pids():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().startswith("ksoftirqd/"):
                found.append(pid)
    return found


def strategy_host(strategy: str) -> str:
    """The Host header that selects a strategy's route (Wharf) or server block (nginx)."""
    return f"{strategy.replace('_', '-')}.bench"


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def fetch(port: int, host: str, path: str = "/", cookie: str | None = None,
          timeout: float = 2.0) -> tuple[int, bytes, str | None]:
    """One GET on a new connection: (status, body, the Set-Cookie header or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, **({"Cookie": cookie} if cookie
                                                             else {})})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Set-Cookie")
    finally:
        conn.close()


def backend_of(body: bytes, ports: list[int]) -> int:
    """Which backend (index in `ports`) wrote a response body ("port N\\n")."""
    match = re.fullmatch(rb"port (\d+)\n", body)
    if not match or int(match[1]) not in ports:
        raise BenchError(f"unexpected body {body[:60]!r}")
    return ports.index(int(match[1]))


def wait_hosts(port: int, hosts: list[str], backends: list[int], what: str,
               log: Path | None) -> None:
    """Wait until each of `hosts` through `port` answers 200 with a backend's body."""
    last = "no answer"

    def ok() -> bool:
        nonlocal last
        for host in hosts:
            try:
                status, body, _ = fetch(port, host)
                last = f"{host}: status {status}, body {body[:60]!r}"
                if status != 200:
                    return False
                backend_of(body, backends)
            except (OSError, BenchError) as exc:
                last = f"{host}: {exc}"
                return False
        return True

    try:
        wait_until(ok, START_TIMEOUT, f"{what} to serve on port {port}", interval=0.1)
    except BenchError as exc:
        tail = log_tail(log) if log else ""
        raise BenchError(f"{exc} (last: {last}){tail}") from None


def backends_http(ports: list[int], logs: Path) -> str:
    """The four upstream servers: `return 200 "port N\\n"`, each counting its requests in a
    buffered access log of one 2-byte line ("x\\n") per request."""
    servers = "".join(
        f"    server {{\n        listen 127.0.0.1:{port};\n"
        f"        access_log {logs}/hits-{port}.log hit buffer=64k flush=100ms;\n"
        f"        location / {{\n            default_type text/plain;\n"
        f"            return 200 \"port {port}\\n\";\n        }}\n    }}\n" for port in ports)
    return f"    log_format hit \"x\";\n{servers}"


class StrategyWharf(WharfProxy):
    """Wharf with one route per strategy, each over the four backends, chosen by Host."""

    def __init__(self, workdir: Path, port: int, backends: list[int]) -> None:
        self.backends = backends
        super().__init__(workdir, port, backends[0], 0)

    def routes_toml(self) -> str:
        routes = []
        for strategy in STRATEGIES:
            weights = WEIGHTS if strategy == "weighted" else (1,) * len(self.backends)
            servers = ", ".join(
                f"{{ address = \"127.0.0.1:{p}\", weight = {w} }}" if w != 1
                else f"\"127.0.0.1:{p}\"" for p, w in zip(self.backends, weights, strict=True))
            key = "hash_key = \"uri\"\n" if strategy == "hash" else ""
            routes.append(f"[[routes]]\nhost = \"{strategy_host(strategy)}\"\npath = \"/\"\n"
                          f"servers = [{servers}]\nbalance = \"{strategy}\"\n{key}")
        return "\n".join(routes)

    def wait_ready(self, what: str, log: Path | None) -> None:
        wait_hosts(self.port, [strategy_host(s) for s in STRATEGIES], self.backends, what, log)


class StrategyNginx(NginxProxy):
    """nginx with one upstream block and one server block (server_name) per strategy it
    has: plain round robin, weights, `least_conn;`, `ip_hash;`; keepalive 64 in each."""

    def __init__(self, workdir: Path, port: int, backends: list[int]) -> None:
        self.backends = backends
        super().__init__(workdir, port, backends[0], 0)

    def http(self) -> str:
        blocks = []
        for strategy, method in NGINX_METHODS.items():
            weights = WEIGHTS if strategy == "weighted" else (1,) * len(self.backends)
            servers = "".join(
                f"        server 127.0.0.1:{p}{f' weight={w}' if w != 1 else ''};\n"
                for p, w in zip(self.backends, weights, strict=True))
            first = f"        {method}\n" if method else ""
            blocks.append(
                f"    upstream {strategy} {{\n{first}{servers}"
                f"        keepalive {POOL};\n        keepalive_requests 1000000;\n    }}\n"
                f"    server {{\n        listen 127.0.0.1:{self.port};\n"
                f"        server_name {strategy_host(strategy)};\n"
                f"        location / {{\n            proxy_pass http://{strategy};\n"
                f"            proxy_http_version 1.1;\n"
                f"            proxy_set_header Connection \"\";\n        }}\n    }}\n")
        return "".join(blocks)

    def wait_ready(self, what: str, log: Path | None) -> None:
        wait_hosts(self.port, [strategy_host(s) for s in NGINX_METHODS], self.backends, what,
                   log)


STRATEGY_PROXIES: dict[str, type[StrategyWharf] | type[StrategyNginx]] = {
    "wharf": StrategyWharf, "nginx": StrategyNginx}


class StrategyBench(BenchBase):
    """Four backends, Wharf and nginx in front of them, a wrk run per strategy and round."""

    def __init__(self, args: argparse.Namespace, workdir: Path, pinning: bool) -> None:
        super().__init__(args, workdir, pinning)
        self.ports = free_ports(BACKENDS)
        self.logs = workdir / "backends"
        self.upstream = Nginx(self.logs, backends_http(self.ports, self.logs),
                              cpu=self.load_cpu)
        self.tools = [t for t in STRATEGY_TOOLS if t in args.tools]
        self.tool_info: dict[str, dict[str, Any]] = {
            t: {"problems": [], "restarts_by_bench": 0} for t in self.tools}
        self.targets = [(tool, s) for s in STRATEGIES for tool in self.tools
                        if tool == "wharf" or s in NGINX_METHODS]
        self.results: dict[str, dict[str, Any]] = {
            f"{tool} {s}": {"tool": tool, "strategy": s, "rounds": [], "disturbed_rounds": [],
                            "problems": []}
            for tool, s in self.targets}
        self.deadline = time.monotonic() + STRATEGY_BUDGET - 30  # run_strategies sets it
        self.softirq = softirq_threads()
        self.interference: dict[str, list[str]] = {}

    def new_proxy(self, name: str, workdir: Path, port: int) -> Proxy:
        return STRATEGY_PROXIES[name](workdir, port, self.ports)

    def hits(self) -> list[int]:
        """Requests each backend has logged so far (2 bytes a line)."""
        found = []
        for port in self.ports:
            try:
                found.append((self.logs / f"hits-{port}.log").stat().st_size // 2)
            except OSError:
                found.append(0)
        return found

    def start_proxy(self, tool: str) -> None:
        """Start (or restart) one proxy and pin its serving process."""
        proxy = self.launch(tool)
        info = self.tool_info[tool]
        info["version"] = proxy.version()
        info.setdefault("serving_pids", []).append(proxy.serving_pids())
        self.say(f"[{tool}] serving on port {proxy.port} (pid {proxy.serving_pids()})")

    def retire(self, tool: str) -> None:
        """Stop a proxy, then keep what it logged (shutdown included)."""
        proxy = self.proxies.pop(tool, None)
        if proxy is None:
            return
        try:
            proxy.stop()
        finally:
            self.tool_info[tool]["problems"] += proxy.problems()

    def restart(self, tool: str, problem: str) -> bool:
        """After a failure: restart the proxy once and say True, or give up and say False."""
        self.tool_info[tool]["problems"].append(problem)
        self.retire(tool)
        if self.starts.get(tool, 0) >= 2:
            self.tool_info[tool]["error"] = problem
            self.say(f"[{tool}] {problem}; already restarted once: giving up on {tool}")
            return False
        self.say(f"[{tool}] {problem}; restarting it and retrying once")
        self.tool_info[tool]["restarts_by_bench"] += 1
        try:
            self.start_proxy(tool)
        except BenchError as exc:
            self.tool_info[tool]["error"] = f"restart failed: {exc}"
            self.retire(tool)
            return False
        return True

    def sample(self, tool: str, strategy: str) -> dict[str, Any]:
        """SAMPLE sequential requests, each on a new connection: which backends answer.
        hash: 20 URIs twice each (a URI must keep its backend); cookie: half without a
        cookie, half with the first response's cookie (they must all go to its backend)."""
        port, host = self.proxies[tool].port, strategy_host(strategy)
        counts = [0] * BACKENDS
        found: dict[str, Any] = {"requests": SAMPLE}
        if strategy == "hash":
            owners: dict[str, set[int]] = {}
            for i in range(SAMPLE):
                path = f"/key-{i % (SAMPLE // 2)}"
                status, body, _ = fetch(port, host, path)
                index = self._answer(status, body)
                counts[index] += 1
                owners.setdefault(path, set()).add(index)
            found["uris"] = len(owners)
            found["uris_moved"] = sum(1 for seen in owners.values() if len(seen) > 1)
        elif strategy == "cookie":
            cookie = None
            for i in range(SAMPLE // 2):
                status, body, set_cookie = fetch(port, host)
                counts[self._answer(status, body)] += 1
                if i == 0 and set_cookie:
                    cookie = set_cookie.split(";", 1)[0]
            pinned = [0] * BACKENDS
            for _ in range(SAMPLE - SAMPLE // 2):
                status, body, _ = fetch(port, host, cookie=cookie)
                index = self._answer(status, body)
                counts[index] += 1
                pinned[index] += 1
            found["cookie"] = cookie
            found["with_cookie_backends"] = sum(1 for n in pinned if n)
        else:
            for _ in range(SAMPLE):
                status, body, _ = fetch(port, host)
                counts[self._answer(status, body)] += 1
        found["per_backend"] = counts
        found["backends_seen"] = sum(1 for n in counts if n)
        return found

    def _answer(self, status: int, body: bytes) -> int:
        if status != 200:
            raise BenchError(f"sample request answered {status}: {body[:80]!r}")
        return backend_of(body, self.ports)

    def prepare(self) -> None:
        """Per target: the sequential sample, then a short warm-up under wrk."""
        for tool, strategy in self.targets:
            while tool in self.proxies:
                name = f"{tool} {strategy}"
                try:
                    self.results[name]["sample"] = self.sample(tool, strategy)
                    self.say(f"[{name}] {STRATEGY_WARMUP} s warm-up")
                    wrk(self.proxies[tool].port, STRATEGY_WARMUP, self.args.connections,
                        self.load_cpu, strategy_host(strategy))
                    self.proxies[tool].check()
                except (BenchError, OSError) as exc:
                    if self.restart(tool, f"{name} sample/warm-up failed: {exc}"):
                        continue
                break
        time.sleep(HIT_FLUSH)

    def rounds(self) -> None:
        """Alternate wrk rounds over the targets: wharf round_robin, nginx round_robin, wharf
        weighted, ...; the backends' request counts are read around each."""
        for number in range(1, self.args.rounds + 1):
            for tool, strategy in self.targets:
                name = f"{tool} {strategy}"
                while tool in self.proxies:
                    self.say(f"[{name}] round {number}/{self.args.rounds}: "
                             f"wrk -c{self.args.connections} -d{self.args.duration}s")
                    try:
                        result = self.measure(tool, strategy)
                        if result["foreign_cpu_pct"] > FOREIGN_LIMIT and self.time_left():
                            self.say(f"[{name}] round {number} disturbed: other processes "
                                     f"used {result['foreign_cpu_pct']:.0f}% of a CPU; "
                                     f"repeating it once")
                            result["disturbed"] = True
                            result["round"] = number
                            self.results[name]["disturbed_rounds"].append(result)
                            result = self.measure(tool, strategy)
                    except BenchError as exc:
                        time.sleep(HIT_FLUSH)
                        if self.restart(tool, f"{name} round {number} failed: {exc}"):
                            with contextlib.suppress(BenchError):
                                wrk(self.proxies[tool].port, STRATEGY_WARMUP,
                                    self.args.connections, self.load_cpu,
                                    strategy_host(strategy))
                            time.sleep(HIT_FLUSH)
                            continue
                        break
                    result["round"] = number
                    self.results[name]["rounds"].append(result)
                    self.note_round(name, number, result)
                    break

    def our_pids(self) -> list[int]:
        """The long-running processes of the bench (backends, proxies, Wharf's daemon) and
        the kernel's ksoftirqd threads."""
        pids = [p for p in (self.upstream.proc.pid if self.upstream.proc else None,
                            self.upstream.worker) if p] + self.softirq
        for proxy in self.proxies.values():
            pids += [*proxy.cpu_pids(), *proxy.side_pids().values()]
        return pids

    def measure(self, tool: str, strategy: str) -> dict[str, Any]:
        """One wrk round through `tool` for `strategy`: measure_round's figures, the requests
        each backend served, and the CPU other processes used meanwhile (% of one CPU)."""
        pids = self.our_pids()
        before, ours, everything = self.hits(), own_seconds() + cpu_of(pids), \
            all_task_seconds()
        start = time.perf_counter()
        result = measure_round(self.proxies[tool], self.args.duration, self.args.connections,
                               (self.load_cpu, self.proxy_cpu), strategy_host(strategy))
        wall = time.perf_counter() - start
        ours, everything = own_seconds() + cpu_of(pids) - ours, all_task_seconds() - everything
        time.sleep(HIT_FLUSH)
        result["backend_hits"] = [a - b for a, b in zip(self.hits(), before, strict=True)]
        result["foreign_cpu_pct"] = 100 * max(0.0, everything - ours) / wall
        return result

    def time_left(self) -> bool:
        """Whether one more round fits in the budget, with room to stop and report."""
        return time.monotonic() + self.args.duration + 2 < self.deadline

    def note_round(self, name: str, number: int, result: dict[str, Any]) -> None:
        """wrk's errors, and backend counts that do not add up to wrk's, are problems."""
        problems = self.results[name]["problems"]
        errors = {k: v for k, v in result["socket_errors"].items() if v}
        if result["non_2xx_3xx"] or errors:
            problems.append(f"round {number}: {result['non_2xx_3xx']} non-2xx/3xx responses, "
                            f"socket errors {errors or 'none'} (of {result['requests']} "
                            f"requests)")
        served, done = sum(result["backend_hits"]), result["requests"]
        # wrk does not count the requests still in flight when it stops (<= its connections)
        if not 0 <= served - done <= self.args.connections + max(10, done // 1000):
            problems.append(f"round {number}: the backends served {served} requests, wrk "
                            f"completed {done}")
        everything = result.get("proxy_cpu_all_busy_pct")
        if isinstance(everything, float) and everything - result["cpu_busy_pct"] > 5:
            self.interference.setdefault(name, []).append(
                f"round {number}: {everything:.0f}% busy, {result['cpu_busy_pct']:.0f}% "
                f"the proxy's")

    def interference_notes(self) -> list[str]:
        """Other work on the proxy's CPU (another process, interrupts), per target."""
        return [f"{name}: CPU {self.proxy_cpu} was busy with other tasks too ("
                + "; ".join(found) + ")" for name, found in self.interference.items()]

    def run(self) -> None:
        """Everything, in order; the caller stops it all with close()."""
        self.upstream.start()
        wait_until(lambda: all(self._backend_ok(p) for p in self.ports), START_TIMEOUT,
                   "the four backends", interval=0.1)
        self.say(f"backends (one nginx) on ports {', '.join(map(str, self.ports))}")
        for tool in self.tools:
            try:
                self.start_proxy(tool)
            except BenchError as exc:
                self.restart(tool, f"start failed: {exc}")
        self.prepare()
        self.rounds()

    def _backend_ok(self, port: int) -> bool:
        try:
            status, body, _ = fetch(port, "backend")
        except OSError:
            return False
        return status == 200 and body == f"port {port}\n".encode()

    def close(self) -> None:
        """Stop both proxies and the backends."""
        for tool in list(self.proxies):
            try:
                self.retire(tool)
            except BenchError as exc:
                self.tool_info[tool]["problems"].append(f"stopping: {exc}")
        self.stop_upstream()


def summarize_strategy(result: dict[str, Any]) -> None:
    """Medians of the rounds, the best round (highest req/s, lowest CPU per request: host
    slowdowns only ever add time), the spread, and where the traffic went."""
    rounds = result["rounds"]
    rps = [r["req_per_s"] for r in rounds]
    cpu = [r["cpu_us_per_req"] for r in rounds if isinstance(r.get("cpu_us_per_req"), float)]
    result["best_req_per_s"] = max(rps) if rps else None
    result["best_cpu_us_per_req"] = min(cpu) if cpu else None
    for key in ("req_per_s", "p50_ms", "p99_ms", "cpu_us_per_req", "cpu_busy_pct",
                "load_cpu_busy_pct", "proxy_cpu_all_busy_pct"):
        values = [r[key] for r in rounds if isinstance(r.get(key), int | float)]
        result[key] = statistics.median(values) if values else None
    result["req_per_s_spread_pct"] = (100 * (max(rps) - min(rps)) / statistics.median(rps)
                                      if len(rps) > 1 else None)
    foreign = [r["foreign_cpu_pct"] for r in rounds]
    result["foreign_cpu_pct_max"] = max(foreign) if foreign else None
    hits = [sum(r["backend_hits"][i] for r in rounds) for i in range(BACKENDS)]
    total = sum(hits)
    result["backend_hits"] = hits
    result["backend_share_pct"] = [100 * h / total for h in hits] if total else None
    result["backends_hit"] = sum(1 for h in hits if h) if rounds else None


def expected_share(strategy: str) -> list[float] | None:
    """The exact share per backend (%) a strategy must give wrk's traffic, if it has one."""
    if strategy == "round_robin":
        return [100 / BACKENDS] * BACKENDS
    if strategy == "weighted":
        return [100 * w / sum(WEIGHTS) for w in WEIGHTS]
    return None


def spread_verdict(result: dict[str, Any]) -> str:
    """Whether the traffic under wrk went where the strategy says."""
    hit, shares, strategy = result.get("backends_hit"), result.get("backend_share_pct"), \
        result["strategy"]
    if not hit or shares is None:
        return "not measured"
    if strategy in SINGLE_KEY:
        return "ok: 1 backend (expected)" if hit == 1 else f"UNEXPECTED: {hit} backends"
    if hit < BACKENDS:
        return f"MISSED: only {hit} of {BACKENDS} backends"
    exact = expected_share(strategy)
    if exact and max(abs(s - e) for s, e in zip(shares, exact, strict=True)) > 2:
        return "MISSED: shares off " + "/".join(f"{e:.0f}" for e in exact)
    return "ok: all 4" + (" at " + "/".join(f"{e:.0f}" for e in exact) if exact else "")


def sample_verdict(result: dict[str, Any]) -> str:
    """What the sequential sample showed."""
    sample = result.get("sample")
    if not sample:
        return "not measured"
    seen = f"{sample['backends_seen']}/{BACKENDS}"
    strategy = result["strategy"]
    if strategy == "hash":
        moved = sample["uris_moved"]
        return (f"{seen} over {sample['uris']} URIs, "
                + ("each URI kept its backend" if not moved else f"{moved} URIs MOVED"))
    if strategy == "cookie":
        pinned = sample["with_cookie_backends"]
        return (f"{seen}; with the cookie: "
                + ("1 backend (pinned)" if pinned == 1 else f"{pinned} backends, NOT PINNED"))
    if strategy == "ip_hash":
        return f"{seen}" + (" (expected: one client)" if sample["backends_seen"] == 1
                            else " UNEXPECTED")
    if strategy == "ewma":  # the fastest backend wins while nothing is in flight
        return f"{seen} (latency-driven; need not be 4)"
    return seen + ("" if sample["backends_seen"] == BACKENDS else " MISSED")


def strategy_ratio(results: dict[str, dict[str, Any]], mine: str, other: str,
                   key: str) -> float | None:
    """results[mine][key] / results[other][key], when both exist."""
    a, b = results.get(mine, {}).get(key), results.get(other, {}).get(key)
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b <= 0:
        return None
    return float(a) / b


RATIO_KEYS = ("best_req_per_s", "req_per_s", "best_cpu_us_per_req", "cpu_us_per_req")


def strategy_report(bench: StrategyBench, args: argparse.Namespace, pinning: dict[str, Any],
                    notes: list[str], elapsed: float) -> dict[str, Any]:
    """Everything measured, as one JSON-able dict: per target, vs round robin, vs nginx."""
    results = bench.results
    for result in results.values():
        summarize_strategy(result)
    vs_rr, vs_nginx = {}, {}
    for strategy in STRATEGIES:
        name = f"wharf {strategy}"
        if name not in results:
            continue
        vs = vs_rr[strategy] = {k: strategy_ratio(results, name, "wharf round_robin", k)
                                for k in RATIO_KEYS}
        best, median = vs["best_req_per_s"], vs["req_per_s"]
        vs["met"] = None if best is None else best >= 1 - SLACK
        vs["met_by_median"] = None if median is None else median >= 1 - SLACK
        if f"nginx {strategy}" in results:
            vs_nginx[strategy] = {k: strategy_ratio(results, name, f"nginx {strategy}", k)
                                  for k in RATIO_KEYS}
    return {
        "machine": machine_info(), "wrk_version": wrk_version(),
        "settings": {"duration_s": args.duration, "rounds": args.rounds,
                     "connections": args.connections, "warmup_s": STRATEGY_WARMUP,
                     "backends": bench.ports, "weights": WEIGHTS, "upstream_pool": POOL,
                     "hosts": {s: strategy_host(s) for s in STRATEGIES},
                     "nginx_methods": {s: m or ("weight=" + ",".join(map(str, WEIGHTS))
                                                if s == "weighted" else "(round robin)")
                                       for s, m in NGINX_METHODS.items()}},
        "pinning": pinning, "duration_s": round(elapsed, 1), "tools": bench.tool_info,
        "results": results, "wharf_vs_round_robin": vs_rr, "wharf_vs_nginx": vs_nginx,
        "target": f"every strategy >= {1 - SLACK:.2f}x Wharf's round-robin req/s (best "
                  f"rounds)",
        "upstream_problems": bench.upstream_problems, "notes": notes,
    }


def cell(value: Any, fmt: str) -> str:
    """A table cell: the formatted number, or n/a."""
    return fmt.format(value) if isinstance(value, int | float) else "n/a"


def print_strategy_report(report: dict[str, Any]) -> None:
    """Three tables (Wharf per strategy, Wharf vs nginx, traffic per backend), then the
    target, notes and problems."""
    results, s, tools = report["results"], report["settings"], report["tools"]
    info = report["machine"]
    versions = ", ".join(f"{t} {tools[t].get('version', '?')}" for t in tools)
    print(f"{info['cpus']} CPUs, Linux {info['kernel']}, Python {info['python']}; {versions}; "
          f"{report['wrk_version']}")
    print(f"{BACKENDS} backends (one nginx worker, ports {', '.join(map(str, s['backends']))}); "
          f"wrk -t1 -c{s['connections']} -d{s['duration_s']}s, {s['rounds']} rounds "
          f"alternating the targets after a {s['warmup_s']} s warm-up each; pinning: "
          f"{report['pinning']['summary']}\n")
    rows = []
    for strategy in STRATEGIES:
        r = results.get(f"wharf {strategy}")
        if r is None:
            continue
        vs = report["wharf_vs_round_robin"].get(strategy, {})
        verdict = {True: "ok", False: "MISSED", None: "n/a"}
        rows.append([strategy, cell(r.get("best_req_per_s"), "{:.0f}"),
                     cell(r.get("req_per_s"), "{:.0f}"),
                     cell(r.get("req_per_s_spread_pct"), "{:.0f}%"),
                     cell(r.get("best_cpu_us_per_req"), "{:.2f}"),
                     cell(r.get("cpu_us_per_req"), "{:.2f}"),
                     cell(r.get("cpu_busy_pct"), "{:.0f}%"), cell(r.get("p99_ms"), "{:.2f}"),
                     cell(vs.get("best_req_per_s"), "x{:.3f}"),
                     cell(vs.get("req_per_s"), "x{:.3f}"),
                     cell(vs.get("best_cpu_us_per_req"), "x{:.3f}"),
                     cell(vs.get("cpu_us_per_req"), "x{:.3f}"),
                     f"{verdict[vs.get('met')]} ({verdict[vs.get('met_by_median')]})"])
    print("Wharf, one worker, per strategy: best round and median of the rounds; ratios to "
          "Wharf's round_robin")
    print(format_table(["strategy", "req/s best", "median", "spread", "CPU us best", "median",
                        "own CPU", "p99 ms", "req/s / rr", "median", "CPU / rr", "median",
                        f">= {1 - SLACK:.2f}x rr (median)"], rows))
    if report["wharf_vs_nginx"]:
        rows = []
        for strategy, vs in report["wharf_vs_nginx"].items():
            w, n = results[f"wharf {strategy}"], results[f"nginx {strategy}"]
            rows.append([strategy, s["nginx_methods"][strategy],
                         cell(n.get("best_req_per_s"), "{:.0f}"),
                         cell(n.get("req_per_s"), "{:.0f}"),
                         cell(n.get("req_per_s_spread_pct"), "{:.0f}%"),
                         cell(n.get("best_cpu_us_per_req"), "{:.2f}"),
                         cell(n.get("cpu_us_per_req"), "{:.2f}"),
                         cell(vs.get("best_req_per_s"), "x{:.2f}"),
                         cell(vs.get("req_per_s"), "x{:.2f}"),
                         cell(vs.get("best_cpu_us_per_req"), "x{:.2f}"),
                         cell(vs.get("cpu_us_per_req"), "x{:.2f}"),
                         cell(w.get("best_cpu_us_per_req"), "{:.2f}")])
        print("\nnginx (1 worker) with the matching upstream directive, and Wharf / nginx")
        print(format_table(["strategy", "nginx directive", "req/s best", "median", "spread",
                            "CPU us best", "median", "wharf/nginx req/s", "median",
                            "wharf/nginx CPU", "median", "wharf CPU us best"], rows))
    rows = []
    for name, r in results.items():
        shares = r.get("backend_share_pct")
        rows.append([name, *([f"{x:.1f}%" for x in shares] if shares else ["n/a"] * BACKENDS),
                     spread_verdict(r), sample_verdict(r),
                     cell(r.get("foreign_cpu_pct_max"), "{:.0f}%")])
    print("\nWhere the traffic went: share of the requests each backend served during the "
          "rounds (its access log), and a sample of sequential requests")
    print(format_table(["target", *(f"backend {i + 1}" for i in range(BACKENDS)),
                        "under wrk", f"sample ({SAMPLE} requests)", "others' CPU"], rows))
    print("(others' CPU: the most that processes outside the bench used during one of the "
          "target's rounds, in % of one CPU)")
    print()
    rr = results.get("wharf round_robin", {})
    if isinstance(rr.get("req_per_s_spread_pct"), float):
        print(f"noise: Wharf's round_robin rounds, the same thing measured {len(rr['rounds'])} "
              f"times, spread by {rr['req_per_s_spread_pct']:.0f}% (req/s); host slowdowns "
              f"only add time, so the verdict uses each target's best round")
    missed = [k for k, v in report["wharf_vs_round_robin"].items() if v["met"] is False]
    print(f"target: {report['target']}: " + (
        f"MISSED by {', '.join(missed)}" if missed else "met" if report["wharf_vs_round_robin"]
        else "not measured"))
    for tool, t in tools.items():
        if "error" in t:
            print(f"\n{tool}: FAILED: {t['error']}")
        if t.get("problems"):
            print(f"\n{tool} problems:\n  " + "\n  ".join(t["problems"]))
    for name, r in results.items():
        if r.get("problems"):
            print(f"\n{name} problems:\n  " + "\n  ".join(r["problems"]))
    if report.get("upstream_problems"):
        print("\nbackend nginx problems:\n  " + "\n  ".join(report["upstream_problems"]))
    disturbed = [f"{name} round {d['round']} ({d['foreign_cpu_pct']:.0f}%)"
                 for name, r in results.items() for d in r.get("disturbed_rounds", [])]
    if disturbed:
        print(f"\nrepeated once, as other processes used more than {FOREIGN_LIMIT:.0f}% of a "
              f"CPU (the repeat is kept): " + ", ".join(disturbed))
    still = [f"{name} round {d['round']} ({d['foreign_cpu_pct']:.0f}%)"
             for name, r in results.items() for d in r["rounds"]
             if d["foreign_cpu_pct"] > FOREIGN_LIMIT]
    if still:
        print(f"\nSTILL DISTURBED (other processes > {FOREIGN_LIMIT:.0f}% of a CPU; kept, "
              f"figures unreliable): " + ", ".join(still))
    for note in [*STRATEGY_NOTES, *report["notes"]]:
        print(f"\nnote: {note}")
    print(f"\nsaved to {STRATEGY_RESULTS_FILE.relative_to(ROOT)}")


def run_strategies(args: argparse.Namespace) -> int:
    """--strategies: install, measure, print, save."""
    started = time.monotonic()
    become_subreaper()
    trap_signals()
    signal.alarm(STRATEGY_BUDGET)
    raise_fd_limit()
    reason = apt_install(["nginx", "wrk"], ["nginx", "wrk", "taskset"],
                         timeout=max(30.0, STRATEGY_BUDGET - 150))
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    notes = system_services()
    pinned, pinning = pinning_info()
    workdir = Path(tempfile.mkdtemp(prefix="wbs-"))
    bench = StrategyBench(args, workdir, pinned)
    bench.deadline = started + STRATEGY_BUDGET - 30

    def strategies_failed(error: str) -> None:
        for info in bench.tool_info.values():
            info.setdefault("error", error)

    run_and_clean_up(bench, workdir, notes, strategies_failed)
    notes += bench.notes + bench.interference_notes()
    report = strategy_report(bench, args, pinning, notes, time.monotonic() - started)
    write_json(STRATEGY_RESULTS_FILE, report)
    print_strategy_report(report)
    return 1 if any("error" in t for t in bench.tool_info.values()) else 0



# -- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--only, --duration, --rounds, --connections, --idle, --skip-idle, --strategies."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", action="store_true",
                        help="only the load-balancing strategies benchmark: Wharf with 4 "
                             "backends per strategy, beside nginx's matching directives")
    parser.add_argument("--only", default=None,
                        help="comma-separated proxies to run (default: wharf,nginx,haproxy; "
                             "with --strategies: wharf,nginx); wharf-metrics is Wharf with "
                             "/metrics on, for its cost beside wharf")
    parser.add_argument("--duration", type=int, default=None,
                        help="seconds of each measured wrk round (default 10; with "
                             f"--strategies {STRATEGY_DURATION})")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per proxy (default 3)")
    parser.add_argument("--connections", type=int, default=50,
                        help="wrk connections (default 50)")
    parser.add_argument("--idle", type=int, default=IDLE_CONNECTIONS,
                        help=f"idle keep-alive connections (default {IDLE_CONNECTIONS})")
    parser.add_argument("--skip-idle", action="store_true",
                        help="skip the memory-per-idle-connection measurement")
    args = parser.parse_args(argv)
    tools = STRATEGY_TOOLS if args.strategies else TOOLS
    if args.duration is None:
        args.duration = STRATEGY_DURATION if args.strategies else 10
    if args.only is None:
        args.only = ",".join(tools)
    # wharf-metrics (Wharf with /metrics on) is there when asked for: its cost beside wharf
    args.tools = selected_tools(parser, args.only,
                                tools if args.strategies else (*tools, "wharf-metrics"))
    if args.strategies:
        if "wharf" not in args.tools:
            parser.error("--strategies needs wharf in --only")
        if not (1 <= args.duration <= 60 and 1 <= args.rounds <= 10
                and 1 <= args.connections <= 1000):
            parser.error("limits: --duration 1-60, --rounds 1-10, --connections 1-1000")
        targets = len(STRATEGIES) + (len(NGINX_METHODS) if "nginx" in args.tools else 0)
        estimate = 20 + targets * (STRATEGY_WARMUP + 1) + \
            args.rounds * targets * (args.duration + 0.5)
        if estimate > STRATEGY_BUDGET - 20:
            parser.error(f"that would take about {estimate:.0f} s; the budget is "
                         f"{STRATEGY_BUDGET} s: lower --duration or --rounds")
        return args
    if not (1 <= args.duration <= 60 and 1 <= args.rounds <= 10
            and 1 <= args.connections <= 1000 and 1 <= args.idle <= 8000):
        parser.error("limits: --duration 1-60, --rounds 1-10, --connections 1-1000, "
                     "--idle 1-8000")
    per_proxy = 8 + WARMUP + args.rounds * (args.duration + 1) + (0 if args.skip_idle else 12)
    if len(args.tools) * per_proxy + 15 > BUDGET - 45:
        parser.error(f"that would take about {len(args.tools) * per_proxy + 15} s; the budget "
                     f"is {BUDGET} s: lower --duration or --rounds")
    return args


def ensure_tools(deadline: float) -> str | None:
    """Install nginx, haproxy and wrk when missing; the reason they are not there, or None."""
    remaining = max(30.0, deadline - time.monotonic() - 150)
    return apt_install(["nginx", "haproxy", "wrk"], ["nginx", "haproxy", "wrk", "taskset"],
                       timeout=remaining)


def system_services() -> list[str]:
    """Debian's own nginx or haproxy, if running (noted, never touched)."""
    found = []
    for name, pidfile in (("nginx", "/run/nginx.pid"), ("haproxy", "/run/haproxy.pid")):
        with contextlib.suppress(OSError, ValueError):
            pid = int(Path(pidfile).read_text().split()[0])
            if alive(pid):
                found.append(f"Debian's own {name} service is running (pid {pid}, "
                             f"{pidfile}); left alone")
    return found


def pinning_info() -> tuple[bool, dict[str, Any]]:
    """Whether CPUs 0 and 1 are ours to pin to, and how pinning is done."""
    ok = {LOAD_CPU, PROXY_CPU} <= os.sched_getaffinity(0)
    summary = (f"proxy worker on CPU {PROXY_CPU}; upstream nginx + wrk on CPU {LOAD_CPU}; "
               f"Wharf daemon and nginx master unpinned") if ok else \
        "off (CPUs 0 and 1 are not both available)"
    return ok, {"enabled": ok, "proxy_cpu": PROXY_CPU if ok else None,
                "load_cpu": LOAD_CPU if ok else None, "summary": summary}


def wrk_version() -> str:
    """wrk's version line ("wrk debian/4.1.0-3+b2 [epoll]")."""
    done = run(["wrk", "-v"], check=False)
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].split("Copyright")[0].strip() if lines else "wrk ?"


def build_report(bench: Bench, args: argparse.Namespace, pinning: dict[str, Any],
                 notes: list[str], elapsed: float) -> dict[str, Any]:
    """Everything measured, as one JSON-able dict."""
    for result in bench.results.values():
        summarize(result)
    return {
        "machine": machine_info(), "wrk_version": wrk_version(),
        "settings": {"duration_s": args.duration, "rounds": args.rounds,
                     "connections": args.connections, "warmup_s": WARMUP,
                     "idle_connections": 0 if args.skip_idle else args.idle,
                     "upstream_pool": POOL},
        "pinning": pinning, "duration_s": round(elapsed, 1), "results": bench.results,
        "ratios": {f"wharf/{t}": {k: ratio(bench.results, t, k) for k, _, _, c in ROWS if c}
                   for t in args.tools if t != "wharf" and "wharf" in args.tools},
        "targets": targets(bench.results),
        "upstream_problems": bench.upstream_problems, "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    """Install, measure, print, save."""
    args = parse_args(argv)
    if args.strategies:
        return run_strategies(args)
    started = time.monotonic()
    deadline = started + BUDGET
    become_subreaper()
    trap_signals()
    signal.alarm(BUDGET)
    limit = raise_fd_limit()
    if limit < args.idle + 1024 and not args.skip_idle:
        print(f"error: RLIMIT_NOFILE is {limit}; {args.idle} idle connections need more",
              file=sys.stderr)
        return 2
    reason = ensure_tools(deadline)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    notes = system_services()
    pinned, pinning = pinning_info()
    workdir = Path(tempfile.mkdtemp(prefix="wbp-"))
    bench = Bench(args, workdir, pinned)
    def proxies_failed(error: str) -> None:
        for result in bench.results.values():
            result.setdefault("error", error)

    run_and_clean_up(bench, workdir, notes, proxies_failed)
    notes += bench.notes
    report = build_report(bench, args, pinning, notes, time.monotonic() - started)
    write_json(RESULTS_FILE, report)
    print_report(report, args.tools)
    return 1 if any("error" in r for r in bench.results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
