"""The typed, frozen configuration: what `wharf.toml` means once it has been validated.

Each field's annotation names its converter; `schema.decode` applies them. Defaults follow
Supervisor where it has the same setting (startsecs 1, startretries 3, stop_signal TERM) and PM2
where Supervisor has none (autorestart always, exponential backoff from 100 ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from wharf.config import converters as c

Autorestart = Literal["always", "on-failure", "never"]


def _env_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be a table of NAME = \"value\"")
    bad = [k for k, v in value.items() if not isinstance(v, str | int | float | bool)]
    if bad:
        raise ValueError(f"values must be strings or numbers, not tables or lists: {bad}")
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path string, got {value!r}")
    return Path(value).expanduser()


def _exit_codes(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value
    ):
        raise ValueError(f"must be a list of exit codes 0-255, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """One supervised program (`[apps.NAME]`), run as `instances` identical processes."""

    command: Annotated[tuple[str, ...], c.command_args]
    name: str = field(default="", metadata={"from_key": True})
    cwd: Annotated[Path | None, _path] = None
    env: Annotated[dict[str, str], _env_table] = field(default_factory=dict)
    env_file: Annotated[Path | None, _path] = None
    user: str | None = None
    instances: Annotated[int, c.integer(1, 1000)] = 1
    port: Annotated[int | None, c.integer(1, 65535)] = None
    autorestart: Annotated[Autorestart, c.one_of("always", "on-failure", "never")] = "always"
    exit_codes: Annotated[tuple[int, ...], _exit_codes] = (0,)
    startsecs: Annotated[float, c.duration] = 1.0
    startretries: Annotated[int, c.integer(0, 1000)] = 3
    backoff: Annotated[float, c.duration] = 0.1
    backoff_max: Annotated[float, c.duration] = 30.0
    stop_signal: Annotated[int, c.signal_number] = 15
    stop_timeout: Annotated[float, c.duration] = 10.0
    max_memory: Annotated[int | None, c.byte_size] = None
    stdout_log: Annotated[Path | None, _path] = None
    stderr_log: Annotated[Path | None, _path] = None
    log_max_size: Annotated[int, c.byte_size] = 10_000_000
    log_backups: Annotated[int, c.integer(0, 100)] = 5

    def same_except_instances(self, other: AppConfig) -> bool:
        """True when only the instance count differs: a reload can scale instead of restart."""
        from dataclasses import replace

        return replace(self, instances=other.instances) == other


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Settings of the daemon itself (`[daemon]`)."""

    state_dir: Annotated[Path, _path] = Path(".wharf")
    port_range: Annotated[tuple[int, int], c.port_range] = (20000, 29999)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated `wharf.toml`; `path` is the file it came from."""

    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    apps: dict[str, AppConfig] = field(default_factory=dict)
    path: Path = field(default=Path("wharf.toml"), metadata={"derived": True})
