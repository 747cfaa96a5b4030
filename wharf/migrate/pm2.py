"""Import a PM2 ecosystem file (`ecosystem.config.js`, `.json`, `.yaml`): each of its `apps`
becomes `[apps.NAME]`.

A JavaScript file is evaluated by `node` (it is code: `require` it, as PM2 does, and print
the JSON of what it exports). The command is PM2's: `interpreter` (chosen from the script's
extension when absent, none for a binary), `interpreter_args`/`node_args`, `script`, `args`.
Times given as numbers are milliseconds, as in PM2; sizes (`max_memory_restart`) are powers of
1024. `env` and, with `--env NAME`, `env_NAME` over it become `env`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from wharf.config.cron import parse_cron
from wharf.errors import UsageError
from wharf.migrate.result import Result, Where, safe_name
from wharf.migrate.units import duration, parse_time, size_1024

NODE_TIMEOUT = 10.0  # an ecosystem file that takes longer than this to load is stuck
_NODE_LOADER = """
const p = process.argv[1];
const load = () => { try { return Promise.resolve(require(p)); } catch (e) {
  if (e.code !== 'ERR_REQUIRE_ESM') throw e;
  return import(require('url').pathToFileURL(p)).then(m => m.default ?? m); } };
load().then(c => process.stdout.write(JSON.stringify(c ?? null)));
"""
# PM2's choice of interpreter by extension (lib/Common.js); Python 3 is `python3` on the
# machines Wharf runs on, where `python` may be missing.
_INTERPRETERS = {".js": "node", ".cjs": "node", ".mjs": "node", ".py": "python3",
                 ".sh": "bash", ".rb": "ruby", ".php": "php", ".pl": "perl",
                 ".coffee": "coffee", ".ts": "ts-node"}
_NO_KEY = {
    "watch_options": "chokidar's options: Wharf watches with inotify, and `watch_delay` is "
                     "its one setting",
    "wait_ready": "Wharf has no process.send('ready'): an app a route sends to is ready once "
                  "it answers on its port (set ready_path for an HTTP check)",
    "log_file": "Wharf keeps the two streams apart (stdout_log, stderr_log); "
                "`wharf logs APP` merges them",
    "combine_logs": "Wharf keeps the two streams apart; `wharf logs APP` merges them",
    "log_date_format": "Wharf stamps every line with its own format (YYYY-MM-DD HH:MM:SS.mmm)",
    "log_type": "Wharf writes lines as the app printed them, with a timestamp",
    "pid_file": "Wharf keeps pids to itself: see `wharf status --json`",
    "gid": "Wharf runs an app with the groups of its user",
    "autostart": "Wharf starts every app at `wharf up`; there is no autostart",
    "shutdown_with_message": "Wharf stops apps with a signal (stop_signal)",
    "increment_var": "Wharf gives each instance PORT and WHARF_INSTANCE instead",
    "instance_var": "Wharf names the instance variable WHARF_INSTANCE (0-based)",
    "force": "Wharf never runs one app twice",
    "vizion": "Wharf keeps no version-control metadata",
    "source_map_support": "a Node.js flag Wharf does not pass: add --enable-source-maps to "
                          "node_args",
    "treekill": "Wharf always stops the instance's whole process group",
    "deep_monitoring": "Wharf shows CPU and memory in `wharf status`",
    "namespace": "Wharf has no namespaces: one daemon per config file",
}
# Keys that say what Wharf does anyway.
_SAME = {"merge_logs": True, "exec_mode": "fork", "autorestart": True, "treekill": True,
         "vizion": False, "watch": False, "time": False, "autostart": True}


def load_ecosystem(path: Path, text: str) -> Any:
    """The data of an ecosystem file: JSON, YAML, or what a JavaScript one exports."""
    if path.suffix in (".js", ".cjs", ".mjs"):
        try:
            done = subprocess.run(["node", "-e", _NODE_LOADER, str(path)], capture_output=True,
                                  text=True, timeout=NODE_TIMEOUT, check=False,
                                  cwd=path.parent)
        except FileNotFoundError:
            raise UsageError("node is needed to read a PM2 ecosystem file written in "
                             "JavaScript", hint="install Node.js, or export it as JSON with "
                             "`pm2 ecosystem` / JSON.stringify") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"{path}: node did not finish loading it in "
                             f"{NODE_TIMEOUT:g}s") from None
        if done.returncode != 0:
            raise UsageError(f"{path}: node could not load it:\n{done.stderr.strip()}")
        text = done.stdout
    elif path.suffix in (".yaml", ".yml"):
        import yaml  # PyYAML: only for this

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None


def import_pm2(path: Path, text: str, result: Result, env_name: str | None) -> None:
    """Fill `result` from an ecosystem file."""
    data = load_ecosystem(path, text)
    apps = data.get("apps") if isinstance(data, dict) else data
    if isinstance(apps, dict):
        apps = [apps]
    if not isinstance(apps, list):
        raise UsageError(f"{path}: has no `apps` list (module.exports = {{ apps: [...] }})")
    if isinstance(data, dict):
        for key in data:
            if key != "apps":
                reason = "Wharf does not deploy: keep your deploy tool, and run `wharf " \
                         "reload` at the end" if key == "deploy" else "not a PM2 key Wharf knows"
                result.drop(Where(path, key=key), key, reason)
    chosen = False
    for index, entry in enumerate(apps):
        where = Where(path, key=f"apps[{index}]")
        if not isinstance(entry, dict):
            result.drop(where, json.dumps(entry), "an app must be an object")
            continue
        chosen |= PM2App(path, entry, where, result, env_name).convert()
    if env_name is not None and not chosen:
        result.note(Where(path), f"no app has env_{env_name}: only `env` was used")


class PM2App:
    """One entry of `apps` on its way to `[apps.NAME]`."""

    def __init__(self, path: Path, entry: dict[str, Any], where: Where, result: Result,
                 env_name: str | None) -> None:
        self.path, self.entry, self.result, self.env_name = path, entry, result, env_name
        self.used: set[str] = {"name"}
        script = str(entry.get("script", ""))
        name = str(entry.get("name") or Path(script).stem or "app")
        self.name = safe_name(name)
        self.where = Where(where.file, key=f"{where.key} ({name})")
        if self.name != name:
            result.note(self.where, f"name {name!r} is {self.name!r} in Wharf")

    def get(self, key: str) -> Any:
        """A key of the entry, marked as handled."""
        self.used.add(key)
        return self.entry.get(key)

    def drop(self, key: str, reason: str) -> None:
        """Report a key as not carried over."""
        self.result.drop(self.where, f"{key} = {json.dumps(self.entry.get(key))}", reason)

    def convert(self) -> bool:
        """Add the app; True if it had the env_NAME that was asked for."""
        app: dict[str, Any] = {}
        command = self._command()
        if command is None:
            self.drop("script", "an app needs a script")
            return False
        app["command"] = command
        if (cwd := self.get("cwd")) is not None:
            app["cwd"] = self.result.path(self.path.parent / str(cwd))
        elif self.path.parent != self.result.base:
            app["cwd"] = self.result.path(self.path.parent)
        self._instances(app)
        chosen = self._env(app)
        self._restarts(app)
        self._logs(app)
        self._triggers(app, Path(app.get("cwd", "")))
        for key in self.entry:
            if key in self.used or key.startswith("env_"):
                continue
            if key in _SAME and self.entry[key] == _SAME[key]:
                continue
            self.drop(key, _NO_KEY.get(key, "not a PM2 key Wharf knows"))
        self.result.app(self.name, app, self.where)
        return chosen

    def _command(self) -> list[str] | None:
        script = self.get("script")
        if not script:
            return None
        args = self.get("args") or []
        args = shlex.split(args) if isinstance(args, str) else [str(a) for a in args]
        interpreter = self.get("interpreter") or self.get("exec_interpreter")
        extra = self.get("interpreter_args") or self.get("node_args") or []
        extra = shlex.split(extra) if isinstance(extra, str) else [str(a) for a in extra]
        if interpreter is None:
            interpreter = _INTERPRETERS.get(Path(str(script)).suffix, "none")
        if interpreter == "none":
            return [str(script), *args]
        return [str(interpreter), *extra, str(script), *args]

    def _instances(self, app: dict[str, Any]) -> None:
        instances = self.get("instances")
        mode = self.get("exec_mode")
        if instances in ("max", -1, 0, "0", "-1"):
            app["instances"] = "auto"
        elif isinstance(instances, int | str) and str(instances).lstrip("-").isdigit():
            count = int(instances)
            app["instances"] = count if count > 0 else "auto"
            if count < 0:
                self.drop("instances", f"all CPUs but {-count}: Wharf has a number or "
                          "\"auto\" (all CPUs), and \"auto\" was written")
        elif instances is not None:
            self.drop("instances", "not a number or \"max\"")
        if mode in ("cluster", "cluster_mode"):
            self.result.note(self.where, "exec_mode cluster: PM2's instances share one port "
                             "through Node's cluster module; Wharf's each get their own PORT "
                             "(set `port` for port + i, and route to the app to balance), "
                             "or share a `socket`")

    def _env(self, app: dict[str, Any]) -> bool:
        env = dict(self.get("env") or {})
        chosen = False
        for key, value in self.entry.items():
            if not key.startswith("env_"):
                continue
            if key == f"env_{self.env_name}" and isinstance(value, dict):
                env.update(value)
                chosen = True
            else:
                self.drop(key, "not chosen: pass --env " + key.removeprefix("env_"))
        flat = {}
        for key, value in env.items():
            if isinstance(value, str | int | float | bool):
                flat[str(key)] = value if isinstance(value, str) else json.dumps(value)
            elif value is not None:
                self.result.drop(self.where, f"env.{key} = {json.dumps(value)}",
                                 "an environment variable must be a string or a number")
        port = flat.get("PORT", "")
        if port.isdigit() and 0 < int(port) < 65536:
            app["port"] = int(flat.pop("PORT"))
            self.result.note(self.where, f"env PORT={port} is Wharf's port = {port} (instance "
                             f"i gets PORT={port}+i)")
        if flat:
            app["env"] = flat
        return chosen

    def _restarts(self, app: dict[str, Any]) -> None:
        if self.get("autorestart") is False:
            app["autorestart"] = "never"
        if (codes := self.get("stop_exit_codes")) is not None:
            codes = codes if isinstance(codes, list) else [codes]
            app["exit_codes"] = [int(c) for c in codes]
            app.setdefault("autorestart", "on-failure")
        if (n := self.get("max_restarts")) is not None:
            app["startretries"] = int(n)
        for key, target in (("min_uptime", "startsecs"), ("kill_timeout", "stop_timeout"),
                            ("listen_timeout", "ready_timeout"), ("restart_delay", "backoff"),
                            ("exp_backoff_restart_delay", "backoff")):
            value = self.get(key)
            if value is None:
                continue
            try:
                seconds = parse_time(str(value), "ms")
            except ValueError as exc:
                self.drop(key, str(exc))
                continue
            app[target] = duration(seconds) if target != "startsecs" else \
                (int(seconds) if seconds == int(seconds) else seconds)
            if key == "restart_delay":  # a fixed delay: no doubling
                app["backoff_max"] = duration(seconds)
        if (limit := self.get("max_memory_restart")) is not None:
            try:
                app["max_memory"] = size_1024(str(limit))
            except ValueError as exc:
                self.drop("max_memory_restart", str(exc))
        if (user := self.get("user") or self.get("uid")) is not None:
            app["user"] = str(user)

    def _triggers(self, app: dict[str, Any], cwd: Path) -> None:
        """watch, ignore_watch, watch_delay and cron_restart: Wharf has each."""
        watch = self.get("watch")
        paths = ["."] if watch is True else [watch] if isinstance(watch, str) else \
            [str(w) for w in watch] if isinstance(watch, list) else []
        base = self.result.base / cwd
        missing = [p for p in paths if not (base / p).exists()]
        if missing:
            self.drop("watch", f"not found in the app's directory: {', '.join(missing)}")
        ignore = self.get("ignore_watch")
        ignore = [ignore] if isinstance(ignore, str) else ignore or []
        if kept := [p for p in paths if p not in missing]:
            app["watch"] = kept
            if ignore:
                app["watch_ignore"] = [str(i).removeprefix("./") for i in ignore]
            if isinstance(delay := self.get("watch_delay"), int | float) and delay > 0:
                app["watch_delay"] = f"{delay:g}ms"
        elif ignore:
            self.drop("ignore_watch", "goes with watch, which this app does not have")
        if (cron := self.get("cron_restart")) is not None:
            try:
                app["cron_restart"] = str(parse_cron(cron))
            except ValueError as exc:  # PM2 also takes croner's 6 fields (with seconds)
                self.drop("cron_restart", f"Wharf takes 5-field cron expressions: {exc}")

    def _logs(self, app: dict[str, Any]) -> None:
        for key, target in (("out_file", "stdout_log"), ("output", "stdout_log"),
                            ("error_file", "stderr_log"), ("error", "stderr_log")):
            value = self.get(key)
            if value is None:
                continue
            if value in ("/dev/null", "NULL", False):
                self.drop(key, "Wharf always writes an app's output to its log files")
            else:
                app[target] = self.result.path(self.path.parent / str(value))
