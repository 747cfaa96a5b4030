"""Benchmark Wharf over a TCP upstream against Wharf over a Unix-socket upstream, and nginx the
same, in one run.

The setup is bench/proxy.py's, reused (its classes, one worker per proxy, pinning, wrk rounds,
CPU per request): one upstream nginx answering `GET /` with "hello world\\n" listens on
127.0.0.1:PORT and on a Unix socket (`listen unix:PATH`) at once, so both kinds of upstream
are the same server. Four proxies run side by side, each with keep-alive to the upstream (a
pool of 64):

- wharf: `servers = ["127.0.0.1:PORT"]`;   wharf-unix: `servers = ["unix:PATH"]`
- nginx: `server 127.0.0.1:PORT;`          nginx-unix: `server unix:PATH;`

N rounds (default 3) alternate over the four (`taskset -c 0 wrk -t1 -c50 -d10s --latency`),
after a 2 s warm-up each; medians of the rounds are reported. The machine is shared and noisy,
so only ratios within this one run mean something: unix/tcp for each proxy, and wharf/nginx
for each kind of upstream. No idle-connection memory here (bench/proxy.py measures it).

Run: .venv/bin/python bench/unix.py [--duration 10] [--rounds 3] [--connections 50]
Prints the table and writes every round to bench/results/unix.json.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    RESULTS_DIR,
    BenchError,
    become_subreaper,
    format_table,
    machine_info,
    run_and_clean_up,
    trap_signals,
    wait_until,
    write_json,
)
from proxy import (
    START_TIMEOUT,
    Bench,
    Nginx,
    NginxProxy,
    Proxy,
    WharfProxy,
    ensure_tools,
    pinning_info,
    summarize,
    system_services,
    upstream_http,
    wrk_version,
)

RESULTS_FILE = RESULTS_DIR / "unix.json"
TOOLS = ["wharf", "wharf-unix", "nginx", "nginx-unix"]
BUDGET = 300  # seconds for the whole run, installs included
ROWS = (("req_per_s", "requests/s (higher is better)", "{:.0f}"),
        ("p50_ms", "latency p50 (ms)", "{:.2f}"),
        ("p99_ms", "latency p99 (ms)", "{:.2f}"),
        ("cpu_us_per_req", "proxy CPU per request (us)", "{:.1f}"))
RATIOS = (("wharf-unix", "wharf"), ("nginx-unix", "nginx"), ("wharf", "nginx"),
          ("wharf-unix", "nginx-unix"))


def over_unix(base: type[Proxy], socket: Path) -> type[Proxy]:
    """`base`, sending to the upstream's Unix socket instead of its TCP port."""
    class OverUnix(base):  # type: ignore[valid-type, misc]
        name = f"{base.name}-unix"

        def upstream_address(self) -> str:
            return f"unix:{socket}"

    return OverUnix


class UnixUpstream(Nginx):
    """The upstream nginx, its Unix socket opened to the proxies (the nginx proxy's worker
    runs as nobody; nginx gives a socket the umask's mode)."""

    def __init__(self, workdir: Path, port: int, socket: Path, cpu: int | None) -> None:
        super().__init__(workdir, upstream_http(port, socket), cpu=cpu)
        self.socket = socket

    def start(self) -> None:
        super().start()
        wait_until(self.socket.exists, START_TIMEOUT, "the upstream's Unix socket")
        self.socket.chmod(0o666)


class UnixBench(Bench):
    """bench/proxy.py's Bench, with the four proxies of this comparison."""

    def __init__(self, args: argparse.Namespace, workdir: Path, pinning: bool) -> None:
        super().__init__(args, workdir, pinning)
        workdir.chmod(0o755)  # for the nginx proxy's worker, to reach the socket
        socket = workdir / "upstream" / "up.sock"
        self.upstream = UnixUpstream(workdir / "upstream", self.upstream_port, socket,
                                     self.load_cpu)
        self.kinds: dict[str, type[Proxy]] = {
            "wharf": WharfProxy, "nginx": NginxProxy,
            "wharf-unix": over_unix(WharfProxy, socket),
            "nginx-unix": over_unix(NginxProxy, socket)}

    def new_proxy(self, name: str, workdir: Path, port: int) -> Proxy:
        return self.kinds[name](workdir, port, self.upstream_port, self.args.idle)


