"""Supervisor's XML-RPC methods (supervisor/rpcinterface.py, API 3.0) over Wharf's control
commands: every change goes through `dispatch.execute`, the code path of the CLI, so a
supervisorctl `stop` is a `wharf stop`.

Where Supervisor and Wharf differ:
- `restart` in supervisorctl is stopProcess then startProcess, as with supervisord; `wharf
  restart` (a roll with no failed request) is the zero-downtime way.
- reread/update: `reloadConfig` reads wharf.toml and says what would change, and changes
  nothing; the first `addProcessGroup` or `removeProcessGroup` after it applies the whole file,
  as `wharf reload` does (Wharf reloads a file, not one group). `update` then ends with every
  app as the file says; an app `remove`d but still in the file stays, stopped.
- An app's instances share one log file per stream: `tail web:web_01` shows the lines of every
  instance of web, each labelled with its instance.
- Calls always wait (`wait=False` is taken as True).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from wharf import __version__
from wharf.config import load_config
from wharf.control.api import DaemonApi
from wharf.control.dispatch import execute
from wharf.control.supervisor_rpc.names import (
    RUNNING_STATES,
    SIGNALLABLE_STATES,
    Faults,
    RpcFault,
    Target,
    process_info,
    read_range,
    resolve,
    result,
    tail_range,
)
from wharf.errors import ConfigError

API_VERSION = "3.0"  # what supervisorctl 3.x and 4.x check for
STOPPED_STATES = ("STOPPED", "EXITED", "FATAL")
Row = dict[str, Any]


class _NoReply:
    """The Reply of a command run for an RPC call: nothing streams back."""

    def send(self, message: dict[str, Any]) -> None:
        """Progress is not forwarded."""

    async def closed(self) -> None:
        """Never: a command that follows would wait for ever (none is called)."""
        await asyncio.get_running_loop().create_future()


class SupervisorMethods:
    """The `supervisor.*` and `system.*` methods, by name."""

    def __init__(self, api: DaemonApi) -> None:
        self._api = api
        self._applied: set[str] = set()  # apps the last applied reload added or changed
        self._stopping = False
        self.table: dict[str, Callable[..., Awaitable[Any]]] = {
            f"supervisor.{name}": getattr(self, name) for name in (
                "getAPIVersion", "getSupervisorVersion", "getIdentification", "getState",
                "getPID", "readLog", "getAllProcessInfo", "getProcessInfo", "startProcess",
                "startProcessGroup", "startAllProcesses", "stopProcess", "stopProcessGroup",
                "stopAllProcesses", "signalProcess", "signalProcessGroup",
                "signalAllProcesses", "readProcessStdoutLog", "readProcessStderrLog",
                "tailProcessStdoutLog", "tailProcessStderrLog", "reloadConfig",
                "addProcessGroup", "removeProcessGroup", "getAllConfigInfo", "shutdown")}
        self.table["supervisor.getVersion"] = self.getAPIVersion
        self.table["supervisor.readMainLog"] = self.readLog
        self.table["system.listMethods"] = self.listMethods
        self.table["system.multicall"] = self.multicall

    def __repr__(self) -> str:
        return f"<SupervisorMethods {len(self.table)} methods>"

    async def call(self, method: str, params: tuple[Any, ...]) -> Any:
        """Run one method; RpcFault for what supervisord would answer with a fault."""
        function = self.table.get(method)
        if function is None:
            raise RpcFault(Faults.UNKNOWN_METHOD)
        if self._stopping and method != "supervisor.getState":
            raise RpcFault(Faults.SHUTDOWN_STATE)
        try:
            return await function(*params)
        except TypeError as exc:  # the wrong number of parameters
            raise RpcFault(Faults.INCORRECT_PARAMETERS, str(exc)) from None

    # -- system ------------------------------------------------------------------------------

    async def listMethods(self) -> list[str]:
        """Every method's name."""
        return sorted(self.table)

    async def multicall(self, calls: list[dict[str, Any]]) -> list[Any]:
        """Each call's result in a one-item list, or its fault as a struct."""
        results: list[Any] = []
        for entry in calls:
            try:
                name, params = entry["methodName"], tuple(entry.get("params", ()))
                if name == "system.multicall":
                    raise RpcFault(Faults.INCORRECT_PARAMETERS, "no nested multicall")
                results.append([await self.call(name, params)])
            except RpcFault as fault:
                results.append({"faultCode": fault.code, "faultString": fault.text})
            except (KeyError, TypeError):
                results.append({"faultCode": Faults.INCORRECT_PARAMETERS,
                                "faultString": "INCORRECT_PARAMETERS"})
        return results

    # -- the daemon ---------------------------------------------------------------------------

    async def getAPIVersion(self) -> str:
        """The API version supervisorctl expects."""
        return API_VERSION

    async def getSupervisorVersion(self) -> str:
        """Wharf's version (supervisorctl `version` prints it)."""
        return f"wharf {__version__}"

    async def getIdentification(self) -> str:
        """supervisord's `identifier`."""
        return "wharf"

    async def getState(self) -> dict[str, Any]:
        """RUNNING (1), or SHUTDOWN (-1) once stopping."""
        return {"statecode": -1, "statename": "SHUTDOWN"} if self._stopping else \
            {"statecode": 1, "statename": "RUNNING"}

    async def getPID(self) -> int:
        """The daemon's pid."""
        return os.getpid()

    async def readLog(self, offset: int, length: int) -> str:
        """The daemon's own log (`maintail`): the file `wharf up -d` writes."""
        return await _read(self._api.config.daemon.state_dir / "daemon.log", offset, length)

    async def shutdown(self) -> bool:
        """Stop every app, then the daemon (`wharf down`)."""
        await self._run("down", {})
        self._stopping = True
        return True

    # -- processes ----------------------------------------------------------------------------

    async def getAllProcessInfo(self) -> list[dict[str, Any]]:
        """Every instance of every app, in config order."""
        counts, rows = self._rows()
        return [self._info(r, counts) for r in rows]

    async def getProcessInfo(self, name: str) -> dict[str, Any]:
        """One instance."""
        counts, rows = self._rows()
        target = resolve(name, counts)
        if target.instance is None:
            raise RpcFault(Faults.BAD_NAME, name)
        return self._info(_row(rows, target), counts)

    async def startProcess(self, name: str, wait: bool = True) -> Any:
        """Start one instance (or, for `web:*`, the group); wait until it takes traffic."""
        counts, rows = self._rows()
        target = resolve(name, counts)
        if target.instance is None:
            return await self.startProcessGroup(target.app)
        if _row(rows, target)["state"] in RUNNING_STATES:
            raise RpcFault(Faults.ALREADY_STARTED, name)
        final = await execute(self._api, "start", {"app": target.app,
                                                   "instance": target.instance}, _NoReply())
        if not final["ok"]:
            raise RpcFault(self._start_fault(target), final["error"])
        return True

    async def startProcessGroup(self, name: str, wait: bool = True) -> list[Row]:
        """Start every instance of an app that does not run."""
        counts, _ = self._rows()
        if name not in counts:
            raise RpcFault(Faults.BAD_NAME, name)
        return await self._start([name])

    async def startAllProcesses(self, wait: bool = True) -> list[Row]:
        """Start every instance that does not run."""
        return await self._start(list(self._rows()[0]))

    async def stopProcess(self, name: str, wait: bool = True) -> Any:
        """Stop one instance (drained first if it serves a route), or the group for `web:*`."""
        counts, rows = self._rows()
        target = resolve(name, counts)
        if target.instance is None:
            return await self.stopProcessGroup(target.app)
        if _row(rows, target)["state"] not in RUNNING_STATES:
            raise RpcFault(Faults.NOT_RUNNING, name)
        await self._run("stop", {"app": target.app, "instance": target.instance})
        return True

    async def stopProcessGroup(self, name: str, wait: bool = True) -> list[Row]:
        """Stop every running instance of an app."""
        counts, _ = self._rows()
        if name not in counts:
            raise RpcFault(Faults.BAD_NAME, name)
        return await self._stop([name])

    async def stopAllProcesses(self, wait: bool = True) -> list[Row]:
        """Stop every running instance."""
        return await self._stop(list(self._rows()[0]))

    async def signalProcess(self, name: str, signal: str) -> Any:
        """Signal an app's processes (`wharf signal` reaches every instance of an app: a
        single instance of several cannot be signalled alone)."""
        counts, rows = self._rows()
        target = resolve(name, counts)
        if target.instance is None:
            return await self.signalProcessGroup(target.app, signal)
        if counts[target.app] > 1:
            raise RpcFault(Faults.FAILED, f"{name}: Wharf signals every instance of an app; "
                           f"use {target.app}:*")
        if _row(rows, target)["state"] not in SIGNALLABLE_STATES:
            raise RpcFault(Faults.NOT_RUNNING, name)
        await self._signal(target.app, signal)
        return True

    async def signalProcessGroup(self, name: str, signal: str) -> list[Row]:
        """Signal every running instance of an app."""
        counts, rows = self._rows()
        if name not in counts:
            raise RpcFault(Faults.BAD_NAME, name)
        return await self._signal(name, signal, counts, rows)

    async def signalAllProcesses(self, signal: str) -> list[Row]:
        """Signal every running instance of every app."""
        counts, rows = self._rows()
        return [r for app in counts for r in await self._signal(app, signal, counts, rows)]

    # -- logs ---------------------------------------------------------------------------------

    async def readProcessStdoutLog(self, name: str, offset: int, length: int) -> str:
        """Bytes of the app's stdout log (`tail web`: offset -1600, length 0)."""
        return await _read(self._log(name, 0), offset, length, missing="")

    async def readProcessStderrLog(self, name: str, offset: int, length: int) -> str:
        """Bytes of the app's stderr log."""
        return await _read(self._log(name, 1), offset, length, missing="")

    async def tailProcessStdoutLog(self, name: str, offset: int, length: int
                                   ) -> list[Any]:
        """[bytes, new offset, overflow] of the stdout log."""
        return await _tail(self._log(name, 0), offset, length)

    async def tailProcessStderrLog(self, name: str, offset: int, length: int
                                   ) -> list[Any]:
        """[bytes, new offset, overflow] of the stderr log."""
        return await _tail(self._log(name, 1), offset, length)

    def log_path(self, name: str, channel: str) -> tuple[str, Path]:
        """The app and log file of a name's channel (`stdout`, `stderr`), for /logtail."""
        if channel not in ("stdout", "stderr"):
            raise RpcFault(Faults.BAD_ARGUMENTS, channel)
        path = self._log(name, 0 if channel == "stdout" else 1)
        return name.partition(":")[0], path

    # -- reread, update, avail ----------------------------------------------------------------

    async def reloadConfig(self) -> list[list[list[str]]]:
        """[[added, changed, removed]]: what applying wharf.toml would change. Nothing
        changes yet."""
        added, changed, removed = await self._diff()
        return [[added, changed, removed]]

    async def addProcessGroup(self, name: str) -> bool:
        """Bring in the file (if not yet) and make sure the app runs; ALREADY_ADDED if it
        was running before."""
        await self._apply()
        counts, rows = self._rows()
        if name not in counts:
            raise RpcFault(Faults.BAD_NAME, name)
        brought_in = name in self._applied
        self._applied.discard(name)
        if all(r["state"] in STOPPED_STATES for r in rows if r["app"] == name):
            await self._run("start", {"app": name})  # supervisord starts an added group
        elif not brought_in:
            raise RpcFault(Faults.ALREADY_ADDED, name)
        return True

    async def removeProcessGroup(self, name: str) -> bool:
        """STILL_RUNNING if an instance runs; else bring in the file (if not yet), which
        removes the app if the file no longer has it."""
        counts, rows = self._rows()
        if name not in counts:
            raise RpcFault(Faults.BAD_NAME, name)
        if any(r["state"] not in STOPPED_STATES for r in rows if r["app"] == name):
            raise RpcFault(Faults.STILL_RUNNING, name)
        await self._apply()
        return True

    async def getAllConfigInfo(self) -> list[dict[str, Any]]:
        """One struct per process of the file (`avail`)."""
        running = self._rows()[0]
        info = []
        for order, app in enumerate(self._api.config.apps.values()):
            for index in range(app.instances):
                row = {"app": app.name, "instance": index}
                info.append({**result(row, app.instances, Faults.SUCCESS),
                             "inuse": app.name in running, "autostart": True,
                             "group_prio": order, "process_prio": order,
                             "command": " ".join(app.command),
                             "directory": str(app.cwd or ""),
                             "startsecs": int(app.startsecs),
                             "startretries": app.startretries,
                             "stdout_logfile": str(app.stdout_log or ""),
                             "stderr_logfile": str(app.stderr_log or "")})
        return info

    # -- internals ----------------------------------------------------------------------------

    def _rows(self) -> tuple[dict[str, int], list[Row]]:
        """Each app's instance count, and the instance rows."""
        rows = [r for r in self._api.status_rows(None) if r.get("kind") == "instance"]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["app"]] = counts.get(row["app"], 0) + 1
        return counts, rows

    def _info(self, row: Row, counts: dict[str, int]) -> dict[str, Any]:
        out, err = self._api.log_paths(row["app"])
        return process_info(row, counts[row["app"]], (str(out), str(err)), time.time())

    def _log(self, name: str, which: int) -> Path:
        """An app's log file; the group's name will do (`tail web`): one file holds the
        lines of every instance."""
        counts = self._rows()[0]
        group = name.partition(":")[0]
        app = group if group in counts else resolve(name, counts).app
        return self._api.log_paths(app)[which]

    def _start_fault(self, target: Target) -> int:
        row = _row(self._rows()[1], target)
        return Faults.SPAWN_ERROR if (row.get("reason") or "").startswith("spawn error") \
            else Faults.ABNORMAL_TERMINATION

    async def _run(self, command: str, args: dict[str, Any]) -> Any:
        """Run a control command; FAILED with its message if it fails."""
        final = await execute(self._api, command, args, _NoReply())
        if not final["ok"]:
            raise RpcFault(Faults.FAILED, final["error"])
        return final["result"]

    async def _start(self, apps: list[str]) -> list[Row]:
        counts, rows = self._rows()
        idle = [r for r in rows if r["app"] in apps and r["state"] not in RUNNING_STATES]
        for app in dict.fromkeys(r["app"] for r in idle):
            await execute(self._api, "start", {"app": app}, _NoReply())  # judged below
        now = {(r["app"], r["instance"]): r for r in self._rows()[1]}
        answers = []
        for row in idle:
            after = now.get((row["app"], row["instance"]), row)
            ok = after["state"] == "RUNNING"
            code = Faults.SUCCESS if ok else self._start_fault(Target(row["app"],
                                                                      row["instance"]))
            answers.append(result(row, counts[row["app"]], code,
                                  "OK" if ok else after.get("reason") or after["state"]))
        return answers

    async def _stop(self, apps: list[str]) -> list[Row]:
        counts, rows = self._rows()
        running = [r for r in rows if r["app"] in apps and r["state"] in RUNNING_STATES]
        failed: dict[str, str] = {}
        for app in dict.fromkeys(r["app"] for r in running):
            final = await execute(self._api, "stop", {"app": app}, _NoReply())
            if not final["ok"]:
                failed[app] = final["error"]
        return [result(r, counts[r["app"]], Faults.FAILED if r["app"] in failed
                       else Faults.SUCCESS, failed.get(r["app"], "OK")) for r in running]

    async def _signal(self, app: str, signal: str, counts: dict[str, int] | None = None,
                      rows: list[Row] | None = None) -> list[Row]:
        final = await execute(self._api, "signal", {"app": app, "signal": signal}, _NoReply())
        if not final["ok"]:
            code = Faults.BAD_SIGNAL if final.get("exit_code") == 2 else Faults.NOT_RUNNING
            raise RpcFault(code, final["error"])
        if counts is None or rows is None:
            return []
        live = [r for r in rows if r["app"] == app and r["state"] in SIGNALLABLE_STATES]
        return [result(r, counts[app], Faults.SUCCESS, "OK") for r in live]

    async def _diff(self) -> tuple[list[str], list[str], list[str]]:
        """What the file would add, change and remove, app by app."""
        try:
            new = await asyncio.to_thread(load_config, self._api.config.path)
        except ConfigError as exc:
            raise RpcFault(Faults.CANT_REREAD, str(exc)) from None
        old = self._api.config.apps
        return ([n for n in new.apps if n not in old],
                [n for n, a in new.apps.items() if n in old and old[n] != a],
                [n for n in old if n not in new.apps])

    async def _apply(self) -> None:
        """`wharf reload`, if the file says anything new; note the apps it brought in."""
        if not any(await self._diff()):
            return
        final = await execute(self._api, "reload", {}, _NoReply())
        if not final["ok"]:
            raise RpcFault(Faults.CANT_REREAD if final.get("exit_code") == 2 else Faults.FAILED,
                           final["error"])
        changed = final["result"]
        self._applied |= {*changed["added"], *changed["rolled"], *changed["scaled"]}


