"""Import a supervisord.conf: `[program:x]` sections become `[apps.x]`.

The file is read as Supervisor reads it (RawConfigParser with `;` and `#` inline comments,
`[include] files` globbed relative to the main file, then `%(name)s` expansions of every
value: `here`, `program_name`, `group_name`, `host_node_name`, `numprocs`, `process_num`,
`ENV_X`). Sizes are Supervisor's (KB, MB, GB are powers of 1024).

`numprocs` with `%(process_num)...` in the command: `%(process_num)d` counted from 0 is Wharf's
`{instance}`; digits before a zero-padded one (`--port 80%(process_num)02d`) are a port base,
Wharf's `port` and `{port}`. Any other use (padding Wharf cannot write, per-process
environments) makes one app per process, named from `process_name`.
"""

from __future__ import annotations

import configparser
import glob
import os
import platform
import re
import shlex
from pathlib import Path
from typing import Any

from wharf.errors import UsageError
from wharf.migrate.result import Result, Where, safe_name
from wharf.migrate.units import duration, size_1024

_SECTION = re.compile(r"^\[([^\]]+)\]")
_OPTION = re.compile(r"^([^\s=:;#\[][^=:]*?)\s*[=:]")
_EXPANSION = re.compile(r"%(%|\((\w+)\)([#0\- +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]))")
_MARK = "\x00"  # around a process_num spec, until the app's shape is known
_TRUE, _FALSE = ("yes", "true", "on", "1"), ("no", "false", "off", "0")

# Section kinds Wharf has no counterpart for, and why.
_OTHER_SECTIONS = {
    "supervisord": "supervisord's own settings: Wharf's daemon keeps its log, pid file and "
                   "socket in daemon.state_dir",
    "unix_http_server": "Wharf's control socket is STATE_DIR/wharf.sock (mode 0600)",
    "inet_http_server": "Wharf serves no control API over TCP",
    "supervisorctl": "the `wharf` command talks to the daemon of the config it is given",
    "rpcinterface": "Wharf has no XML-RPC interface",
    "ctlplugin": "Wharf has no supervisorctl plugins",
    "eventlistener": "Wharf has no event listeners: `wharf status --json` and the control "
                     "API's events show state changes",
    "fcgi-program": "Wharf does not run FastCGI programs (its `socket` is handed over as fd 3, "
                    "not 0)",
}
# Keys of [program:x] with no Wharf counterpart, and why.
_NO_KEY = {
    "umask": "Wharf does not set a umask: the app inherits the daemon's",
    "priority": "Supervisor spawns in priority order without waiting for any to be up; "
                "Wharf's depends_on waits for readiness, a stronger promise than the file "
                "made, so none is added: write depends_on = [\"APP\"] where an app needs "
                "another up first (apps are written in priority order)",
    "autostart": "Wharf starts every app at `wharf up`; there is no autostart",
    "redirect_stderr": "Wharf keeps standard error in its own file (stderr_log); "
                       "`wharf logs APP` shows both streams merged",
    "serverurl": "Wharf has no XML-RPC interface for child processes",
    "strip_ansi": "Wharf writes output as the app printed it",
}
_STREAM_KEYS = {
    "capture_maxbytes": "Wharf has no capture mode (it serves event listeners)",
    "events_enabled": "Wharf has no event listeners",
    "syslog": "Wharf writes logs to files only",
}


class Source:
    """The parsed files: options by section, and the file and line of each."""

    def __init__(self, main: Path, result: Result) -> None:
        self.parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"),
                                                   strict=False, interpolation=None)
        self.lines: dict[tuple[str, str], Where] = {}
        self.here: dict[str, Path] = {}  # section -> directory of its file
        self.result = result
        self.read(main)
        if self.parser.has_section("include"):
            where = self.where("include", "files")
            files = self.get("include", "files", {"here": str(main.parent), **_env()}) or ""
            for pattern in files.split():
                found = sorted(glob.glob(os.path.join(main.parent, pattern)))
                if not found:
                    result.note(where, f"no file matches {pattern!r}")
                for name in found:
                    self.read(Path(name), included=True)

    def read(self, path: Path, included: bool = False) -> None:
        """Parse one file into the parser, remembering where each section and key is."""
        text = path.read_text()
        before = set(self.parser.sections())
        self.parser.read_string(text, str(path))
        if included and re.search(r"^\[include\]", text, re.M):
            self.result.drop(Where(path, key="[include]"), "[include]",
                             "an included file cannot include others (as in Supervisor)")
        for section in set(self.parser.sections()) - before:
            self.here[section] = path.parent
        section = ""
        for number, line in enumerate(text.splitlines(), 1):
            if m := _SECTION.match(line):
                section = m.group(1).strip()
                self.lines[(section, "")] = Where(path, number, f"[{section}]")
                self.here[section] = path.parent
            elif section and (m := _OPTION.match(line)):
                key = m.group(1).strip().lower()
                self.lines[(section, key)] = Where(path, number, f"[{section}]")

    def where(self, section: str, key: str = "") -> Where:
        """The file and line of a section or one of its keys."""
        return self.lines.get((section, key)) or self.lines.get((section, "")) or \
            Where(self.result.source, key=f"[{section}]")

    def get(self, section: str, key: str, names: dict[str, Any]) -> str | None:
        """A value with its expansions done, or None when absent or not expandable."""
        if not self.parser.has_option(section, key):
            return None
        raw = self.parser.get(section, key)
        try:
            return expand(raw, names)
        except ValueError as exc:
            self.result.drop(self.where(section, key), f"{key} = {raw}", str(exc))
            return None


