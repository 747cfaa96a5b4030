"""`wharf startup systemd [--user] [--print]`: a unit that starts the daemon at boot.

What the unit says, and why:
- `Type=notify`: the daemon sends READY=1 once its apps are up (see `daemon/systemd.py`), so
  `systemctl start` returns when `wharf up -d` would, and units ordered after this one start
  once the apps serve. `ExecStart` runs `wharf up` in the foreground: the daemon is the main
  process, its output and the apps' go to the journal.
- `ExecReload=wharf reload`: `systemctl reload` applies the edited file with no dropped request,
  and fails (the daemon keeps running as it was) if the file is bad.
- No `ExecStop`: systemd's SIGTERM is what `wharf down` asks for, a graceful stop (the proxy
  drains first, then every app gets its own stop_signal and stop_timeout).
- `KillMode=mixed`: SIGTERM goes to the daemon alone; the default (`control-group`) would
  signal every app at once, skipping the drain and the apps' own stop signals. Anything left
  once the daemon has exited is SIGKILLed with the cgroup.
- `TimeoutStopSec` covers the daemon's own stop (the proxy's drain, then the slowest app's
  stop_timeout, each with the daemon's margin), so systemd never SIGKILLs apps that are still
  draining; `TimeoutStartSec` covers the slowest app's start window. Both are computed from the
  file: run `wharf startup systemd` again after changing stop_timeout or startsecs.
- `WatchdogSec`: the daemon's loop pings every half of it; a stuck loop is restarted
  (`Restart=on-failure`, also after a crash).
- `Environment=PATH=...`: the PATH of the shell that ran this command (as `pm2 startup` does):
  systemd's own PATH would not find commands in a virtualenv or ~/.local/bin.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from wharf.config.model import AppConfig, Config
from wharf.errors import UsageError

WATCHDOG_SEC = 30
STOP_MARGIN = 5.0  # what the daemon adds to each stop_timeout before it SIGKILLs
UNIT_MARGIN = 15.0  # for the daemon's own start and exit


def wharf_command() -> list[str]:
    """How to run this Wharf from a unit: its console script if that is what runs, else this
    interpreter with `-m wharf`."""
    script = Path(sys.argv[0])
    if script.name == "wharf" and os.access(script, os.X_OK):
        return [str(script.absolute())]
    return [sys.executable, "-m", "wharf"]


def unit_name(config: Config, name: str | None) -> str:
    """`wharf-NAME.service`, NAME given or that of the config file's directory."""
    base = name or config.path.parent.name or "default"
    cleaned = re.sub(r"[^A-Za-z0-9:_.\\-]", "-", base).strip("-") or "default"
    return cleaned if cleaned.endswith(".service") else f"wharf-{cleaned}.service"


def quote(arg: str) -> str:
    """One word of a unit's command line (systemd.service(5) "Command lines"): `%` and `$`
    doubled so they stay literal; quoted if it has spaces, quotes or backslashes."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stop_timeout(config: Config) -> float:
    """Seconds the daemon may take to stop: the proxy workers first, then every app at once."""
    from wharf.proxy import DRAIN_TIMEOUT

    proxy = DRAIN_TIMEOUT + 2.0 + STOP_MARGIN if config.proxy is not None else 0.0
    apps = max((a.stop_timeout + STOP_MARGIN for a in config.apps.values()), default=0.0)
    return proxy + apps + UNIT_MARGIN


def start_timeout(config: Config) -> float:
    """Seconds the daemon may take to say READY=1: every app's start window at most (every
    retry with its backoff, then readiness)."""
    def window(app: AppConfig) -> float:
        tries = app.startretries + 1
        backoff = sum(min(app.backoff_max, app.backoff * 2 ** k) for k in range(tries - 1))
        return tries * app.startsecs + backoff + app.ready_timeout + STOP_MARGIN

    return max((window(a) for a in config.apps.values()), default=0.0) + UNIT_MARGIN


def systemd_unit(config: Config, user: bool, command: list[str], path_env: str) -> str:
    """The text of the unit that runs the daemon of `config`."""
    conf = str(config.path)
    start = " ".join(quote(a) for a in [*command, "up", "-c", conf])
    reload = " ".join(quote(a) for a in [*command, "reload", "-c", conf])
    after = "" if user else "After=network-online.target\nWants=network-online.target\n"
    return (
        "# Written by `wharf startup systemd`; run it again after changing stop_timeout,\n"
        "# startsecs or startretries (the timeouts below are computed from them).\n"
        "[Unit]\n"
        f"Description=Wharf: the apps of {conf}\n"
        f"{after}"
        "\n[Service]\n"
        "Type=notify\n"
        f"ExecStart={start}\n"
        f"ExecReload={reload}\n"
        f"WorkingDirectory={quote(str(config.path.parent))}\n"
        f"Environment={quote('PATH=' + path_env)}\n"
        "KillMode=mixed\n"
        f"TimeoutStartSec={start_timeout(config):.0f}\n"
        f"TimeoutStopSec={stop_timeout(config):.0f}\n"
        f"WatchdogSec={WATCHDOG_SEC}\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "\n[Install]\n"
        f"WantedBy={'default.target' if user else 'multi-user.target'}\n")


def unit_dir(user: bool) -> Path:
    """Where systemd reads units: the system's, or the user's ($XDG_CONFIG_HOME)."""
    if not user:
        return Path("/etc/systemd/system")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def startup_systemd(config_path: Path, user: bool, print_only: bool, name: str | None) -> int:
    """Write (or print) the unit, then say how to enable it."""
    from wharf.config import load_config

    config = load_config(config_path)
    text = systemd_unit(config, user, wharf_command(), os.environ.get("PATH", os.defpath))
    if print_only:
        sys.stdout.write(text)
        return 0
    target = unit_dir(user) / unit_name(config, name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}",
                         hint="run it with sudo, or use --user for a unit of your own "
                              "(or --print and place it yourself)") from None
    ctl = "systemctl --user" if user else "sudo systemctl"
    unit = target.name.removesuffix(".service")
    print(f"wharf: wrote {target}\nthen:\n  {ctl} daemon-reload\n  {ctl} enable --now {unit}")
    if user:
        print("  loginctl enable-linger  # to start at boot, not at your first login")
    print(f"stop the daemon started by hand first (`wharf down -c {config.path}`); "
          f"then `{ctl} reload {unit}` re-reads the file, `journalctl"
          f"{' --user' if user else ''} -u {unit}` shows the output")
    return 0
