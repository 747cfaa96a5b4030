"""Hardware counters per request: Wharf's worker against nginx's, plain HTTP and HTTPS.

Wall-clock CPU time (bench/proxy.py, bench/tls.py) moves with whatever else runs on the
machine; the number of instructions a worker retires per request hardly does, and its cycles
per request move much less than its CPU time. This script runs bench/proxy.py's set-up (one
upstream nginx on CPU 0 with wrk, each proxy's one worker on CPU 1, keep-alive pools of 64)
with up to four proxies at once - `wharf` and `nginx` (plain HTTP, bench/proxy.py's configs)
and `wharf-tls` and `nginx-tls` (bench/tls.py's configs, one ECDSA P-256 certificate) - and,
in N rounds alternating between them:

    perf stat -e instructions:u,cycles:u,instructions:k,cycles:k -p WORKER   # around
    taskset -c 0 wrk -t1 -c50 -dDs URL

then divides each count by the requests wrk completed, and so the worker's user and system
CPU time over the run (/proc/PID/stat). Where the machine has no hardware counters (a VM
without a virtual PMU: `perf stat` says `<not supported>`), only the CPU times are reported.
Medians of the rounds, and each figure divided by nginx's of the same scheme, are printed (and
saved to bench/results/counters.json).

`--record DIR`: after the rounds, one more wrk run per Wharf worker under
`perf record -g -p WORKER -o DIR/NAME.data` (then `perf report -i DIR/wharf.data
--no-children --sort dso,sym`; mypyc's C functions are named CPyDef_module___Class___method).

Run: python bench/counters.py [--only wharf,nginx,wharf-tls,nginx-tls] [--duration 5]
     [--rounds 3] [--connections 50] [--record DIR]
Needs perf (linux-perf) and the right to count the worker's kernel events (root, or
kernel.perf_event_paranoid <= 1). Every process it starts is stopped by pid.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tls
from common import (
    CLOCK_TICKS,
    RESULTS_DIR,
    BenchError,
    _stat_fields,
    become_subreaper,
    format_table,
    raise_fd_limit,
    run_and_clean_up,
    selected_tools,
    trap_signals,
    write_json,
)
from proxy import (
    Bench,
    NginxProxy,
    Proxy,
    WharfProxy,
    ensure_tools,
    parse_wrk,
    pinning_info,
    wrk,
)

RESULTS_FILE = RESULTS_DIR / "counters.json"
TOOLS = ("wharf", "nginx", "wharf-tls", "nginx-tls")
EVENTS = ("instructions:u", "cycles:u", "instructions:k", "cycles:k")
TIMES = ("user_us", "sys_us")
KINDS: dict[str, type[Proxy]] = {"wharf": WharfProxy, "nginx": NginxProxy,
                                 "wharf-tls": tls.TlsWharf, "nginx-tls": tls.TlsNginx}


def has_counters() -> bool:
    """True if perf can count EVENTS here (not in a VM without a virtual PMU)."""
    done = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), "--", "true"],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0 and "<not supported>" not in done.stderr


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of `pid` (all its threads)."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 13:
        raise BenchError(f"no CPU times for pid {pid} (gone?)")
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def perf_stat(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """`perf stat` counting EVENTS of `pid` (all its threads) until SIGINT."""
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(out),
                             "-e", ",".join(EVENTS), "-p", str(pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def read_stat(path: Path) -> dict[str, int]:
    """The counts of a `perf stat -x ,` output file (value, unit, event, ...)."""
    found = {}
    for line in path.read_text().splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[2] in EVENTS:
            if not fields[0].isdigit():
                raise BenchError(f"perf could not count {fields[2]}: {fields[0]}")
            found[fields[2]] = int(fields[0])
    missing = [e for e in EVENTS if e not in found]
    if missing:
        raise BenchError(f"perf stat gave no {', '.join(missing)}: {path.read_text()[-300:]}")
    return found


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a perf we started: SIGINT makes it write its counts (or the recording) and exit."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class CounterBench(Bench):
    """bench/proxy.py's upstream and proxies, measured with perf instead of /proc times."""

    def new_proxy(self, name: str, workdir: Path, port: int) -> Proxy:
        return KINDS[name](workdir, port, self.upstream_port, self.args.idle)

    def worker(self, name: str) -> int:
        """The one process whose events are counted: the proxy's serving worker."""
        return self.proxies[name].serving_pids()[0]

    def rounds(self) -> None:
        for number in range(1, self.args.rounds + 1):
            for name in self.args.tools:
                if name not in self.proxies:
                    continue
                self.say(f"[{name}] round {number}/{self.args.rounds}")
                try:
                    self.results[name]["rounds"].append(self.counted_round(name, number))
                except BenchError as exc:
                    self.fail(name, exc)

    def counted_round(self, name: str, number: int) -> dict[str, Any]:
        """One wrk run with perf stat around it; counts per request."""
        proxy = self.proxies[name]
        proxy.check()
        out = self.workdir / f"{name}-{number}.stat"
        worker = self.worker(name)
        perf = perf_stat(worker, out) if self.args.counters else None
        time.sleep(0.2)  # perf attaches before the load starts
        user, system = cpu_times(worker)
        try:
            text = wrk(proxy.port, self.args.duration, self.args.connections, self.load_cpu,
                       scheme=proxy.scheme)
        finally:
            user_after, system_after = cpu_times(worker)
            if perf is not None:
                stop(perf)
        proxy.check()
        found = parse_wrk(text)
        requests = found["requests"]
        if not requests:
            raise BenchError("wrk completed no request")
        counts = read_stat(out) if perf is not None else {}
        return {"requests": requests, "req_per_s": found["req_per_s"],
                "non_2xx_3xx": found["non_2xx_3xx"], "socket_errors": found["socket_errors"],
                "user_us": (user_after - user) / requests * 1e6,
                "sys_us": (system_after - system) / requests * 1e6,
                **{event: count / requests for event, count in counts.items()}}

    def record(self, into: Path) -> None:
        """One more wrk run per Wharf worker under `perf record -g`."""
        into.mkdir(parents=True, exist_ok=True)
        for name in self.args.tools:
            if not name.startswith("wharf") or name not in self.proxies:
                continue
            data = into / f"{name}.data"
            self.say(f"[{name}] perf record -g into {data}")
            perf = subprocess.Popen(["perf", "record", "-g", "-o", str(data), "-p",
                                     str(self.worker(name))], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            try:
                text = wrk(self.proxies[name].port, self.args.duration,
                           self.args.connections, self.load_cpu,
                           scheme=self.proxies[name].scheme)
            finally:
                stop(perf)
            self.results[name]["recorded"] = {"file": str(data),
                                              "requests": parse_wrk(text)["requests"]}

    def run(self) -> None:
        super().run()
        if self.args.record:
            self.record(Path(self.args.record).resolve())


def summary(result: dict[str, Any]) -> dict[str, float]:
    """Medians over the rounds."""
    rounds = result.get("rounds") or []
    if not rounds:
        return {}
    return {key: statistics.median(r[key] for r in rounds)
            for key in ("req_per_s", *TIMES, *EVENTS) if key in rounds[0]}


def print_report(results: dict[str, dict[str, Any]], tools: list[str]) -> None:
    """One row per proxy: medians per request, and the ratio to nginx of the same scheme."""
    keys = [k for k in (*TIMES, *EVENTS)
            if any(k in (r.get("median") or {}) for r in results.values())]
    rows = []
    for name in tools:
        mine = results[name].get("median") or {}
        if not mine:
            rows.append([name, results[name].get("error", "no rounds")[:40],
                         *([""] * len(keys))])
            continue
        nginx = results.get(name.replace("wharf", "nginx"), {}).get("median") or {}
        row = [name, f"{mine['req_per_s']:,.0f}"]
        for key in keys:
            cell = f"{mine[key]:,.2f}" if key in TIMES else f"{mine[key]:,.0f}"
            if not name.startswith("nginx") and nginx.get(key):
                cell += f" (x{mine[key] / nginx[key]:.2f})"
            row.append(cell)
        rows.append(row)
    print(format_table(["proxy", "req/s", *(f"{k}/req" for k in keys)], rows))
    for name in tools:
        for problem in results[name].get("problems", []):
            print(f"{name}: {problem}")


def main(argv: list[str] | None = None) -> int:
    """Start, count, print, save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(TOOLS))
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--record", default="", help="directory for perf record data")
    args = parser.parse_args(argv)
    args.tools = selected_tools(parser, args.only, TOOLS)
    args.skip_idle, args.idle = True, 100
    started = time.monotonic()
    become_subreaper()
    trap_signals()
    raise_fd_limit()
    reason = ensure_tools(started + 300)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    pinned, _ = pinning_info()
    args.counters = has_counters()
    workdir = Path(tempfile.mkdtemp(prefix="wbc-"))
    if any(name.endswith("-tls") for name in args.tools):
        tls.CERTS = tls.Certs(workdir / "certs")
    bench = CounterBench(args, workdir, pinned)
    notes: list[str] = []
    run_and_clean_up(bench, workdir, notes, lambda e: None)
    for result in bench.results.values():
        result["median"] = summary(result)
    write_json(RESULTS_FILE, {"results": bench.results, "notes": notes,
                              "duration_s": args.duration, "rounds": args.rounds})
    print_report(bench.results, args.tools)
    for note in notes:
        print(f"note: {note}")
    return 1 if any("error" in r for r in bench.results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