def _env() -> dict[str, str]:
    return {f"ENV_{k}": v for k, v in os.environ.items()}


def expand(text: str, names: dict[str, Any]) -> str:
    """Supervisor's `%(name)s` expansions (Python %-formatting, `%%` for `%`). A
    `process_num` given as None is kept as a marker holding its format spec."""
    def one(m: re.Match[str]) -> str:
        if m.group(1) == "%":
            return "%"
        name, spec = m.group(2), m.group(3)
        if name not in names:
            known = ", ".join(sorted(k for k in names if not k.startswith("ENV_")))
            raise ValueError(f"%({name}) cannot be expanded (names: {known}, ENV_X)")
        if names[name] is None:
            return f"{_MARK}{spec}{_MARK}"
        try:
            return ("%" + spec) % names[name]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"%({name}){spec}: {exc}") from None

    if "%" in _EXPANSION.sub("", text):
        raise ValueError("a % that is not an expansion (write %% for a literal %)")
    return _EXPANSION.sub(one, text)


def import_supervisord(path: Path, result: Result) -> None:
    """Fill `result` from a supervisord.conf and the files it includes."""
    try:
        src = Source(path, result)
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a file Supervisor can read: {exc}") from None
    programs: list[tuple[int, str]] = []
    for section in src.parser.sections():
        kind, _, name = section.partition(":")
        if kind == "program" and name:
            priority = src.parser.get(section, "priority", fallback="999")
            programs.append((int(priority) if priority.strip().isdigit() else 999, section))
        elif kind == "group" and name:
            progs = src.parser.get(section, "programs", fallback="")
            src.result.drop(src.where(section), f"[{section}] programs = {progs}",
                            "Wharf has no groups: its commands take app names, or `all`")
        elif kind != "include":
            keys = ", ".join(src.parser.options(section))
            reason = _OTHER_SECTIONS.get(kind, "not a section Wharf knows")
            src.result.drop(src.where(section), f"[{section}]" + (f" ({keys})" if keys else ""),
                            reason)
    for _, section in sorted(programs, key=lambda p: p[0]):  # stable: file order within one
        Program(src, section).convert()


