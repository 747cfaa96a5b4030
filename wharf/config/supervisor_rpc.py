"""`[supervisor_rpc]`: serve Supervisor's XML-RPC interface, so that `supervisorctl` (and
anything else written against supervisord's API) keeps working with Wharf's apps.

    [supervisor_rpc]
    listen = "unix:/run/wharf/supervisor.sock"   # or "127.0.0.1:9001"
    username = "admin"
    password = "secret"

Like supervisord's `[unix_http_server]` and `[inet_http_server]`; the Unix socket is created
mode 0700 (supervisord's default `chmod`). A TCP listener that other machines can reach must
have a password: supervisord only warns, and its API starts and stops any process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from wharf.config import converters as c
from wharf.config.schema import failed
from wharf.errors import Problem

_MAX_SOCKET_PATH = 107  # sun_path, less its NUL


def _listen(value: Any) -> Path | tuple[str, int]:
    if isinstance(value, str) and value.startswith("unix:"):
        path = value.removeprefix("unix:").removeprefix("//")
        if not path:
            raise ValueError("must name a socket path after unix:, as \"unix:/run/s.sock\"")
        return Path(path).expanduser()
    try:
        return c.address(value)
    except ValueError:
        raise ValueError("must be \"unix:/path/to/supervisor.sock\" or an address like "
                         f"\"127.0.0.1:9001\", got {value!r}") from None


@dataclass(frozen=True, slots=True)
class SupervisorRpcConfig:
    """Where and for whom Supervisor's XML-RPC interface is served."""

    listen: Annotated[Path | tuple[str, int], _listen] = field(
        default=Path("supervisor.sock"), metadata={"required": True})
    username: str | None = None
    password: str | None = None

    @property
    def unix_path(self) -> Path | None:
        """The socket's path, for a Unix listener."""
        return self.listen if isinstance(self.listen, Path) else None

    @property
    def url(self) -> str:
        """What to give `supervisorctl -s` (its `serverurl`)."""
        if isinstance(self.listen, Path):
            return f"unix://{self.listen}"
        host, port = self.listen
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def resolve_supervisor_rpc(rpc: SupervisorRpcConfig, base: Path, problems: list[Problem]
                           ) -> SupervisorRpcConfig:
    """A relative socket path is the config file's directory's; check what can be checked."""
    from wharf.config.admin_checks import is_loopback  # it imports the model, as this does

    key = "supervisor_rpc"
    if (rpc.username is None) != (rpc.password is None):
        missing = "password" if rpc.password is None else "username"
        problems.append(Problem(f"{key}.{missing}", "must be set with "
                                f"{'username' if missing == 'password' else 'password'}"))
    if failed(problems, f"{key}.listen"):
        return rpc
    if isinstance(rpc.listen, Path):
        path = rpc.listen if rpc.listen.is_absolute() else base / rpc.listen
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            problems.append(Problem(f"{key}.listen", f"too long for a Unix socket path ({path})"))
        return replace(rpc, listen=path)
    if not is_loopback(rpc.listen[0]) and rpc.password is None:
        problems.append(Problem(f"{key}.password", f"must be set when listen is not a loopback "
                                f"address ({rpc.listen[0]} can be reached from other machines, "
                                "and the API starts and stops every app)"))
    return rpc