def _row(rows: list[Row], target: Target) -> Row:
    return next(r for r in rows if r["app"] == target.app and r["instance"] == target.instance)


async def _read(path: Path, offset: int, length: int, missing: str | None = None) -> str:
    """readFile: bytes of a log file, decoded; `missing` if there is no such file (an app
    that has written nothing yet), or NO_FILE if None."""
    def read() -> str:
        try:
            with path.open("rb") as f:
                start, end = read_range(os.fstat(f.fileno()).st_size, offset, length)
                f.seek(start)
                return f.read(end - start).decode(errors="replace")
        except FileNotFoundError:
            if missing is not None:
                return missing
            raise RpcFault(Faults.NO_FILE, str(path)) from None
        except OSError as exc:
            raise RpcFault(Faults.FAILED, exc.strerror or "") from None

    return await asyncio.to_thread(read)


async def _tail(path: Path, offset: int, length: int) -> list[Any]:
    """tailFile: [bytes, new offset, overflow] ('' at offset for a file not there yet)."""
    def tail() -> list[Any]:
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                start, count, overflow = tail_range(size, offset, length)
                f.seek(start)
                return [f.read(count).decode(errors="replace"), size, overflow]
        except OSError:
            return ["", offset, False]

    return await asyncio.to_thread(tail)
