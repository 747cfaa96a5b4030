"""Zero-downtime reload under load: Wharf (`wharf reload web`) vs PM2 cluster mode (`pm2 reload`).

Both tools run the same tiny Node.js HTTP server (written by this script into a temp dir): it
answers every request with 200 "ok\\n" (keep-alive on, Node's default) and, on SIGINT or
SIGTERM, closes its listener and exits once its connections are done
(`server.close(() => process.exit(0))`), so both tools can stop it gracefully.

- Wharf: `[apps.web]` with 4 instances (`startsecs = "0.3s"`, `drain_timeout = "5s"`), each on
  the PORT Wharf gives it, behind Wharf's proxy (`[[routes]] app = "web"`, default settings);
  wrk goes to the proxy's listen port. Daemon: `wharf up -d` with a private `state_dir`.
- PM2: `pm2 start app.js -i 4` (cluster mode: the 4 workers share one port through Node's
  cluster module), PORT fixed in the environment, PM2_HOME in the temp dir; wrk goes straight
  to that port, as PM2 users run it (PM2 has no proxy). PM2's defaults otherwise.

For each tool, with its 4 instances serving: a 2 s wrk warm-up, then a baseline run of
`wrk -t1 -c16 --latency` for half the reload run's length (at least 5 s), with no reload; then
a run of `--duration` seconds (default 20) during which the tool's reload command (`wharf -c
FILE reload web`, `pm2 reload app`) is run three times, at 15 %, 45 % and 75 % of the run (a
reload still running when the next is due delays it). Each reload's wall time is recorded, and
the instance pids are read before and after it: every instance must have been replaced. From
wrk's output: requests, non-2xx/3xx responses, socket errors (connect, read, write, timeout;
wrk's timeout is 2 s) and the p99 latency; "p99 during reload" is the p99 of the whole reload
run. Traffic goes to 127.0.0.1 only; wrk is not pinned to a CPU.

Targets (Wharf): zero non-2xx responses and zero socket errors during the reload run, and a p99
during reload at most 2x the baseline p99. Also listed: warning and error lines in Wharf's logs
(STATE_DIR/daemon.log, STATE_DIR/logs/*.log) and in PM2's (PM2_HOME/pm2.log, app logs).

Cleanup: every daemon is stopped with the tool's own command (`wharf down`, `pm2 kill` with the
isolated PM2_HOME) in a finally block, with SIGKILL by pid as the fallback; the script is a
child subreaper and kills by pid whatever the daemons left behind; temp dirs are removed. A
SIGTERM or the 170 s budget unwinds through the same cleanup.

`--app nginx` runs Wharf alone with nginx as the app instead of Node (one nginx per instance,
one worker, `return 200 "ok\\n"`, stopped with SIGQUIT, nginx's graceful shutdown): an app with
nothing to warm up, so what is left of the tail is the reload's own cost. PM2 is skipped then
(its cluster mode runs Node apps only).

Run: .venv/bin/python bench/reload.py [--only wharf] [--duration 20] [--app nginx]
Prints a table and writes the numbers to bench/results/reload.json (reload-nginx-app.json with
`--app nginx`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    RESULTS_DIR,
    ROOT,
    BenchError,
    alive,
    apt_install,
    become_subreaper,
    children_of,
    clean_up,
    format_table,
    free_port,
    grep_log,
    kill,
    machine_info,
    raise_fd_limit,
    run,
    selected_tools,
    trap_signals,
    wait_gone,
    wait_serving,
    wait_until,
    write_json,
)
from proxy import WHARF_TROUBLE, parse_wrk
from supervise import ensure_pm2

RESULTS_FILE = RESULTS_DIR / "reload.json"
TOOLS = ("wharf", "pm2")
INSTANCES = 4
CONNECTIONS = 16
WARMUP = 2  # seconds of wrk before the baseline
RELOAD_AT = (0.15, 0.45, 0.75)  # when the reloads start, as fractions of the reload run
BUDGET = 170  # seconds for the measurements (installs excluded); then everything is stopped
START_TIMEOUT = 30.0
BODY = b"ok\n"
P99_TARGET = 2.0  # Wharf's p99 during reload / baseline p99

APP_JS = """\
'use strict';
const http = require('http');
const port = parseInt(process.env.PORT, 10);
const server = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': '3'});
  res.end('ok\\n');
});
server.listen(port, '127.0.0.1');
function stop() { server.close(() => process.exit(0)); }
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
"""

# One nginx per instance, in a dir of its own under the bench's temp dir, on Wharf's $PORT.
NGINX_APP_SH = """\
#!/bin/sh
set -e
dir=$(mktemp -d "{workdir}/nginx.XXXXXX")
cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server {{ listen 127.0.0.1:$PORT; location / {{ return 200 "ok\\n"; }} }}
}}
EOF
exec nginx -p "$dir" -c "$dir/nginx.conf"
"""

# PM2's log says "process tree killed" for every graceful stop and echoes its "SIGTERM timeout"
# setting at start: not trouble. A worker that outlives kill_timeout is "still alive ... SIGKILL".
PM2_TROUBLE = re.compile(r"error|exception|still alive|SIGKILL|failed|uncaught", re.IGNORECASE)


# -- the two tools ----------------------------------------------------------------------------

class Tool:
    """A supervisor running the Node app with 4 instances, and the port wrk should hit."""

    name = ""

    def __init__(self, workdir: Path, app: Path) -> None:
        self.workdir = workdir
        self.app = app
        self.port = free_port()
        self.daemon: int | None = None

    def start(self) -> None:
        """Start the daemon and the 4 instances; return once they serve."""
        raise NotImplementedError

    def reload(self) -> None:
        """The tool's zero-downtime reload of the app; returns when it is done."""
        raise NotImplementedError

    def instance_pids(self) -> set[int]:
        """The pids of the app's instances, as the tool reports them."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop everything with the tool's own command."""
        raise NotImplementedError

    def version(self) -> str:
        """The tool's version."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        """Warning and error lines in the tool's logs."""
        raise NotImplementedError

    def wait_serving(self) -> None:
        """Wait until `GET /` on the tool's port answers 200 ok."""
        wait_serving(self.port, self.name, BODY, START_TIMEOUT)

    def force_cleanup(self) -> None:
        """Last resort: SIGKILL by pid the daemon (if still alive) and its children."""
        if self.daemon is None or not alive(self.daemon):
            return
        print(f"warning: {self.name} daemon {self.daemon} still alive after shutdown; "
              "killing it", file=sys.stderr)
        for pid in [*children_of(self.daemon), self.daemon]:
            kill(pid)
        wait_gone(self.daemon, 5)


