"""Benchmark Wharf's supervisor against supervisord and PM2, on this machine, in one run.

Every tool supervises the same trivial program, `sleep 100000`, exec'd directly (no shell), and
runs as its own daemon in a private temp dir (own config, own socket, an isolated PM2_HOME),
so nothing system-wide is touched. Three figures per tool:

1. Crash-to-replacement latency. N instances (default 20) run and have settled for 2 s; each
   is killed once with SIGKILL, and the clock runs from just before kill() until a new child
   of the supervising daemon exists. The new child is found by polling in a tight loop (0.2 ms
   sleeps): /proc/<daemon>/task/*/children where the kernel has it, else a listing of /proc,
   whose new pids are checked for ppid == daemon. The next kill waits until the replacement
   has exec'd `sleep`, then 0.2 s. Killing each instance once keeps restart back-off (Wharf's
   and PM2's crash-streak delays) out of the figure. Median and p90 are reported.
2. Daemon RSS: VmRSS of the daemon process only (not its children, not the CLI), with 10 and
   with 100 instances, read once everything is running and has settled for 2 s.
3. Start time of 100 instances with startsecs = 0 (PM2: its default). With the daemon up and
   every instance stopped (and its process gone), time the tool's own "start all" command
   (`wharf start all`, `supervisorctl start all`, `pm2 start all`), and then until the tool's
   own status command (`wharf status --json`, `supervisorctl status`, `pm2 jlist`) first
   shows all 100 running. Both figures are printed; every tool pays for one status call.

The daemons: Wharf's is the pid in STATE_DIR/wharf.pid (`wharf up -d`), supervisord runs
as `supervisord -n` under this script, PM2's "God" daemon is the pid in PM2_HOME/pm2.pid.
This script makes itself a child subreaper, so daemons that detach become its children: it
reaps them and, at the end, kills by pid any process one of them left behind (and says so).
Every daemon is shut down with the tool's own command (`wharf down`, `supervisorctl
shutdown`, `pm2 kill`) in a finally block, with SIGKILL by pid as the fallback.

Missing tools are installed: supervisord with `apt-get install -y supervisor` (with a
policy-rc.d that forbids Debian from starting its system-wide service), PM2 with
`npm install -g pm2` (or, failing that, a local install in bench/.cache).

Run: .venv/bin/python bench/supervise.py [--only wharf,pm2] [--samples 20]
Prints a table (tool figures and each figure's ratio to Wharf's; for every metric lower is
better) and writes the same numbers to bench/results/supervise.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import (
    CACHE_DIR,
    HAS_PROC_CHILDREN,
    RESULTS_DIR,
    ROOT,
    BenchError,
    alive,
    all_pids,
    apt_install,
    argv_of,
    become_subreaper,
    children_of,
    clean_up,
    format_table,
    kill,
    machine_info,
    ppid_of,
    reap,
    rss_mib,
    run,
    selected_tools,
    trap_signals,
    wait_gone,
    wait_until,
    write_json,
)

RESULTS_FILE = RESULTS_DIR / "supervise.json"
TOOLS = ("wharf", "supervisord", "pm2")

SLEEP = shutil.which("sleep") or "/bin/sleep"
SLEEP_ARG = "100000"
POLL = 0.0002  # seconds between two looks at the daemon's children
SETTLE = 2.0  # seconds between "all running" and a measurement
PAUSE = 0.2  # seconds between two kills
REPLACE_TIMEOUT = 5.0  # seconds; an instance not replaced by then fails that tool's run
BUDGET = 270  # seconds for all measurements (installs excluded); then everything is stopped


# -- processes, seen through /proc ------------------------------------------------------------

def is_instance(pid: int) -> bool:
    """True when `pid` runs the benchmark's `sleep 100000` (and has exec'd it)."""
    argv = argv_of(pid)
    return len(argv) == 2 and Path(argv[0]).name == "sleep" and argv[1] == SLEEP_ARG


def instances_of(daemon: int) -> list[int]:
    """The supervised `sleep` processes of a daemon."""
    return sorted(pid for pid in children_of(daemon) if is_instance(pid))


class ChildWatcher:
    """Spots the next new child of a process, by polling /proc."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self._known = self._snapshot()

    def _snapshot(self) -> set[int]:
        return children_of(self.parent) if HAS_PROC_CHILDREN else all_pids()

    def poll(self) -> int | None:
        """A child that appeared since the last look, or None."""
        fresh = self._snapshot() - self._known
        self._known |= fresh
        for pid in fresh:
            if HAS_PROC_CHILDREN or ppid_of(pid) == self.parent:
                return pid
        return None


