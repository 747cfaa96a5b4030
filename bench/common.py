"""Helpers shared by the benchmarks in bench/: processes seen through /proc, running commands,
HTTP checks on 127.0.0.1 and log scans, installing Debian packages without starting their
services, the --only option, cleaning up by pid, reporting.

The scripts import it as `common` (Python puts a script's own directory first on sys.path).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CACHE_DIR = ROOT / "bench" / ".cache"
PR_SET_CHILD_SUBREAPER = 36
HAS_PROC_CHILDREN = Path(f"/proc/self/task/{os.getpid()}/children").exists()
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


# -- processes, seen through /proc ------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def ppid_of(pid: int) -> int | None:
    """The parent pid of `pid`, or None if it is gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[1]) if fields else None
    except (IndexError, ValueError):
        return None


def argv_of(pid: int) -> list[str]:
    """The command line of `pid` ([] if it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids() -> set[int]:
    """Every process id (thread-group leaders) now in /proc."""
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


def children_of(parent: int) -> set[int]:
    """The current children of `parent`."""
    if HAS_PROC_CHILDREN:
        found: set[int] = set()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{parent}/task"):
                with contextlib.suppress(OSError), \
                        open(f"/proc/{parent}/task/{task}/children") as f:
                    found.update(int(p) for p in f.read().split())
        return found
    return {pid for pid in all_pids() if ppid_of(pid) == parent}


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    fields = _stat_fields(pid)
    if not fields:
        return False
    return fields[0] != "Z"


def reap(pid: int) -> None:
    """Collect the exit status of `pid` if it is (or became, as a subreaper) our child."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def rss_kib(pid: int) -> int:
    """VmRSS of one process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    raise BenchError(f"no VmRSS for pid {pid} (gone?)")


def rss_mib(pid: int) -> float:
    """VmRSS of one process, in MiB."""
    return rss_kib(pid) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), in seconds."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 13:
        raise BenchError(f"no CPU times for pid {pid} (gone?)")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pin(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of `pid` (threads it starts later inherit it)."""
    try:
        tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        raise BenchError(f"cannot pin pid {pid}: it is gone") from None
    for tid in tasks:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, cpus)


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to `pid` if it still exists."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll `condition` until it holds; BenchError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait (reaping it if it is ours) until `pid` has exited; False if it is still alive."""

    def gone() -> bool:
        reap(pid)
        return not alive(pid)

    with contextlib.suppress(BenchError):
        wait_until(gone, timeout, f"pid {pid} to exit")
    return gone()


def become_subreaper() -> None:
    """Adopt orphaned descendants (detached daemons), so they can be reaped and checked."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: prctl(PR_SET_CHILD_SUBREAPER) failed; detached daemons are not reaped",
              file=sys.stderr)


def raise_fd_limit() -> int:
    """Lift this process's RLIMIT_NOFILE soft limit to the hard one; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60.0,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; BenchError if it fails (when `check`)."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(argv)}` took more than {timeout:.0f}s") from None
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BenchError(f"`{' '.join(argv)}` exited {done.returncode}: " + " | ".join(tail))
    return done


def leftovers() -> list[str]:
    """Kill by pid any process still parented to this script (adopted orphans), and reap."""
    found = []
    for pid in children_of(os.getpid()):
        argv = argv_of(pid)
        if not argv:  # a zombie: just reap it
            reap(pid)
            continue
        found.append(f"{pid} {' '.join(argv)}")
        kill(pid)
    time.sleep(0.1)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    return found


def on_signal(signum: int, _frame: object) -> None:
    """SIGTERM, SIGHUP or the time budget: unwind through every finally block."""
    raise SystemExit(f"stopped by {signal.Signals(signum).name}; cleaning up")


def trap_signals() -> None:
    """Turn SIGTERM, SIGHUP and SIGALRM (the time budget) into SystemExit, for cleanup."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, on_signal)


# -- HTTP on 127.0.0.1, logs ------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, timeout: float = 2.0,
             tls: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """One `GET /` to 127.0.0.1:port (over TLS with the client context `tls`): (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) if tls is None else \
        http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_serving(port: int, what: str, body: bytes, timeout: float,
                 log: Path | None = None, tls: ssl.SSLContext | None = None) -> None:
    """Wait until `GET /` on `port` answers 200 with `body`; BenchError after `timeout`
    seconds, with the last answer (and the tail of `log`, if given)."""
    last = "no answer"

    def ok() -> bool:
        nonlocal last
        try:
            status, got = http_get(port, tls=tls)
        except OSError as exc:
            last = str(exc)
            return False
        last = f"status {status}, body {got[:60]!r}"
        return status == 200 and got == body

    try:
        wait_until(ok, timeout, f"{what} to serve on port {port}", interval=0.1)
    except BenchError as exc:
        tail = log_tail(log) if log else ""
        raise BenchError(f"{exc} (last: {last}){tail}") from None


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, for an error message."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return " | log: " + " / ".join(text) if text else ""


