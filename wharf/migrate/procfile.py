"""Import a Procfile (Heroku, foreman, honcho): one app per process type, `.env` beside it as
every app's `env_file`, and for `web` a route `/` through the proxy.

Heroku runs each command with a shell. A command whose only shell syntax is `$PORT` (or
`${PORT}`) becomes an argument list with Wharf's `{port}`; any other (`&&`, pipes, other
variables) runs under `/bin/sh -c` as on Heroku, with PORT in its environment.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from wharf.migrate.result import Result, Where, safe_name

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.*)$")
_PORT = re.compile(r"\$\{PORT\}|\$PORT\b")
_SHELL = re.compile(r"[$`|&;<>()*?~\[\]\\\n]|^\w+=")
# Where `web` is reached: foreman's and honcho's default port is 5000; Wharf's proxy is there.
WEB_LISTEN = "127.0.0.1:5000"


def import_procfile(path: Path, text: str, result: Result) -> None:
    """Fill `result` from a Procfile."""
    env_file = path.parent / ".env"
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = Where(path, number)
        m = _LINE.match(line.strip())
        if not m or not m.group(2).strip():
            result.drop(where, line.strip(), "not `type: command`")
            continue
        kind, command = m.group(1), m.group(2).strip()
        name = safe_name(kind)
        app: dict[str, Any] = {"command": shell_command(command)}
        if path.parent != result.base:
            app["cwd"] = result.path(path.parent)
        if env_file.is_file():
            app["env_file"] = result.path(env_file)
        if kind == "release":
            app["autorestart"] = "never"
            result.note(where, "release runs once at deploy on Heroku, before the other "
                        "processes: here it runs at `wharf up`, is not restarted, and the "
                        "others have depends_on = [\"release\"] (they start once it exited 0)")
        result.app(name, app, Where(path, number, kind))
        if kind == "web":
            result.data["proxy"] = {"listen": [WEB_LISTEN]}
            result.route({"path": "/", "app": name}, Where(path, number, kind))
    apps = result.data.get("apps", {})
    if "release" in apps:  # Heroku's release phase runs before the new dynos start
        for name, app in apps.items():
            if name != "release":
                app["depends_on"] = ["release"]
    if "web" not in result.data.get("apps", {}):
        result.note(Where(path), "no `web` process: no route and no proxy were made")


def shell_command(command: str) -> str | list[str]:
    """The command as Wharf runs it: arguments, or `/bin/sh -c` when it needs a shell."""
    plain = _PORT.sub("{port}", command)
    if not _SHELL.search(plain):
        try:
            return shlex.split(plain)
        except ValueError:
            pass
    # One command: `exec` it, so that the app, not the shell, is the instance's process.
    simple = not re.search(r"&&|\|\||[;|&\n]", command)
    return ["/bin/sh", "-c", f"exec {command}" if simple else command]