class WharfTool(Tool):
    """Wharf's daemon (`wharf up -d`, private state_dir) with `web` behind its proxy."""

    name = "wharf"

    def __init__(self, workdir: Path, app: Path) -> None:
        super().__init__(workdir, app)
        self.command = [shutil.which("node") or "node", str(app)]
        self.stop_signal = "TERM"
        if app.suffix == ".sh":
            self.command, self.stop_signal = [str(app)], "QUIT"
        self.config = workdir / "wharf.toml"
        self.state = workdir / ".wharf"

    def _wharf(self, *args: str, timeout: float = 60.0,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "wharf", "-c", str(self.config), *args],
                   timeout=timeout, check=check)

    def start(self) -> None:
        self.config.write_text(
            f"[daemon]\nstate_dir = {json.dumps(str(self.state))}\n\n"
            f"[proxy]\nlisten = [\"127.0.0.1:{self.port}\"]\n\n"
            f"[apps.web]\ncommand = {json.dumps(self.command)}\n"
            f"stop_signal = \"{self.stop_signal}\"\n"
            f"instances = {INSTANCES}\nstartsecs = \"0.3s\"\ndrain_timeout = \"5s\"\n\n"
            "[[routes]]\napp = \"web\"\n")
        run([sys.executable, "-m", "wharf", "up", "-d", "-c", str(self.config)], timeout=30)
        pidfile = self.state / "wharf.pid"
        wait_until(pidfile.exists, 10, "wharf.pid")
        self.daemon = int(pidfile.read_text().strip())
        wait_until(lambda: len(self.instance_pids()) == INSTANCES, START_TIMEOUT,
                   f"{INSTANCES} web instances RUNNING", 0.1)
        self.wait_serving()

    def reload(self) -> None:
        self._wharf("reload", "web", timeout=60)

    def instance_pids(self) -> set[int]:
        done = self._wharf("status", "--json", check=False)
        if done.returncode != 0:
            return set()
        return {int(r["pid"]) for r in json.loads(done.stdout)
                if r.get("app") == "web" and r.get("state") == "RUNNING" and r.get("pid")}

    def stop(self) -> None:
        if self.daemon is not None and alive(self.daemon):
            self._wharf("down", timeout=60, check=False)
        if self.daemon is not None:
            wait_gone(self.daemon, 30)

    def version(self) -> str:
        return self._wharf("--version").stdout.split()[-1]

    def problems(self) -> list[str]:
        found: list[str] = []
        for path in [self.state / "daemon.log", *sorted((self.state / "logs").glob("*.log"))]:
            found += grep_log(path, WHARF_TROUBLE)
        return found