def grep_log(path: Path, pattern: re.Pattern[str], limit: int = 20) -> list[str]:
    """Lines of `path` matching `pattern` (at most `limit`, then a count of the rest)."""
    try:
        lines = [ln.rstrip() for ln in path.read_text(errors="replace").splitlines()
                 if pattern.search(ln)]
    except OSError:
        return []
    more = [f"... and {len(lines) - limit} more such lines"] if len(lines) > limit else []
    return [f"{path.name}: {ln}" for ln in lines[:limit]] + more


# -- installing what is missing ---------------------------------------------------------------

@contextlib.contextmanager
def services_blocked() -> Iterator[None]:
    """Forbid Debian maintainer scripts to start services while a package installs."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\n# wharf bench: no service starts during install\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def apt_install(packages: Sequence[str], commands: Sequence[str],
                timeout: float = 300.0) -> str | None:
    """Install Debian `packages` unless every one of `commands` is on PATH already (with
    `apt-get update` and a second try if the first fails); the reason it failed, or None."""
    if all(shutil.which(c) for c in commands):
        return None
    if not shutil.which("apt-get"):
        return f"{', '.join(commands)} missing and apt-get is not available"
    print(f"installing {' '.join(packages)} with apt-get...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    with services_blocked():
        try:
            if run(install, env=env, timeout=timeout, check=False).returncode != 0:
                run(["apt-get", "update"], env=env, timeout=timeout, check=False)
                done = run(install, env=env, timeout=timeout, check=False)
                if done.returncode != 0:
                    return (f"apt-get install {' '.join(packages)} failed: "
                            + done.stderr.strip()[-200:])
        except BenchError as exc:
            return str(exc)
    missing = [c for c in commands if not shutil.which(c)]
    return f"{', '.join(missing)} not found after install" if missing else None


# -- the command line, cleanup ----------------------------------------------------------------

def selected_tools(parser: argparse.ArgumentParser, only: str, tools: Sequence[str]) -> list[str]:
    """The tools named in `only` (--only: a comma list), in order and each once; a usage
    error (exit 2) if none is named or one is not in `tools`."""
    chosen = list(dict.fromkeys(t.strip() for t in only.split(",") if t.strip()))
    if not chosen or any(t not in tools for t in chosen):
        parser.error(f"--only takes a comma list of {', '.join(tools)}; got {only!r}")
    return chosen


def clean_up(workdir: Path | None = None) -> list[str]:
    """The end of a run, whatever happened: cancel the time budget, kill by pid (and warn
    about) what was left behind, remove `workdir`. Returns the processes left behind."""
    signal.alarm(0)
    stray = leftovers()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    if stray:
        print("warning: processes left behind, killed by pid: " + "; ".join(stray),
              file=sys.stderr)
    return stray


# -- reporting --------------------------------------------------------------------------------

def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A fixed-width text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def fmt_row(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    rule = "-" * len(fmt_row(header))
    return "\n".join([fmt_row(header), rule, *(fmt_row(r) for r in rows)])


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Save a report as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


class _Runnable(Protocol):
    def run(self) -> None: ...

    def close(self) -> None: ...


def run_and_clean_up(bench: _Runnable, workdir: Path, notes: list[str],
                     on_error: Callable[[str], None]) -> list[str]:
    """Run a bench, then stop what it started and remove `workdir`, whatever happened; an
    early stop is noted and passed to `on_error`. Returns the processes left behind (killed)."""
    stray: list[str] = []
    try:
        bench.run()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        notes.append(f"the run stopped early: {exc}")
        on_error(str(exc))
    finally:
        signal.alarm(0)
        try:
            bench.close()
        finally:
            stray = clean_up(workdir)
    if stray:
        notes.append("processes left behind, killed by pid: " + "; ".join(stray))
    return stray