class Program:
    """One `[program:x]` section on its way to one app (or one per process)."""

    def __init__(self, src: Source, section: str) -> None:
        self.src = src
        self.section = section
        self.name = section.partition(":")[2]
        self.names: dict[str, Any] = {"here": str(src.here.get(section, Path("."))),
                                      "program_name": self.name, "group_name": self.name,
                                      "host_node_name": platform.node(), **_env()}
        self.used = {"command", "numprocs", "numprocs_start", "process_name"}

    def value(self, key: str, process_num: int | None = None) -> str | None:
        """An option, expanded; process_num None leaves a marker where it is used."""
        self.used.add(key)
        return self.src.get(self.section, key, {**self.names, "process_num": process_num})

    def number(self, key: str, num: int | None) -> int | None:
        """An integer option; a value that is not one is reported and left out."""
        text = self.value(key, num)
        if text is None:
            return None
        try:
            return _int(text)
        except ValueError as exc:
            self.src.result.drop(self.where(key), f"{key} = {text}", str(exc))
            return None

    def where(self, key: str = "") -> Where:
        """Where a key of this section is."""
        return self.src.where(self.section, key)

    def convert(self) -> None:
        """Add the app(s) of this program to the result."""
        raw = self.src.parser.get(self.section, "command", fallback=None)
        for name in sorted(set(re.findall(r"%\((ENV_\w+|host_node_name)\)", raw or ""))):
            self.src.result.note(self.where("command"), f"%({name})s expanded from this "
                                 f"machine: {self.names.get(name, '')!r}")
        try:
            numprocs = _int(self.src.get(self.section, "numprocs", self.names) or "1")
            start = _int(self.src.get(self.section, "numprocs_start", self.names) or "0")
        except ValueError as exc:
            self.src.result.drop(self.where("numprocs"), f"[{self.section}]", str(exc))
            return
        self.names["numprocs"] = numprocs
        self.start = start
        command = self.value("command", None if numprocs > 1 else start)
        if not command:
            self.src.result.drop(self.where(), f"[{self.section}]",
                                 "has no command (Supervisor refuses it too)")
            return
        app: dict[str, Any] = {}
        if numprocs > 1:
            shaped = _per_instance(command, numprocs, start) if _MARK in command \
                else (command, None)
            if shaped is None or self._marked_elsewhere(shaped[1]):
                self._split(numprocs, start)
                return
            app["command"], port = shaped
            if port is not None:
                app["port"] = port
        else:
            app["command"] = command
        if numprocs > 1:
            app["instances"] = numprocs
            process_name = self.value("process_name", None)
            named = f" ({_show(process_name)})" if process_name else ""
            self.src.result.note(self.where("numprocs"), f"{numprocs} processes{named} are "
                                 f"the instances {safe_name(self.name)}.0 to "
                                 f".{numprocs - 1}")
        self._options(app, None if numprocs > 1 else start)
        self.src.result.app(safe_name(self.name), app, self.where())

    def _marked_elsewhere(self, port: int | None) -> bool:
        """process_num in a value that Wharf gives every instance alike (but PORT, when it
        is the port of the command: Wharf sets PORT to port + i)."""
        marked = {**self.names, "process_num": None}
        for key in ("directory", "user", "environment"):
            value = self.src.get(self.section, key, marked)
            if not value or _MARK not in value:
                continue
            if key != "environment" or port is None:
                return True
            try:
                pairs = env_pairs(value)
            except ValueError:
                return False  # reported when the environment is read
            for name, text in pairs.items():
                if _MARK in text and (name != "PORT" or _per_instance(
                        text, self.names["numprocs"], self.start) != ("{port}", port)):
                    return True
        return False

    def _split(self, numprocs: int, start: int) -> None:
        names = []
        for num in range(start, start + numprocs):
            app: dict[str, Any] = {"command": self.value("command", num)}
            self._options(app, num)
            name = safe_name(self.value("process_name", num) or f"{self.name}_{num}")
            names.append(name)
            self.src.result.app(name, app, self.where())
        self.src.result.note(self.where("numprocs"), f"numprocs = {numprocs} became the apps "
                             f"{', '.join(names)}: %(process_num) is used where Wharf's "
                             "{instance} and {port} cannot stand for it")

    def _options(self, app: dict[str, Any], num: int | None) -> None:
        result = self.src.result
        for key, target in (("directory", "cwd"), ("user", "user")):
            if (v := self.value(key, num)) is not None:
                app[target] = result.path(v) if key == "directory" else v
        if (v := self.value("environment", num)) is not None:
            try:
                env = env_pairs(v)
            except ValueError as exc:
                result.drop(self.where("environment"), f"environment = {v}", str(exc))
            else:
                if app.get("port") is not None and _MARK in env.get("PORT", ""):
                    env.pop("PORT")  # Wharf gives each instance PORT = port + i
                app["env"] = env
        restart = (self.value("autorestart", num) or "unexpected").lower()
        app["autorestart"] = {"unexpected": "on-failure"}.get(
            restart, "always" if restart in _TRUE else "never")
        if (v := self.value("exitcodes", num)) is not None:
            try:
                app["exit_codes"] = [_int(x) for x in v.split(",") if x.strip()]
            except ValueError as exc:
                result.drop(self.where("exitcodes"), f"exitcodes = {v}", str(exc))
        for key, target in (("startsecs", "startsecs"), ("startretries", "startretries"),
                            ("stopwaitsecs", "stop_timeout")):
            if (n := self.number(key, num)) is not None:
                app[target] = duration(n) if key == "stopwaitsecs" else n
        if (v := self.value("stopsignal", num)) is not None:
            app["stop_signal"] = v.upper()
        self._logs(app, num)
        self._rest(app, num)

    def _logs(self, app: dict[str, Any], num: int | None) -> None:
        result = self.src.result
        sizes: dict[str, tuple[str, str | None, str | None]] = {}
        for stream, target in (("stdout", "stdout_log"), ("stderr", "stderr_log")):
            path = self.value(f"{stream}_logfile", num)
            if path is not None and path.upper() in ("NONE", "SYSLOG"):
                result.drop(self.where(f"{stream}_logfile"), f"{stream}_logfile = {path}",
                            "Wharf always writes an app's output to its log files")
            elif path is not None and _MARK in path:
                result.drop(self.where(f"{stream}_logfile"), f"{stream}_logfile = "
                            f"{_show(path)}", "one file per process: Wharf writes "
                            f"all instances to one {target} (default STATE_DIR/logs/)")
            elif path is not None and path.upper() != "AUTO" and \
                    result.path(path) == app.get("stdout_log"):
                result.drop(self.where(f"{stream}_logfile"), f"{stream}_logfile = {path}",
                            "the file of stdout_logfile: Wharf writes each stream to its own "
                            "file (stderr_log: default STATE_DIR/logs/APP.err.log)")
            elif path is not None and path.upper() != "AUTO":
                app[target] = result.path(path)
            sizes[stream] = (target, self.value(f"{stream}_logfile_maxbytes", num),
                             self.value(f"{stream}_logfile_backups", num))
        for position, target in ((1, "log_max_size"), (2, "log_backups")):
            given = [(s, v[position]) for s, v in sizes.items() if v[position] is not None]
            if not given:
                continue
            stream, text = given[0]
            key = f"{stream}_logfile_{'maxbytes' if position == 1 else 'backups'}"
            if position == 1 and text is not None and text.strip() in ("0", "0B", "0KB", "0MB"):
                result.drop(self.where(key), f"{key} = {text}", "Wharf always rotates (at "
                            "log_max_size, default 10MB); there is no unlimited size")
            elif text is not None:
                try:
                    app[target] = size_1024(text) if position == 1 else min(_int(text), 100)
                except ValueError as exc:
                    result.drop(self.where(key), f"{key} = {text}", str(exc))
            for other, other_text in given[1:]:
                if other_text != text:
                    okey = key.replace(stream, other)
                    result.drop(self.where(okey), f"{okey} = {other_text}",
                                f"Wharf has one {target} for both streams ({text})")

    def _rest(self, app: dict[str, Any], num: int | None) -> None:
        result = self.src.result
        for key in ("stopasgroup", "killasgroup"):
            v = self.value(key, num)
            if v is not None and v.lower() in _FALSE:
                result.drop(self.where(key), f"{key} = {v}", "Wharf always signals the "
                            "instance's whole process group (as with true)")
        for key in self.src.parser.options(self.section):
            if key in self.used:
                continue
            self.used.add(key)
            raw = self.src.parser.get(self.section, key)
            stream, _, rest = key.partition("_")
            reason = _NO_KEY.get(key) or (_STREAM_KEYS.get(rest) if stream in (
                "stdout", "stderr") else None) or "not a [program:x] key Wharf knows"
            if key == "autostart" and raw.lower() in _TRUE:
                continue  # Wharf's behaviour
            if (key == "redirect_stderr" and raw.lower() in _FALSE) or \
                    (key == "priority" and raw.strip() == "999"):  # the default: no order
                continue
            if rest in _STREAM_KEYS and raw.lower() in (*_FALSE, "0", "0mb", "0kb"):
                continue
            result.drop(self.where(key), f"{key} = {raw}", reason)


