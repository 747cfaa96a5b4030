"""What the control commands may ask of the daemon: a Protocol, so control never imports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wharf.observability.events import EventStream
from wharf.observability.traffic import WorkerTraffic

if TYPE_CHECKING:
    from wharf.config.model import Config


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload changed, app by app."""

    added: list[str]
    removed: list[str]
    rolled: list[str]
    scaled: list[str]
    unchanged: list[str]
    failed: list[str] = field(default_factory=list)  # "app (why)": left as they were


class DaemonApi(Protocol):
    """The daemon as the command handlers see it."""

    events: EventStream
    config: Config  # the file as last applied

    def app_names(self) -> list[str]: ...

    def status_rows(self, app: str | None, backends: bool = False) -> list[dict[str, Any]]: ...

    async def start_app(self, app: str | None, timeout: float,
                        instance: int | None = None) -> None: ...

    async def stop_app(self, app: str | None, instance: int | None = None) -> None: ...

    async def restart_app(self, app: str | None, timeout: float) -> None: ...

    async def scale_app(self, app: str, count: int, timeout: float) -> None: ...

    async def roll_app(self, app: str, timeout: float) -> None: ...

    def signal_app(self, app: str | None, sig: int) -> list[tuple[str, int, int]]: ...

    async def reload(self) -> ReloadResult: ...

    async def wait_started(self, app: str | None) -> None: ...

    def request_shutdown(self) -> None: ...

    def cert_rows(self) -> list[dict[str, Any]]: ...

    def traffic(self) -> WorkerTraffic: ...

    def cert_ca(self) -> str: ...

    async def renew_cert(self, name: str, timeout: float) -> dict[str, Any]: ...

    def log_paths(self, app: str) -> tuple[Path, Path]: ...

    def follow_logs(self, app: str, callback: Callable[[str, bytes], None]) -> Callable[[], None]:
        ...


class Reply(Protocol):
    """A connection to the client: a handler may stream messages before its result."""

    def send(self, message: dict[str, Any]) -> None: ...

    async def closed(self) -> None: ...
