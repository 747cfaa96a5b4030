"""Process states, with Supervisor's names and meanings, and the table of legal transitions.

STOPPED   not running, and not asked to run
STARTING  spawned; becomes RUNNING once it has stayed up for `startsecs`
RUNNING   up for at least `startsecs`
BACKOFF   waiting before the next start, after a failed start or a crash loop
STOPPING  asked to stop; `stop_signal` sent, SIGKILL follows after `stop_timeout`
EXITED    exited and `autorestart` said not to restart (from STARTING too: an expected exit
          of a one-shot job)
FATAL     could not be started `startretries` + 1 times in a row; stays until started again
"""

from __future__ import annotations

from enum import Enum


class State(Enum):
    """The state of one supervised process."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.FATAL, S.STOPPING, S.EXITED}),
    S.RUNNING: frozenset({S.STOPPING, S.EXITED}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.EXITED: frozenset({S.STARTING, S.BACKOFF, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}

# States that will not change unless someone acts.
SETTLED_STATES = frozenset({S.STOPPED, S.RUNNING, S.EXITED, S.FATAL})


class IllegalTransition(RuntimeError):
    """A bug: the machine tried a transition the table does not allow."""


def check_transition(old: State, new: State) -> None:
    """Raise IllegalTransition unless `old` → `new` is in the table."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"{old.value} -> {new.value}")
