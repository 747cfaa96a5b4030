"""Benchmark Wharf's HTTPS against nginx and HAProxy, on this machine, in one run.

The harness of `bench/proxy.py` (its upstream nginx, pinning, wrk rounds and CPU accounting,
reused from there), with TLS on the client side of every proxy. One certificate for all three:
ECDSA P-256, issued in the run by a throwaway P-256 CA (`wharf.testing.certs`). Each proxy:
TLS 1.2 and 1.3, session tickets on, HTTP/1.1, one worker pinned to CPU 1:

- Wharf: `listen_tls`, `[tls] certificates = [...]`, `workers = 1`.
- nginx: `listen ... ssl`, `ssl_protocols TLSv1.2 TLSv1.3`, `ssl_session_tickets on`, the
  same upstream block with `keepalive 64` as bench/proxy.py.
- HAProxy: `bind ... ssl crt PEM alpn http/1.1`, `ssl-min-ver TLSv1.2`.

Three measurements:
1. Keep-alive HTTPS: `taskset -c 0 wrk -t1 -c50 -d10s https://127.0.0.1:PORT/` (wrk does TLS
   1.3 with SNI-less keep-alive connections), N rounds alternating; req/s and proxy CPU per
   request as in bench/proxy.py.
2. New TLS connections: `openssl s_time -new -connect 127.0.0.1:PORT -www /` (a full
   handshake per connection, no resumption, then one HTTP/1.0 request and its answer), run as
   4 parallel processes on CPU 0 for the round's duration; connections per second (their
   sum) and proxy CPU per handshake (proxy CPU time / connections).
3. Resumption across workers: Wharf with two workers (not pinned); a Python client makes one
   full handshake, keeps its TLS 1.3 session, and makes 200 new connections offering it (the
   kernel's SO_REUSEPORT hash spreads them over both workers); the share that resumed
   (`SSLSocket.session_reused`). The same for nginx with two workers.

Each proxy sends its own default number of TLS 1.3 session tickets per full handshake
(printed): Wharf one, as Go's servers do; nginx and HAProxy OpenSSL's two. `--nginx-tickets 1`
makes nginx send one too (`ssl_conf_command NumTickets 1`), to compare like with like.

Run: `python bench/tls.py [--only wharf,nginx] [--duration 10] [--rounds 3]
[--nginx-tickets N]`; results in bench/results/tls.json.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    RESULTS_DIR,
    ROOT,
    BenchError,
    become_subreaper,
    format_table,
    free_port,
    machine_info,
    raise_fd_limit,
    run_and_clean_up,
    selected_tools,
    trap_signals,
    wait_serving,
    write_json,
)
from proxy import (
    BODY,
    START_TIMEOUT,
    TOOLS,
    Bench,
    HaproxyProxy,
    NginxProxy,
    Proxy,
    WharfProxy,
    cpu_of,
    ensure_tools,
    pinning_info,
    summarize,
    system_services,
    taskset,
    wrk_version,
)

sys.path.insert(0, str(ROOT))
from wharf.testing.certs import TestCA

RESULTS_FILE = RESULTS_DIR / "tls.json"
BUDGET = 400
S_TIME_CLIENTS = 4  # parallel `openssl s_time` processes: one alone leaves the proxy idle
RESUME_ATTEMPTS = 200
NAME = "bench.test"


class Certs:
    """The one certificate every proxy serves, and a client context that trusts it."""

    def __init__(self, workdir: Path) -> None:
        ca = TestCA("Wharf bench CA")
        chain, key = ca.issue([NAME, "127.0.0.1"])
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = workdir / "cert.pem", workdir / "key.pem"
        self.combined = workdir / "combined.pem"  # HAProxy's crt: chain and key in one file
        self.cert.write_text(chain)
        self.key.write_text(key)
        self.combined.write_text(chain + key)
        for path in (self.cert, self.key, self.combined):
            path.chmod(0o644)  # nginx's master reads them as root; fine for a throwaway key
        self.client = ssl.create_default_context(cadata=ca.cert_pem)
        self.client.check_hostname = False


CERTS: Certs | None = None  # made in main(), before any proxy starts
NGINX_TICKETS: int | None = None  # --nginx-tickets: else OpenSSL's default (2)


def certs() -> Certs:
    """The run's certificate."""
    assert CERTS is not None
    return CERTS