def _per_instance(command: str, numprocs: int, start: int) -> tuple[str, int | None] | None:
    """The command with process_num as {instance} or {port}; None if Wharf cannot say it."""
    port: int | None = None
    out: list[str] = []
    parts = command.split(_MARK)
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(part)
            continue
        spec = part
        m = re.fullmatch(r"0?(\d*)d|s|i|d", spec)
        if m is None:
            return None
        width = int(m.group(1)) if m.groups() and m.group(1) else 0
        digits = re.search(r"(?:^|(?<=[:= ]))(\d+)$", out[-1])
        if digits:
            place = 10 ** max(width, 1)
            base = int(digits.group(1)) * place + start
            if base + numprocs - 1 >= (int(digits.group(1)) + 1) * place or not \
                    1024 <= base <= 65535 - numprocs or (port is not None and port != base):
                return None
            out[-1] = out[-1][:digits.start(1)]
            port = base
            out.append("{port}")
        elif width <= 1 and start == 0 and spec in ("s", "d", "i"):
            out.append("{instance}")
        else:
            return None
    return "".join(out), port


def _show(text: str) -> str:
    """A value with its process_num markers written back as Supervisor wrote them."""
    return re.sub(f"{_MARK}(.*?){_MARK}", r"%(process_num)\1", text)


def env_pairs(text: str) -> dict[str, str]:
    """Supervisor's `KEY="val",KEY2=val` (its datatypes.dict_of_key_value_pairs)."""
    lexer = shlex.shlex(text)
    lexer.wordchars += "/.+-():" + _MARK
    tokens = list(lexer)
    env: dict[str, str] = {}
    for i in range(0, len(tokens), 4):
        k_eq_v = tokens[i:i + 3]
        if len(k_eq_v) != 3 or k_eq_v[1] != "=" or (i + 3 < len(tokens) and
                                                    tokens[i + 3] != ","):
            raise ValueError("is not KEY=\"value\",KEY2=value (as Supervisor reads it)")
        env[k_eq_v[0]] = k_eq_v[2].strip("'\"")
    return env


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