def ratio(results: dict[str, dict[str, Any]], mine: str, other: str, key: str) -> float | None:
    """`mine`'s median divided by `other`'s, when both exist."""
    a, b = results.get(mine, {}).get(key), results.get(other, {}).get(key)
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b <= 0:
        return None
    return float(a) / b


def print_report(report: dict[str, Any]) -> None:
    """The medians, the ratios, problems."""
    results, s = report["results"], report["settings"]
    print(f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}; "
          f"{report['wrk_version']}; wrk -t1 -c{s['connections']} -d{s['duration_s']}s, "
          f"{s['rounds']} rounds; pinning: {report['pinning']['summary']}\n")
    header = ["metric (median of rounds)", *TOOLS, *(f"{a}/{b}" for a, b in RATIOS)]
    rows = []
    for key, label, fmt in ROWS:
        values = [results[t].get(key) for t in TOOLS]
        ratios = [ratio(results, a, b, key) for a, b in RATIOS]
        rows.append([label, *(fmt.format(v) if isinstance(v, int | float) else "n/a"
                              for v in values),
                     *(f"x{r:.2f}" if r is not None else "n/a" for r in ratios)])
    print(format_table(header, rows))
    for name in TOOLS:
        if "error" in results[name]:
            print(f"\n{name}: FAILED: {results[name]['error']}")
        if results[name].get("problems"):
            print(f"\n{name} problems:\n  " + "\n  ".join(results[name]["problems"]))
    if report["upstream_problems"]:
        print("\nupstream nginx problems:\n  " + "\n  ".join(report["upstream_problems"]))
    for note in report["notes"]:
        print(f"\nnote: {note}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--duration, --rounds, --connections."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per proxy")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    args = parser.parse_args(argv)
    per_proxy = 10 + args.rounds * (args.duration + 1)
    if not (1 <= args.duration <= 30 and 1 <= args.rounds <= 10
            and 1 <= args.connections <= 1000) or len(TOOLS) * per_proxy > BUDGET - 60:
        parser.error(f"limits: --duration 1-30, --rounds 1-10, --connections 1-1000, and "
                     f"about {BUDGET - 60} s in all")
    args.tools, args.idle, args.skip_idle = list(TOOLS), 0, True
    return args


def main(argv: list[str] | None = None) -> int:
    """Install what is missing, measure, print, save."""
    args = parse_args(argv)
    started = time.monotonic()
    become_subreaper()
    trap_signals()
    signal.alarm(BUDGET)
    reason = ensure_tools(started + BUDGET)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    notes = system_services()
    pinned, pinning = pinning_info()
    workdir = Path(tempfile.mkdtemp(prefix="wbu-"))
    bench = UnixBench(args, workdir, pinned)

    def proxies_failed(error: str) -> None:
        for result in bench.results.values():
            result.setdefault("error", error)

    run_and_clean_up(bench, workdir, notes, proxies_failed)
    for result in bench.results.values():
        summarize(result)
    report = {
        "machine": machine_info(), "wrk_version": wrk_version(), "pinning": pinning,
        "settings": {"duration_s": args.duration, "rounds": args.rounds,
                     "connections": args.connections},
        "duration_s": round(time.monotonic() - started, 1), "results": bench.results,
        "ratios": {f"{a}/{b}": {k: ratio(bench.results, a, b, k) for k, _, _ in ROWS}
                   for a, b in RATIOS},
        "upstream_problems": bench.upstream_problems, "notes": notes + bench.notes}
    write_json(RESULTS_FILE, report)
    print_report(report)
    print(f"\nsaved to {RESULTS_FILE}")
    return 1 if any("error" in r for r in bench.results.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