class TlsWharf(WharfProxy):
    """Wharf with one HTTPS listener and no plain one."""

    scheme = "https"

    def listen_toml(self) -> str:
        return f"listen = []\nlisten_tls = [\"127.0.0.1:{self.port}\"]"

    def routes_toml(self) -> str:
        c = certs()
        return (f"[tls]\ncertificates = [{{ cert = {json.dumps(str(c.cert))}, "
                f"key = {json.dumps(str(c.key))} }}]\n\n{super().routes_toml()}")

    def wait_ready(self, what: str, log: Path | None) -> None:
        wait_serving(self.port, what, BODY, START_TIMEOUT, log, tls=certs().client)


class TlsNginx(NginxProxy):
    """nginx terminating TLS in front of the same upstream block."""

    scheme = "https"

    def http(self) -> str:
        c = certs()
        plain = super().http()
        return plain.replace(
            f"listen 127.0.0.1:{self.port};",
            f"listen 127.0.0.1:{self.port} ssl;\n"
            f"        ssl_certificate {c.cert};\n        ssl_certificate_key {c.key};\n"
            f"        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_tickets on;"
            + (f"\n        ssl_conf_command NumTickets {NGINX_TICKETS};"
               if NGINX_TICKETS is not None else ""))

    def wait_ready(self, what: str, log: Path | None) -> None:
        wait_serving(self.port, what, BODY, START_TIMEOUT, log, tls=certs().client)


class TlsHaproxy(HaproxyProxy):
    """HAProxy terminating TLS."""

    scheme = "https"

    def config(self) -> str:
        return super().config().replace(
            f"bind 127.0.0.1:{self.port}",
            f"bind 127.0.0.1:{self.port} ssl crt {certs().combined} alpn http/1.1 "
            f"ssl-min-ver TLSv1.2")

    def wait_ready(self, what: str, log: Path | None) -> None:
        wait_serving(self.port, what, BODY, START_TIMEOUT, log, tls=certs().client)


TLS_PROXIES: dict[str, type[Proxy]] = {"wharf": TlsWharf, "nginx": TlsNginx,
                                       "haproxy": TlsHaproxy}

S_TIME = re.compile(r"(\d+) connections in ([\d.]+)s")


def s_time(port: int, seconds: int, cpu: int | None) -> tuple[int, float]:
    """`openssl s_time -new` from S_TIME_CLIENTS processes at once: (connections, seconds)."""
    argv = [*taskset(cpu), "openssl", "s_time", "-new", "-connect", f"127.0.0.1:{port}",
            "-www", "/", "-time", str(seconds)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(S_TIME_CLIENTS)]
    total, wall = 0, 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 30)
        found = S_TIME.findall(out)
        if not found:
            raise BenchError(f"openssl s_time said: {out.strip()[-300:]}")
        connections, elapsed = found[0]  # the first line: the -new run
        total += int(connections)
        wall = max(wall, float(elapsed))
    return total, wall


def handshake_round(proxy: Proxy, seconds: int, cpu: int | None) -> dict[str, Any]:
    """New TLS connections through `proxy` for `seconds`; proxy CPU per handshake."""
    proxy.check()
    pids = proxy.cpu_pids()
    before = cpu_of(pids)
    start = time.perf_counter()
    count, _ = s_time(proxy.port, seconds, cpu)
    wall = time.perf_counter() - start
    used = cpu_of(pids) - before
    proxy.check()
    return {"connections": count, "conn_per_s": count / wall, "cpu_s": round(used, 3),
            "cpu_us_per_handshake": used / count * 1e6 if count else None}


def resumed_share(port: int, attempts: int) -> dict[str, Any]:
    """One full handshake, then `attempts` connections offering its session: share resumed."""
    ctx = certs().client
    session, reused = None, 0
    for i in range(attempts + 1):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=NAME, session=session) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            while tls.recv(65536):
                pass
            if i == 0:
                session = tls.session  # TLS 1.3: the ticket came after the handshake
            elif tls.session_reused:
                reused += 1
    return {"attempts": attempts, "resumed": reused, "share": reused / attempts}


NEGOTIATED = {"protocol": re.compile(r"^New, (\S+), Cipher is (\S+)", re.M),
              "key_exchange": re.compile(r"^Server Temp Key: ([^\n]+)", re.M),
              "signature": re.compile(r"^Peer signature type: (\S+)", re.M)}