# -- installing what is missing ---------------------------------------------------------------

def stop_system_supervisord() -> None:
    """If the package's own supervisord runs anyway, stop it with the service manager."""
    for pidfile in (Path("/run/supervisord.pid"), Path("/var/run/supervisord.pid")):
        with contextlib.suppress(OSError, ValueError):
            if alive(int(pidfile.read_text().strip())):
                for cmd in (["service", "supervisor", "stop"],
                            ["systemctl", "stop", "supervisor"]):
                    if shutil.which(cmd[0]) and run(cmd, check=False).returncode == 0:
                        return


def ensure_supervisord() -> str | None:
    """Install supervisord if needed; the reason it is unavailable, or None."""
    reason = apt_install(["supervisor"], ["supervisord", "supervisorctl"])
    if reason is None:
        stop_system_supervisord()
    return reason


def ensure_pm2() -> tuple[str | None, str | None]:
    """Find or install PM2: (path of the pm2 command, reason it is unavailable)."""
    found = shutil.which("pm2")
    local = CACHE_DIR / "npm" / "node_modules" / ".bin" / "pm2"
    if found or local.exists():
        return found or str(local), None
    if not shutil.which("npm"):
        return None, "pm2 is missing and npm is not available"
    print("installing pm2 with npm install -g...", file=sys.stderr)
    if run(["npm", "install", "-g", "pm2"], timeout=300, check=False).returncode == 0:
        found = shutil.which("pm2")
        if found:
            return found, None
    print("global install failed; installing pm2 into bench/.cache...", file=sys.stderr)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    (CACHE_DIR / ".gitignore").write_text("*\n")
    done = run(["npm", "install", "--prefix", str(CACHE_DIR / "npm"), "pm2"], timeout=300,
               check=False)
    if done.returncode != 0 or not local.exists():
        return None, "npm install pm2 failed: " + done.stderr.strip()[-200:]
    return str(local), None


# -- the three tools --------------------------------------------------------------------------

class Tool:
    """One supervisor, driven through its own CLI, with its daemon in a private temp dir."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pid: int | None = None  # the daemon's

    def launch(self, count: int) -> None:
        """Start the daemon supervising `count` instances of `sleep 100000`."""
        raise NotImplementedError

    def running_count(self) -> int:
        """How many instances the tool's own status command reports as running."""
        raise NotImplementedError

    def stop_all(self) -> None:
        """Stop every instance."""
        raise NotImplementedError

    def start_all(self) -> None:
        """Start every instance (the tool's "start all")."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Stop the instances and the daemon with the tool's own command."""
        raise NotImplementedError

    def version(self) -> str:
        """The tool's version."""
        raise NotImplementedError

    def daemon_pid(self) -> int:
        """The supervising daemon's pid."""
        if self.pid is None:
            raise BenchError(f"{self.name}: daemon pid unknown")
        return self.pid

    def force_cleanup(self) -> None:
        """Last resort: SIGKILL by pid the daemon, if still alive, and its instances."""
        if self.pid is None:
            return
        reap(self.pid)
        if not alive(self.pid):
            return
        print(f"warning: {self.name} daemon {self.pid} still alive after shutdown; killing it",
              file=sys.stderr)
        for pid in [*instances_of(self.pid), self.pid]:
            kill(pid)
        time.sleep(0.2)
        reap(self.pid)

    def wait_daemon_gone(self, timeout: float = 30.0) -> None:
        """Wait until the daemon has exited (and reap it if it is ours)."""
        if self.pid is not None:
            wait_gone(self.pid, timeout)


class WharfTool(Tool):
    """Wharf, as `python -m wharf` with this interpreter (the project's venv)."""

    name = "wharf"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.config = workdir / "wharf.toml"

    def _wharf(self, *args: str, timeout: float = 60.0,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "wharf", "-c", str(self.config), *args],
                   timeout=timeout, check=check)

    def launch(self, count: int) -> None:
        self.config.write_text(
            "[apps.sleep]\n"
            f"command = [{json.dumps(SLEEP)}, {json.dumps(SLEEP_ARG)}]\n"
            f"instances = {count}\nstartsecs = 0\nautorestart = \"always\"\n")
        run([sys.executable, "-m", "wharf", "up", "-d", "-c", str(self.config)], timeout=30)
        pidfile = self.workdir / ".wharf" / "wharf.pid"
        wait_until(pidfile.exists, 10, "wharf.pid")
        self.pid = int(pidfile.read_text().strip())

    def running_count(self) -> int:
        rows = json.loads(self._wharf("status", "--json").stdout)
        return sum(1 for r in rows if r["state"] == "RUNNING")

    def stop_all(self) -> None:
        self._wharf("stop", "all")

    def start_all(self) -> None:
        self._wharf("start", "all")

    def shutdown(self) -> None:
        if self.pid is not None and alive(self.pid):
            self._wharf("down", timeout=60, check=False)
        self.wait_daemon_gone()

    def version(self) -> str:
        return self._wharf("--version").stdout.split()[-1]