class Pm2Tool(Tool):
    """PM2 in cluster mode (`pm2 start app.js -i 4`), PM2_HOME in the temp dir."""

    name = "pm2"

    def __init__(self, workdir: Path, app: Path, pm2: str = "pm2") -> None:
        super().__init__(workdir, app)
        self.pm2 = pm2
        self.home = workdir / "home"
        self.env = {**os.environ, "PM2_HOME": str(self.home), "PORT": str(self.port)}

    def _pm2(self, *args: str, check: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return run([self.pm2, *args], env=self.env, check=check, timeout=timeout)

    def start(self) -> None:
        self._pm2("start", str(self.app), "-i", str(INSTANCES), "--name", "app", timeout=60)
        pidfile = self.home / "pm2.pid"
        wait_until(pidfile.exists, 10, "pm2.pid")
        self.daemon = int(pidfile.read_text().strip())
        wait_until(lambda: len(self.instance_pids()) == INSTANCES, START_TIMEOUT,
                   f"{INSTANCES} pm2 workers online", 0.1)
        self.wait_serving()

    def reload(self) -> None:
        self._pm2("reload", "app", timeout=60)

    def instance_pids(self) -> set[int]:
        out = self._pm2("jlist", check=False).stdout
        try:
            apps = json.loads(out[out.index("["):])
        except ValueError:
            return set()
        return {int(a["pid"]) for a in apps
                if a.get("pm2_env", {}).get("status") == "online" and a.get("pid")}

    def stop(self) -> None:
        if self.home.exists():
            self._pm2("kill", check=False, timeout=60)
        if self.daemon is not None:
            wait_gone(self.daemon, 30)

    def version(self) -> str:
        package = Path(os.path.realpath(self.pm2)).parent.parent / "package.json"
        try:
            return str(json.loads(package.read_text())["version"])
        except (OSError, ValueError, KeyError):
            return "?"

    def problems(self) -> list[str]:
        found: list[str] = []
        logs = [self.home / "pm2.log", *sorted((self.home / "logs").glob("*.log"))]
        for path in logs:
            found += grep_log(path, PM2_TROUBLE)
        return found


@contextlib.contextmanager
def running(tool: Tool) -> Iterator[Tool]:
    """The tool serving the app; stopped (by pid if need be) and its dir removed after."""
    try:
        tool.start()
        yield tool
    finally:
        try:
            tool.stop()
        finally:
            tool.force_cleanup()


# -- the measurements -------------------------------------------------------------------------

def wrk_argv(port: int, seconds: int) -> list[str]:
    """wrk, one thread, CONNECTIONS keep-alive connections, latency distribution."""
    return ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
            f"http://127.0.0.1:{port}/"]


def reload_during(tool: Tool, seconds: int) -> dict[str, Any]:
    """A wrk run of `seconds` with three reloads in it: wrk's figures and each reload's."""
    reloads: list[dict[str, Any]] = []
    failures: list[str] = []

    def reloader(start: float) -> None:
        for fraction in RELOAD_AT:
            delay = start + fraction * seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                before = tool.instance_pids()
                at = time.monotonic() - start
                t0 = time.perf_counter()
                tool.reload()
                took = time.perf_counter() - t0
                after = tool.instance_pids()
            except BenchError as exc:
                failures.append(str(exc))
                return
            reloads.append({"at_s": round(at, 2), "duration_s": round(took, 3),
                            "replaced": len(before - after), "instances_after": len(after)})

    with subprocess.Popen(wrk_argv(tool.port, seconds), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                          cwd=ROOT) as proc:
        thread = threading.Thread(target=reloader, args=(time.monotonic(),), daemon=True)
        thread.start()
        try:
            out, _ = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise BenchError(f"wrk did not finish within {seconds + 30}s") from None
        thread.join(timeout=90)
    if failures:
        raise BenchError(f"{tool.name} reload failed: {failures[0]}")
    if thread.is_alive():
        raise BenchError(f"{tool.name}: a reload was still running 90 s after wrk ended")
    for number, r in enumerate(reloads, 1):
        if r["replaced"] != INSTANCES or r["instances_after"] != INSTANCES:
            failures.append(f"reload {number}: {r['replaced']} of {INSTANCES} instances "
                            f"replaced, {r['instances_after']} running after")
    return {**parse_wrk(out), "reloads": reloads, "reload_problems": failures}


