"""How Wharf's apps look through Supervisor's API: names, states, faults, info structs.

Names: an app is a Supervisor group. An app with one instance is the process of the same name
(`web`, as supervisorctl prints a program without numprocs); an app with N > 1 instances has
the processes `web:web_00` ... `web:web_<N-1>`, supervisord's names for `numprocs = N` with
`process_name = %(program_name)s_%(process_num)02d`. After `wharf scale web 1` the app is
`web` again.

Pure code: status rows (`wharf status --json`) in, Supervisor's structs out.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any


class Faults:
    """supervisor/xmlrpc.py's fault codes (the ones Wharf answers with)."""

    UNKNOWN_METHOD = 1
    INCORRECT_PARAMETERS = 2
    BAD_ARGUMENTS = 3
    SHUTDOWN_STATE = 6
    BAD_NAME = 10
    BAD_SIGNAL = 11
    NO_FILE = 20
    FAILED = 30
    ABNORMAL_TERMINATION = 40
    SPAWN_ERROR = 50
    ALREADY_STARTED = 60
    NOT_RUNNING = 70
    SUCCESS = 80
    ALREADY_ADDED = 90
    STILL_RUNNING = 91
    CANT_REREAD = 92


FAULT_NAMES = {v: k for k, v in vars(Faults).items() if isinstance(v, int)}

# supervisor/states.py: ProcessStates codes by name (Wharf's states have the same names).
STATE_CODES = {"STOPPED": 0, "STARTING": 10, "RUNNING": 20, "BACKOFF": 30, "STOPPING": 40,
               "EXITED": 100, "FATAL": 200, "UNKNOWN": 1000}
RUNNING_STATES = ("RUNNING", "BACKOFF", "STARTING")  # what "already started" means
SIGNALLABLE_STATES = ("RUNNING", "STARTING", "STOPPING")


class RpcFault(Exception):
    """An XML-RPC fault: `CODE_NAME: detail`, as supervisord words them."""

    def __init__(self, code: int, detail: str = "") -> None:
        text = FAULT_NAMES.get(code, "UNKNOWN")
        super().__init__(f"{text}: {detail}" if detail else text)
        self.code = code
        self.text = str(self)


@dataclass(frozen=True, slots=True)
class Target:
    """What a Supervisor name points at: an app, and one instance of it or (None) all."""

    app: str
    instance: int | None


def process_name(app: str, index: int, count: int) -> str:
    """The process name of instance `index` of an app with `count` instances."""
    return app if count == 1 else f"{app}_{index:02d}"


def namespec(app: str, index: int, count: int) -> str:
    """The name supervisorctl prints: `web`, or `web:web_01`."""
    name = process_name(app, index, count)
    return name if name == app else f"{app}:{name}"


def resolve(name: str, counts: dict[str, int]) -> Target:
    """The app (and instance) a name means: `web`, `web:*`, `web:web_01`; BAD_NAME else.
    `counts` is each app's number of instances."""
    group, sep, process = name.partition(":")
    if group not in counts:
        raise RpcFault(Faults.BAD_NAME, name)
    if (not sep and counts[group] == 1) or (sep and process in ("", "*")):
        return Target(group, None if sep else 0)
    if not sep:  # `web` for an app of several instances: supervisord says no such process
        raise RpcFault(Faults.BAD_NAME, name)
    for index in range(counts[group]):
        if process_name(group, index, counts[group]) == process:
            return Target(group, index)
    raise RpcFault(Faults.BAD_NAME, name)


def process_info(row: dict[str, Any], count: int, logs: tuple[str, str], now: float
                 ) -> dict[str, Any]:
    """getProcessInfo's struct for one instance's status row."""
    state = row["state"]
    uptime = row.get("uptime_s")
    start = int(now - uptime) if state == "RUNNING" and uptime is not None else 0
    reason = row.get("reason") or ""
    pid = row.get("pid") or 0
    if state == "RUNNING":
        description = f"pid {pid}, uptime {datetime.timedelta(seconds=int(uptime or 0))}"
    elif state in ("FATAL", "BACKOFF"):
        description = reason or f"unknown error (try \"tail {row['app']}\")"
    elif state == "EXITED" and row.get("exit_code") is not None:
        description = f"exit status {row['exit_code']}"
    elif state == "EXITED" and row.get("exit_signal"):
        description = f"terminated by {row['exit_signal']}"
    elif row.get("exit_code") is not None or row.get("exit_signal") or row.get("restarts"):
        description = reason or "Stopped"
    else:
        description = reason or "Not started"
    return {
        "name": process_name(row["app"], row["instance"], count), "group": row["app"],
        "start": start, "stop": 0, "now": int(now), "state": STATE_CODES.get(state, 1000),
        "statename": state, "spawnerr": reason if state in ("FATAL", "BACKOFF") else "",
        "exitstatus": row.get("exit_code") or 0, "logfile": logs[0],
        "stdout_logfile": logs[0], "stderr_logfile": logs[1], "pid": pid,
        "description": description,
    }


def result(row: dict[str, Any], count: int, code: int, description: str = "") -> dict[str, Any]:
    """One entry of a group call's answer (startProcessGroup, stopAllProcesses, ...)."""
    return {"name": process_name(row["app"], row["instance"], count), "group": row["app"],
            "status": code, "description": description or FAULT_NAMES.get(code, "")}


def read_range(size: int, offset: int, length: int) -> tuple[int, int]:
    """supervisord's readFile: (start, end) of the bytes asked for, in a file of `size`.
    A negative offset with length 0 is the last -offset bytes; length 0 means to the end."""
    if (offset < 0 and length != 0) or length < 0:
        raise RpcFault(Faults.BAD_ARGUMENTS)
    start = max(0, size + offset) if offset < 0 else min(offset, size)
    end = size if length == 0 else min(size, start + length)
    return start, end


def tail_range(size: int, offset: int, length: int) -> tuple[int, int, bool]:
    """supervisord's tailFile, as it is: (where to read, how many bytes, overflow); overflow
    when the file grew past offset + length, and then the reader catches up to the end."""
    overflow = False
    if size > offset + length:
        overflow, offset = True, size - 1
    if offset + length > size:
        if offset > size - 1:
            length = 0
        offset = size - length
    return max(0, offset), max(0, length), overflow