class SupervisordTool(Tool):
    """supervisord 4 run in the foreground (-n) by this script, with its own config and socket."""

    name = "supervisord"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.config = workdir / "supervisord.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    def _ctl(self, *args: str, check: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return run(["supervisorctl", "-c", str(self.config), *args], check=check,
                   timeout=timeout)

    def launch(self, count: int) -> None:
        w = self.workdir
        (w / "logs").mkdir()
        self.config.write_text(
            f"[unix_http_server]\nfile={w}/supervisor.sock\n\n"
            f"[supervisord]\nlogfile={w}/supervisord.log\npidfile={w}/supervisord.pid\n"
            f"childlogdir={w}/logs\nnodaemon=true\nuser=root\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{w}/supervisor.sock\n\n"
            f"[program:sleep]\ncommand={SLEEP} {SLEEP_ARG}\nnumprocs={count}\n"
            "process_name=%(program_name)s_%(process_num)03d\n"
            "startsecs=0\nautorestart=true\n")
        if os.geteuid() != 0:  # `user=root` is only for silencing the warning as root
            self.config.write_text(self.config.read_text().replace("user=root\n", ""))
        with (w / "stdout.log").open("wb") as out:
            self.proc = subprocess.Popen(
                ["supervisord", "-c", str(self.config), "-n"], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, cwd=w)
        self.pid = self.proc.pid
        wait_until(lambda: self._ctl("pid", check=False).returncode == 0, 15,
                   "supervisord's socket")

    def running_count(self) -> int:
        out = self._ctl("status", check=False).stdout  # exits 3 while some are not running
        return sum(1 for line in out.splitlines() if line.split()[1:2] == ["RUNNING"])

    def stop_all(self) -> None:
        self._ctl("stop", "all")

    def start_all(self) -> None:
        self._ctl("start", "all")

    def shutdown(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._ctl("shutdown", check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def version(self) -> str:
        return run(["supervisord", "--version"]).stdout.strip()


class Pm2Tool(Tool):
    """PM2 in fork mode (`interpreter: none`), with PM2_HOME in the temp dir."""

    name = "pm2"

    def __init__(self, workdir: Path, pm2: str = "pm2") -> None:
        super().__init__(workdir)
        self.pm2 = pm2
        self.env = {**os.environ, "PM2_HOME": str(workdir / "home")}

    def _pm2(self, *args: str, check: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return run([self.pm2, *args], env=self.env, check=check, timeout=timeout)

    def launch(self, count: int) -> None:
        ecosystem = self.workdir / "ecosystem.json"
        ecosystem.write_text(json.dumps({"apps": [{
            "name": "sleep", "script": SLEEP, "args": [SLEEP_ARG], "interpreter": "none",
            "exec_mode": "fork", "instances": count, "autorestart": True,
        }]}))
        self._pm2("start", str(ecosystem), timeout=60)
        pidfile = self.workdir / "home" / "pm2.pid"
        wait_until(pidfile.exists, 10, "pm2.pid")
        self.pid = int(pidfile.read_text().strip())

    def running_count(self) -> int:
        out = self._pm2("jlist").stdout
        apps = json.loads(out[out.index("["):])
        return sum(1 for a in apps if a["pm2_env"]["status"] == "online")

    def stop_all(self) -> None:
        self._pm2("stop", "all")

    def start_all(self) -> None:
        self._pm2("start", "all")

    def shutdown(self) -> None:
        if (self.workdir / "home").exists():
            self._pm2("kill", check=False, timeout=60)
        self.wait_daemon_gone()

    def version(self) -> str:
        package = Path(os.path.realpath(self.pm2)).parent.parent / "package.json"
        try:
            return str(json.loads(package.read_text())["version"])
        except (OSError, ValueError, KeyError):
            return "?"


@contextlib.contextmanager
def supervised(factory: Callable[[Path], Tool], count: int) -> Iterator[Tool]:
    """A tool's daemon running `count` instances, all running; shut down and removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="wb-"))
    tool = factory(workdir)
    try:
        tool.launch(count)
        wait_until(lambda: tool.running_count() == count, 60,
                   f"{count} instances RUNNING under {tool.name}", interval=0.1)
        yield tool
    finally:
        try:
            tool.shutdown()
        finally:
            tool.force_cleanup()
            shutil.rmtree(workdir, ignore_errors=True)


# -- the measurements -------------------------------------------------------------------------

def crash_latency_ms(tool: Tool, pid: int) -> float:
    """Kill one instance; milliseconds until the daemon has a new child."""
    daemon = tool.daemon_pid()
    watcher = ChildWatcher(daemon)
    deadline = time.monotonic() + REPLACE_TIMEOUT
    start = time.perf_counter_ns()
    os.kill(pid, signal.SIGKILL)
    while (new := watcher.poll()) is None:
        if time.monotonic() > deadline:
            raise BenchError(f"{tool.name}: no replacement for pid {pid} "
                             f"within {REPLACE_TIMEOUT:.0f}s")
        time.sleep(POLL)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    wait_until(lambda: is_instance(new), 5, f"replacement {new} to exec sleep", interval=0.001)
    return elapsed


def measure_crash(factory: Callable[[Path], Tool], samples: int) -> list[float]:
    """Crash-to-replacement latency (ms) of each of `samples` instances, killed once each."""
    with supervised(factory, samples) as tool:
        time.sleep(SETTLE)
        victims = instances_of(tool.daemon_pid())
        if len(victims) != samples:
            raise BenchError(f"{tool.name}: expected {samples} sleep children of the daemon, "
                             f"found {len(victims)}")
        latencies = []
        for pid in victims:
            latencies.append(crash_latency_ms(tool, pid))
            time.sleep(PAUSE)
        return latencies


def measure_rss(factory: Callable[[Path], Tool], count: int) -> float:
    """The daemon's RSS (MiB) with `count` running instances."""
    with supervised(factory, count) as tool:
        time.sleep(SETTLE)
        return rss_mib(tool.daemon_pid())


def time_start(tool: Tool, count: int) -> tuple[float, float]:
    """From all stopped: seconds until "start all" returns, and until status shows all running."""
    tool.stop_all()
    daemon = tool.daemon_pid()
    wait_until(lambda: not instances_of(daemon) and tool.running_count() == 0, 30,
               f"every {tool.name} instance to stop")
    time.sleep(0.5)
    start = time.perf_counter()
    tool.start_all()
    returned = time.perf_counter() - start
    while tool.running_count() < count:
        if time.perf_counter() - start > 60:
            raise BenchError(f"{tool.name}: {count} instances not running after 60s")
    confirmed = time.perf_counter() - start
    found = len(instances_of(daemon))
    if found != count:
        raise BenchError(f"{tool.name} reports {count} running but the daemon has {found} "
                         f"sleep children")
    return returned, confirmed


def measure_hundred(factory: Callable[[Path], Tool]) -> dict[str, float]:
    """RSS with 100 instances, then the start time of 100 instances."""
    with supervised(factory, 100) as tool:
        time.sleep(SETTLE)
        rss = rss_mib(tool.daemon_pid())
        returned, confirmed = time_start(tool, 100)
        return {"rss_100_mib": rss, "start_100_cmd_s": returned, "start_100_s": confirmed}


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive interpolation)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def bench_tool(name: str, factory: Callable[[Path], Tool], samples: int) -> dict[str, Any]:
    """Every figure of one tool."""
    print(f"[{name}] RSS with 10 instances...", file=sys.stderr)
    rss_10 = measure_rss(factory, 10)
    print(f"[{name}] crash-to-replacement, {samples} samples...", file=sys.stderr)
    latencies = measure_crash(factory, samples)
    print(f"[{name}] 100 instances: RSS and start time...", file=sys.stderr)
    hundred = measure_hundred(factory)
    with tempfile.TemporaryDirectory(prefix="wb-") as tmp:
        version = factory(Path(tmp)).version()
    return {
        "version": version,
        "crash_median_ms": statistics.median(latencies),
        "crash_p90_ms": percentile(latencies, 90),
        "crash_min_ms": min(latencies), "crash_max_ms": max(latencies),
        "crash_samples_ms": [round(v, 3) for v in latencies],
        "rss_10_mib": rss_10, **hundred,
    }


# -- reporting --------------------------------------------------------------------------------

ROWS = (  # key, label, format
    ("crash_median_ms", "crash->replacement median (ms)", "{:.2f}"),
    ("crash_p90_ms", "crash->replacement p90 (ms)", "{:.2f}"),
    ("rss_10_mib", "daemon RSS, 10 procs (MiB)", "{:.1f}"),
    ("rss_100_mib", "daemon RSS, 100 procs (MiB)", "{:.1f}"),
    ("start_100_cmd_s", "start 100: 'start all' returns (s)", "{:.3f}"),
    ("start_100_s", "start 100: status shows all (s)", "{:.3f}"),
)


def ratio(results: dict[str, dict[str, Any]], tool: str, key: str) -> float | None:
    """`tool`'s figure divided by Wharf's, when both exist."""
    base, other = results.get("wharf", {}).get(key), results.get(tool, {}).get(key)
    if not isinstance(base, int | float) or not isinstance(other, int | float) or base <= 0:
        return None
    return other / base


def table(results: dict[str, dict[str, Any]], tools: list[str]) -> str:
    """The results as a fixed-width text table."""
    others = [t for t in tools if t != "wharf"] if "wharf" in tools else []
    header = ["metric (lower is better)", *tools, *(f"{t}/wharf" for t in others)]
    lines = []
    for key, label, fmt in ROWS:
        cells = [label]
        for tool in tools:
            value = results.get(tool, {}).get(key)
            cells.append(fmt.format(value) if isinstance(value, int | float) else "n/a")
        for tool in others:
            r = ratio(results, tool, key)
            cells.append(f"x{r:.2f}" if r is not None else "n/a")
        lines.append(cells)
    return format_table(header, lines)


# -- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--only and --samples."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(TOOLS),
                        help="comma-separated tools to run (default: wharf,supervisord,pm2)")
    parser.add_argument("--samples", type=int, default=20,
                        help="crash samples = instances killed once each (default 20)")
    args = parser.parse_args(argv)
    args.tools = selected_tools(parser, args.only, TOOLS)
    if not 1 <= args.samples <= 200:
        parser.error("--samples must be between 1 and 200")
    return args


def factories(tools: list[str]) -> tuple[dict[str, Callable[[Path], Tool]], dict[str, str]]:
    """A factory for each available tool, installing what is missing; and why others are not."""
    made: dict[str, Callable[[Path], Tool]] = {}
    missing: dict[str, str] = {}
    for name in tools:
        if name == "wharf":
            made[name] = WharfTool
        elif name == "supervisord":
            reason = ensure_supervisord()
            if reason:
                missing[name] = reason
            else:
                made[name] = SupervisordTool
        else:
            pm2, reason = ensure_pm2()
            if pm2 is None:
                missing[name] = reason or "pm2 unavailable"
            else:
                made[name] = functools.partial(Pm2Tool, pm2=pm2)
    return made, missing


def run_all(made: dict[str, Callable[[Path], Tool]], samples: int) -> dict[str, dict[str, Any]]:
    """Run every tool's measurements; a tool that fails gets its error instead."""
    results: dict[str, dict[str, Any]] = {}
    for name, factory in made.items():
        try:
            results[name] = bench_tool(name, factory, samples)
        except BenchError as exc:
            print(f"[{name}] failed: {exc}", file=sys.stderr)
            results[name] = {"error": str(exc)}
    return results


def main(argv: list[str] | None = None) -> int:
    """Install, measure, print, save."""
    args = parse_args(argv)
    become_subreaper()
    made, missing = factories(args.tools)
    trap_signals()
    signal.alarm(BUDGET)
    started = time.monotonic()
    try:
        results = run_all(made, args.samples)
    finally:
        stray = clean_up()
    for name, reason in missing.items():
        results[name] = {"error": reason}
    machine = {**machine_info(),
               "child_detection": "proc-task-children" if HAS_PROC_CHILDREN else "proc-scan"}
    report = {"machine": machine, "samples": args.samples,
              "duration_s": round(time.monotonic() - started, 1), "results": results,
              "ratios_to_wharf": {t: {k: ratio(results, t, k) for k, _, _ in ROWS}
                                  for t in args.tools if t != "wharf"},
              "left_behind": stray}
    write_json(RESULTS_FILE, report)
    info = report["machine"]
    versions = ", ".join(f"{t} {results[t].get('version', '?')}" for t in args.tools)
    print(f"{info['cpus']} CPUs, Linux {info['kernel']}, Python {info['python']}; {versions}; "
          f"{args.samples} crash samples; child detection: {info['child_detection']}\n")
    print(table(results, args.tools))
    for name in args.tools:
        if "error" in results[name]:
            print(f"\n{name}: {results[name]['error']}")
    print(f"\nsaved to {RESULTS_FILE.relative_to(ROOT)}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