def negotiated(port: int) -> dict[str, Any]:
    """What `openssl s_client` (the library wrk and s_time use, its defaults) gets from the
    proxy: protocol, cipher, key exchange, signature, session tickets sent per handshake."""
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                           "-servername", NAME, "-ign_eof"], capture_output=True, text=True,
                          input="GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
                          timeout=10)
    out = done.stdout + done.stderr
    found: dict[str, Any] = {key: (m.group(1) if m else None)
                             for key, m in ((k, r.search(out)) for k, r in NEGOTIATED.items())}
    cipher = NEGOTIATED["protocol"].search(out)
    found["cipher"] = cipher.group(2) if cipher else None
    found["tickets"] = out.count("Post-Handshake New Session Ticket arrived")
    return found


class TlsBench(Bench):
    """bench/proxy.py's Bench with TLS proxies, handshake rounds and the resumption check."""

    def new_proxy(self, name: str, workdir: Path, port: int) -> Proxy:
        return TLS_PROXIES[name](workdir, port, self.upstream_port, 100)

    def start_proxy(self, name: str) -> None:
        super().start_proxy(name)
        self.results[name]["negotiated"] = negotiated(self.proxies[name].port)

    def handshakes(self) -> None:
        """New-connection rounds, alternating over the proxies."""
        for number in range(1, self.args.rounds + 1):
            for name, proxy in list(self.proxies.items()):
                self.say(f"[{name}] handshake round {number}/{self.args.rounds}: "
                         f"{S_TIME_CLIENTS} x openssl s_time -new -time {self.args.duration}")
                try:
                    found = handshake_round(proxy, self.args.duration, self.load_cpu)
                except BenchError as exc:
                    self.results[name]["problems"].append(f"handshake round {number}: {exc}")
                    continue
                self.results[name].setdefault("handshake_rounds", []).append(found)

    def resumption(self) -> None:
        """Two-worker Wharf and nginx: the share of resumptions that succeed."""
        for name in [n for n in ("wharf", "nginx") if n in self.args.tools]:
            proxy = self.proxies.pop(name, None)
            if proxy is not None:
                self.retire(name, proxy)
            workdir = self.workdir / f"{name}-resume"
            two = TwoWorkerWharf if name == "wharf" else TwoWorkerNginx
            p = two(workdir, free_port(), self.upstream_port, 100)
            self.proxies[name] = p
            self.say(f"[{name}] two workers: {RESUME_ATTEMPTS} resumptions")
            try:
                p.start()
                self.results[name]["resumption"] = resumed_share(p.port, RESUME_ATTEMPTS)
            except (BenchError, OSError) as exc:
                self.results[name]["problems"].append(f"resumption: {exc}")

    def run(self) -> None:
        super().run()
        self.handshakes()
        self.resumption()


class TwoWorkerWharf(TlsWharf):
    """Wharf with `workers = 2`."""

    workers = 2


class TwoWorkerNginx(TlsNginx):
    """nginx with `worker_processes 2`."""

    def __init__(self, workdir: Path, port: int, upstream: int, idle: int) -> None:
        super().__init__(workdir, port, upstream, idle)
        self.nginx.workers = 2


