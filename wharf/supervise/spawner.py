"""The only code that creates, signals and reaps processes.

Each instance runs in its own process group (pgid = pid), so a signal reaches every process the
app started. Exit is noticed through a pidfd: the kernel makes it readable the moment the process
ends, so there is no SIGCHLD handler to share and no polling.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wharf.supervise.machine import ExitStatus


@dataclass(frozen=True, slots=True)
class SpawnSpec:
    """Everything needed to start one process."""

    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    user: str | None = None
    listen_fd: int | None = None  # a socket to hand over as fd 3 (systemd's LISTEN_FDS)


@dataclass(slots=True)
class Child:
    """A started process: its pid (= process group id), its exit pidfd and its output pipes."""

    pid: int
    pidfd: int
    stdout: int
    stderr: int


class Spawner(Protocol):
    """Creates and controls processes; the supervisor sees processes only through this."""

    def spawn(self, spec: SpawnSpec) -> Child: ...

    def signal_group(self, pid: int, sig: int) -> None: ...

    def signal_process(self, child: Child, sig: int) -> None: ...

    def reap(self, pid: int) -> ExitStatus | None: ...


_SOCKET_SHIM = 'exec 3<&{fd} {fd}<&- && export LISTEN_PID=$$ && exec "$0" "$@"'


class SpawnError(Exception):
    """The process could not be created; the message says why, for the status line."""


class OsSpawner:
    """The real spawner: subprocess with a new process group, and a pidfd for the exit."""

    def spawn(self, spec: SpawnSpec) -> Child:
        """Start the process; raise SpawnError with a short reason when it cannot be."""
        kwargs: dict[str, object] = {}
        env = dict(spec.env)
        if spec.user is not None:
            entry = pwd.getpwnam(spec.user)
            if entry.pw_uid != os.geteuid():
                kwargs.update(user=entry.pw_uid, group=entry.pw_gid,
                              extra_groups=os.getgrouplist(entry.pw_name, entry.pw_gid))
            env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
        argv = spec.argv
        if spec.listen_fd is not None:
            # systemd's protocol wants the socket at fd 3 and LISTEN_PID naming the process
            # itself, known only after the fork: a shell moves the fd and exports its own pid,
            # then execs the app, which keeps that pid. (bash: dash cannot name fds above 9.)
            argv = ("/bin/bash", "-c", _SOCKET_SHIM.format(fd=spec.listen_fd), *argv)
            kwargs["pass_fds"] = (spec.listen_fd,)
            env.update(LISTEN_FDS="1", LISTEN_FDNAMES="wharf")
        try:
            proc = subprocess.Popen(
                argv, cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0,
                close_fds=True, **kwargs,  # type: ignore[call-overload]
            )
        except FileNotFoundError:
            raise SpawnError(f"command not found: {spec.argv[0]}") from None
        except PermissionError as exc:
            who = f" for user {spec.user}" if spec.user else ""
            raise SpawnError(f"permission denied{who}: {exc.filename or spec.argv[0]}") \
                from None
        except OSError as exc:
            raise SpawnError(f"{spec.argv[0]}: {exc.strerror or exc}") from None
        # Popen would otherwise keep the process on its list of children to reap later, and
        # could steal the exit status from our pidfd watcher.
        proc.returncode = 0
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = os.dup(proc.stdout.fileno()), os.dup(proc.stderr.fileno())
        proc.stdout.close()
        proc.stderr.close()
        for fd in (stdout, stderr):
            os.set_blocking(fd, False)
        return Child(proc.pid, os.pidfd_open(proc.pid), stdout, stderr)

    def signal_group(self, pid: int, sig: int) -> None:
        """Send `sig` to the process group led by `pid`; a group already gone is fine."""
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:  # the group was taken over by another user's process
            if exc.errno != errno.EPERM:
                raise

    def signal_process(self, child: Child, sig: int) -> None:
        """Send `sig` to the child's main process alone, through its pidfd (so never to a
        process that took over its pid); a process that has just ended is fine."""
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(child.pidfd, sig)

    def reap(self, pid: int) -> ExitStatus | None:
        """Collect the exit status of `pid` if it has ended, else None."""
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return ExitStatus(None, None)
        if done == 0:
            return None
        return ExitStatus.from_wait_status(status)


def kill_group(spawner: Spawner, pid: int) -> None:
    """SIGKILL whatever is left in a process group."""
    spawner.signal_group(pid, signal.SIGKILL)
