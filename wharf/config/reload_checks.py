"""What a reload may not change in a running daemon: pure comparisons of two configs."""

from __future__ import annotations

from wharf.config.model import Config
from wharf.errors import ConfigError, Problem


def check_reloadable(old: Config, new: Config) -> None:
    """Raise ConfigError if `new` changes what only a restart of the daemon can change."""
    if new.daemon.state_dir == old.daemon.state_dir:
        return
    error = ConfigError(str(new.path), [Problem(
        "daemon.state_dir", f"cannot change in a reload ({old.daemon.state_dir} -> "
        f"{new.daemon.state_dir}): the running daemon's control socket is in the old one, and "
        "every app's default log would move (all of them would restart)")])
    error.hint = ("to move it, put the old value back, stop the daemon with `wharf down`, "
                  "then change it and run `wharf up`")
    raise error