def main(argv: list[str] | None = None) -> int:
    """Install, measure, print, save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(TOOLS))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--nginx-tickets", type=int,
                        help="session tickets nginx sends per full handshake (ssl_conf_command "
                             "NumTickets; OpenSSL's default is 2, Wharf sends 1)")
    args = parser.parse_args(argv)
    args.tools = selected_tools(parser, args.only, TOOLS)
    args.skip_idle, args.idle = True, 100
    global CERTS, NGINX_TICKETS
    NGINX_TICKETS = args.nginx_tickets
    started = time.monotonic()
    become_subreaper()
    trap_signals()
    raise_fd_limit()
    reason = ensure_tools(started + BUDGET)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    notes = system_services()
    pinned, pinning = pinning_info()
    workdir = Path(tempfile.mkdtemp(prefix="wbt-"))
    CERTS = Certs(workdir / "certs")
    bench = TlsBench(args, workdir, pinned)
    run_and_clean_up(bench, workdir, notes, lambda e: None)
    report = build_report(bench, args, pinning, notes + bench.notes,
                          time.monotonic() - started)
    write_json(RESULTS_FILE, report)
    print_report(report, args.tools)
    return 1 if any("error" in r for r in bench.results.values()) else 0


def build_report(bench: TlsBench, args: argparse.Namespace, pinning: dict[str, Any],
                 notes: list[str], elapsed: float) -> dict[str, Any]:
    """Medians, ratios to nginx and HAProxy, targets."""
    for result in bench.results.values():
        summarize(result)
        hs = result.get("handshake_rounds") or []
        for key in ("conn_per_s", "cpu_us_per_handshake"):
            values = [r[key] for r in hs if isinstance(r.get(key), int | float)]
            result[key] = statistics.median(values) if values else None
        result["resumed_share"] = (result.get("resumption") or {}).get("share")
    return {"machine": machine_info(), "wrk_version": wrk_version(),
            "settings": {"duration_s": args.duration, "rounds": args.rounds,
                         "connections": args.connections, "s_time_clients": S_TIME_CLIENTS,
                         "resume_attempts": RESUME_ATTEMPTS, "nginx_tickets": args.nginx_tickets},
            "pinning": pinning, "duration_s": round(elapsed, 1), "results": bench.results,
            "notes": notes}


ROWS = (("req_per_s", "keep-alive HTTPS requests/s", "{:.0f}"),
        ("cpu_us_per_req", "proxy CPU per request (us)", "{:.1f}"),
        ("p99_ms", "latency p99 (ms)", "{:.2f}"),
        ("conn_per_s", "new TLS connections/s", "{:.0f}"),
        ("cpu_us_per_handshake", "proxy CPU per handshake (us)", "{:.0f}"),
        ("resumed_share", "resumed across 2 workers", "{:.0%}"))


def ratio_of(results: dict[str, dict[str, Any]], other: str, key: str) -> float | None:
    """Wharf's figure over `other`'s."""
    mine, theirs = results.get("wharf", {}).get(key), results.get(other, {}).get(key)
    ok = isinstance(mine, int | float) and isinstance(theirs, int | float) and theirs
    return float(mine) / float(theirs) if ok else None  # type: ignore[arg-type]


def print_report(report: dict[str, Any], tools: list[str]) -> None:
    """The table, the ratios and the targets."""
    results = report["results"]
    others = [t for t in tools if t != "wharf"] if "wharf" in tools else []
    rows = []
    for key, label, fmt in ROWS:
        cells = [label]
        for tool in tools:
            value = results.get(tool, {}).get(key)
            cells.append(fmt.format(value) if isinstance(value, int | float) else "n/a")
        for other in others:
            r = ratio_of(results, other, key)
            cells.append(f"x{r:.2f}" if r is not None else "n/a")
        rows.append(cells)
    print(f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}; "
          f"{report['wrk_version']}; pinning: {report['pinning']['summary']}\n")
    print(format_table(["metric (median of rounds)", *tools, *(f"wharf/{t}" for t in others)],
                       rows))
    checks = [("req/s >= 0.8 x nginx", ratio_of(results, "nginx", "req_per_s"),
               lambda v: v >= 0.8),
              ("CPU/request <= 1.25 x nginx", ratio_of(results, "nginx", "cpu_us_per_req"),
               lambda v: v <= 1.25),
              ("CPU/handshake <= 1.2 x nginx",
               ratio_of(results, "nginx", "cpu_us_per_handshake"), lambda v: v <= 1.2),
              ("resumed across workers = 100 %",
               results.get("wharf", {}).get("resumed_share"), lambda v: v >= 1.0)]
    print()
    for tool in tools:
        n = results.get(tool, {}).get("negotiated") or {}
        print(f"{tool} negotiated: {n.get('protocol')} {n.get('cipher')}, "
              f"{n.get('key_exchange')}, {n.get('signature')}, {n.get('tickets')} tickets")
    print()
    for label, value, ok in checks:
        verdict = "not measured" if value is None else "met" if ok(value) else "MISSED"
        shown = "n/a" if value is None else f"{value:.2f}"
        print(f"target wharf {label}: {shown} -> {verdict}")
    for name in tools:
        if results[name].get("problems"):
            print(f"\n{name} problems:\n  " + "\n  ".join(results[name]["problems"]))
    for note in report["notes"]:
        print(f"\nnote: {note}")
    print(f"\nsaved to {RESULTS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
