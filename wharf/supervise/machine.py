"""The lifecycle of one supervised process as a pure state machine.

Theory of operation: the driver (`instance.py`) feeds events in (start, stop, spawned,
spawn_failed, exited, timer) with the current monotonic time, and performs the actions that come
back (spawn, signal the process group, kill it). The machine never sleeps and never touches a
process: the one timer it needs at a time is exposed as `deadline`, which the driver arms and,
when it passes, reports with `timer(now)`.

Rules, as in Supervisor unless noted:
- A start that exits before `startsecs` is a failed start: BACKOFF, then retry, up to
  `startretries` retries in a row; then FATAL. The delay doubles from `backoff` up to
  `backoff_max` (Supervisor waits 1 s, 2 s, 3 s...; PM2 doubles from 100 ms).
- After `startsecs` the process is RUNNING. When it exits, `autorestart` decides: "always",
  "on-failure" (an exit code not in `exit_codes`, or death by a signal we did not send), "never".
- Unlike Supervisor, an expected exit (a code in `exit_codes`) ends EXITED whatever the uptime
  when `autorestart` is not "always": a one-shot job (a migration) that succeeds within
  `startsecs` has done its work, and must not run again as if it had failed to start.
- A restart after a crash from RUNNING is immediate the first time. Crashes that follow each
  other before the process has been up for STABLE_UPTIME wait, with the same doubling delay,
  so that an app that dies after startsecs cannot spin (PM2's exp_backoff_restart_delay).
- stop: STOPPING with `stop_signal`; after `stop_timeout`, KILL; the exit makes it STOPPED.
  A start or restart asked while STOPPING starts the process again once it has exited.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import Enum

from wharf.supervise.states import State, check_transition

# PM2 resets its exponential restart delay once an app has been up for 30 s.
STABLE_UPTIME = 30.0


class Action(Enum):
    """What the driver must do after an event."""

    SPAWN = "spawn"
    SIGNAL = "signal"  # send `stop_signal` to the process group
    KILL = "kill"  # send SIGKILL to the process group


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings of an app that the lifecycle depends on."""

    autorestart: str = "always"
    exit_codes: tuple[int, ...] = (0,)
    startsecs: float = 1.0
    startretries: int = 3
    backoff: float = 0.1
    backoff_max: float = 30.0
    stop_signal: int = int(signal.SIGTERM)
    stop_timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1-based): doubling, capped."""
        return min(self.backoff_max, self.backoff * 2 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        """Decode a waitpid() status word."""
        import os

        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status))
        return cls(os.WEXITSTATUS(status))

    def __str__(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by {name}"
        return f"exit status {self.code}"


class Machine:
    """One process's lifecycle: events in, actions out."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.state = State.STOPPED
        self.transitions: list[tuple[State, State]] = []  # since the driver last drained them
        self.deadline: float | None = None
        self.started_at: float | None = None
        self.failed_starts = 0
        self.crash_streak = 0
        self.spawns = 0
        self.last_exit: ExitStatus | None = None
        self.reason = ""
        self.last_restart = ""  # why it last restarted unasked (a crash, a limit): for status
        self._start_after_stop = False

    def __repr__(self) -> str:
        return f"<Machine {self.state.value} spawns={self.spawns} reason={self.reason!r}>"

    @property
    def restarts(self) -> int:
        """How many times the process was started again after its first start."""
        return max(0, self.spawns - 1)

    # -- events -------------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Someone asked for the process to run."""
        if self.state == State.STOPPING:
            self._start_after_stop = True
            return []
        if self.state in (State.STARTING, State.RUNNING):
            return []
        self.failed_starts = 0
        self.crash_streak = 0
        return self._spawn(now)

    def stop(self, now: float) -> list[Action]:
        """Someone asked for the process to stop."""
        self._start_after_stop = False
        if self.state in (State.STARTING, State.RUNNING):
            self._set(State.STOPPING)
            self.deadline = now + self.policy.stop_timeout
            return [Action.SIGNAL]
        if self.state in (State.BACKOFF, State.EXITED, State.FATAL):
            self._set(State.STOPPED)
            self.deadline = None
        return []

    def restart(self, now: float, why: str = "") -> list[Action]:
        """Stop the process if it runs, then start it again; `why` is kept if the daemon
        decided it (a limit passed), not a user."""
        self.last_restart = why
        if self.state in (State.STARTING, State.RUNNING, State.STOPPING):
            actions = self.stop(now)
            self._start_after_stop = True
            return actions
        return self.start(now)

    def spawned(self, now: float) -> list[Action]:
        """The process was created."""
        self.started_at = now
        if self.policy.startsecs <= 0:
            self._running()
        else:
            self.deadline = now + self.policy.startsecs
        return []

    def spawn_failed(self, reason: str, now: float) -> list[Action]:
        """The process could not be created (no such command, permission denied...)."""
        self.reason = f"spawn error: {reason}"
        return self._failed_start(now)

    def spawn_refused(self, reason: str, now: float) -> list[Action]:
        """The process was not created because retrying cannot help (its fixed port is held by
        someone else): FATAL at once, until someone starts it again."""
        self.reason = reason
        self.started_at = None
        self.deadline = None
        self._set(State.FATAL)
        return []

    def exited(self, status: ExitStatus, now: float) -> list[Action]:
        """The process ended."""
        self.last_exit = status
        uptime = now - (self.started_at if self.started_at is not None else now)
        self.started_at = None
        self.deadline = None
        if self.state == State.STOPPING:
            self._set(State.STOPPED)
            self.reason = ""
            if self._start_after_stop:
                self._start_after_stop = False
                self.failed_starts = 0
                self.crash_streak = 0
                return self._spawn(now)
            return []
        if self.state == State.STARTING:
            if self.policy.autorestart == "always" or not self._expected(status):
                self.reason = f"exited too quickly ({status})"
                return self._failed_start(now)
            self.failed_starts = 0
            self._set(State.EXITED)
            self.reason = str(status)
            return []
        self._set(State.EXITED)
        self.reason = str(status)
        if not self._should_restart(status):
            return []
        self.last_restart = self.reason
        self.crash_streak = 1 if uptime >= STABLE_UPTIME else self.crash_streak + 1
        if self.crash_streak == 1:
            return self._spawn(now)
        self._set(State.BACKOFF)
        self.deadline = now + self.policy.delay(self.crash_streak - 1)
        return []

    def timer(self, now: float) -> list[Action]:
        """The deadline passed."""
        if self.deadline is None or now < self.deadline:
            return []
        self.deadline = None
        if self.state == State.STARTING:
            self._running()
            return []
        if self.state == State.BACKOFF:
            return self._spawn(now)
        if self.state == State.STOPPING:
            return [Action.KILL]
        return []

    # -- helpers ------------------------------------------------------------------------------

    def _running(self) -> None:
        self._set(State.RUNNING)
        self.deadline = None
        self.failed_starts = 0
        self.reason = ""

    def _spawn(self, now: float) -> list[Action]:
        self._set(State.STARTING)
        self.spawns += 1
        self.deadline = None
        return [Action.SPAWN]

    def _failed_start(self, now: float) -> list[Action]:
        self.failed_starts += 1
        self.started_at = None
        if self.failed_starts > self.policy.startretries:
            self._set(State.FATAL)
            self.reason = f"{self.reason}; gave up after {self.failed_starts} attempts"
            self.deadline = None
            return []
        self._set(State.BACKOFF)
        self.deadline = now + self.policy.delay(self.failed_starts)
        return []

    def _should_restart(self, status: ExitStatus) -> bool:
        if self.policy.autorestart == "always":
            return True
        if self.policy.autorestart == "never":
            return False
        return not self._expected(status)

    def _expected(self, status: ExitStatus) -> bool:
        """An exit with one of `exit_codes` (a death by a signal never is)."""
        return status.signal is None and status.code in self.policy.exit_codes

    def _set(self, new: State) -> None:
        check_transition(self.state, new)
        self.transitions.append((self.state, new))
        self.state = new