def bench_tool(tool: Tool, duration: int) -> dict[str, Any]:
    """Baseline and reload runs of one tool."""
    baseline_s = max(5, duration // 2)
    with running(tool):
        print(f"[{tool.name}] warm-up {WARMUP}s, baseline {baseline_s}s...", file=sys.stderr)
        run(wrk_argv(tool.port, WARMUP), timeout=WARMUP + 30)
        baseline = parse_wrk(run(wrk_argv(tool.port, baseline_s), timeout=baseline_s + 30).stdout)
        print(f"[{tool.name}] {duration}s with {len(RELOAD_AT)} reloads...", file=sys.stderr)
        during = reload_during(tool, duration)
        problems = tool.problems()
        version = tool.version()
    errors = sum(during["socket_errors"].values())
    return {
        "version": version, "baseline": baseline, "reload": during,
        "requests": during["requests"], "non_2xx_3xx": during["non_2xx_3xx"],
        "socket_errors": during["socket_errors"], "socket_errors_total": errors,
        "p99_baseline_ms": baseline["p99_ms"], "p99_reload_ms": during["p99_ms"],
        "p99_ratio": during["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] > 0 else None,
        "reload_durations_s": [r["duration_s"] for r in during["reloads"]],
        "log_problems": problems,
    }


# -- reporting --------------------------------------------------------------------------------

def cell(result: dict[str, Any], key: str) -> str:
    """One table cell of a tool's result."""
    if "error" in result:
        return "n/a"
    value = result.get(key)
    if key == "socket_errors":
        errs = {k: v for k, v in (value or {}).items() if v}
        total = sum(errs.values())
        return f"{total} ({', '.join(f'{k} {v}' for k, v in errs.items())})" if total else "0"
    if key == "reload_durations_s":
        return " / ".join(f"{v:.2f}" for v in value or []) or "n/a"
    if key == "p99_ratio":
        return f"x{value:.2f}" if isinstance(value, float) else "n/a"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


ROWS = (  # key, label
    ("requests", "requests (reload run)"),
    ("non_2xx_3xx", "non-2xx/3xx responses"),
    ("socket_errors", "socket errors"),
    ("p99_baseline_ms", "p99 baseline, no reload (ms)"),
    ("p99_reload_ms", "p99 during reloads (ms)"),
    ("p99_ratio", "p99 ratio (during / baseline)"),
    ("reload_durations_s", "reload durations (s)"),
)


def targets(wharf: dict[str, Any]) -> list[str]:
    """Wharf's targets and whether they were met."""
    if "error" in wharf:
        return [f"wharf failed: {wharf['error']}"]
    errors = wharf["non_2xx_3xx"] + wharf["socket_errors_total"]
    ratio = wharf["p99_ratio"]
    return [
        f"target: Wharf zero errors during reload: {errors} -> "
        + ("met" if errors == 0 and not wharf["reload"]["reload_problems"] else "MISSED"),
        f"target: Wharf p99 during reload <= {P99_TARGET:.0f}x baseline: "
        + (f"x{ratio:.2f} -> " + ("met" if ratio <= P99_TARGET else "MISSED")
           if ratio is not None else "n/a"),
    ]


# -- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--only, --duration and --app."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(TOOLS),
                        help="comma-separated tools to run (default: wharf,pm2)")
    parser.add_argument("--duration", type=int, default=20,
                        help="seconds of the wrk run with three reloads (default 20)")
    parser.add_argument("--app", choices=("node", "nginx"), default="node",
                        help="the app behind Wharf (nginx: Wharf alone, nothing to warm up)")
    args = parser.parse_args(argv)
    args.tools = selected_tools(parser, args.only, TOOLS)
    if args.app == "nginx":
        args.tools = [t for t in args.tools if t == "wharf"]
        if not args.tools:
            parser.error("--app nginx runs Wharf only")
    if not 6 <= args.duration <= 60:
        parser.error("--duration must be between 6 and 60")
    return args


def run_all(tools: list[str], duration: int, workdir: Path, app: Path,
            pm2: str | None) -> dict[str, dict[str, Any]]:
    """Every tool's runs; a tool that fails gets its error instead."""
    results: dict[str, dict[str, Any]] = {}
    for name in tools:
        tool: Tool
        sub = workdir / name
        sub.mkdir()
        if name == "wharf":
            tool = WharfTool(sub, app)
        elif pm2 is not None:
            tool = Pm2Tool(sub, app, pm2=pm2)
        else:
            continue
        try:
            results[name] = bench_tool(tool, duration)
        except BenchError as exc:
            print(f"[{name}] failed: {exc}", file=sys.stderr)
            results[name] = {"error": str(exc), "log_problems": tool.problems()}
    return results


def main(argv: list[str] | None = None) -> int:
    """Install, measure, print, save."""
    args = parse_args(argv)
    become_subreaper()
    raise_fd_limit()
    missing: dict[str, str] = {}
    reason = apt_install(["wrk"], ["wrk"])
    if reason:
        print(f"wrk unavailable: {reason}", file=sys.stderr)
        return 1
    needs = ("nginx", "nginx") if args.app == "nginx" else ("nodejs", "node")
    reason = apt_install([needs[0]], [needs[1]])
    if reason:
        print(f"{needs[1]} unavailable: {reason}", file=sys.stderr)
        return 1
    results_file = RESULTS_FILE if args.app == "node" else RESULTS_DIR / "reload-nginx-app.json"
    pm2: str | None = None
    if "pm2" in args.tools:
        pm2, why = ensure_pm2()
        if pm2 is None:
            missing["pm2"] = why or "pm2 unavailable"
    trap_signals()
    signal.alarm(BUDGET)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="wr-"))
    try:
        if args.app == "nginx":
            app = workdir / "app.sh"
            app.write_text(NGINX_APP_SH.format(workdir=workdir))
            app.chmod(0o755)
        else:
            app = workdir / "app.js"
            app.write_text(APP_JS)
        results = run_all(args.tools, args.duration, workdir, app, pm2)
    finally:
        stray = clean_up(workdir)
    for name, why in missing.items():
        results[name] = {"error": why}
    node = run(["node", "--version"]).stdout.strip() if args.app == "node" else "-"
    report = {"machine": {**machine_info(), "node": node}, "duration_s": args.duration,
              "wrk": " ".join(wrk_argv(0, args.duration)[:-1]), "reload_at": RELOAD_AT,
              "elapsed_s": round(time.monotonic() - started, 1), "results": results,
              "left_behind": stray}
    report["app"] = args.app
    write_json(results_file, report)
    info = report["machine"]
    versions = ", ".join(f"{t} {results[t].get('version', '?')}" for t in args.tools)
    print(f"{info['cpus']} CPUs, Linux {info['kernel']}, Python {info['python']}, "
          f"Node {node}, app {args.app}; {versions}\n`wrk -t1 -c{CONNECTIONS} --latency`: baseline "
          f"{max(5, args.duration // 2)}s, then {args.duration}s with reloads at "
          + ", ".join(f"{f * args.duration:.0f}s" for f in RELOAD_AT) + "\n")
    rows = [[label, *(cell(results[t], key) for t in args.tools)] for key, label in ROWS]
    print(format_table(["reload under load", *args.tools], rows))
    if "wharf" in results:
        print("\n" + "\n".join(targets(results["wharf"])))
    for name in args.tools:
        result = results[name]
        if "error" in result:
            print(f"\n{name}: {result['error']}")
        for problem in result.get("reload", {}).get("reload_problems", []):
            print(f"\n{name}: {problem}")
        if result.get("log_problems"):
            print(f"\n{name} log lines:\n  " + "\n  ".join(result["log_problems"]))
    print(f"\nsaved to {results_file.relative_to(ROOT)}")
    failed = any("error" in r for r in results.values())
    wharf = results.get("wharf", {})
    missed = "error" not in wharf and bool(wharf) and any("MISSED" in t for t in targets(wharf))
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
