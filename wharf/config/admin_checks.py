"""Checks of `[admin]`: where the token comes from, and who may reach the listener."""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import replace
from pathlib import Path

from wharf.config.model import AdminConfig
from wharf.config.schema import failed
from wharf.errors import Problem

TOKEN_FILE = "admin.token"  # the default, in the state directory


def is_loopback(host: str) -> bool:
    """True if only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_admin(admin: AdminConfig, state_dir: Path, base: Path,
                  problems: list[Problem]) -> AdminConfig:
    """Fill in the token file; a listener others can reach must name its token file, and a
    token file that exists must be the user's alone and hold a token."""
    host = admin.listen[0]
    if admin.token_file is None:
        if not is_loopback(host) and not failed(problems, "admin.listen"):
            problems.append(Problem("admin.token_file", f"must be set when admin.listen is not "
                                    f"a loopback address ({host} can be reached from other "
                                    "machines): name a file holding the token (created with "
                                    "a random one, mode 0600, if missing)"))
        return replace(admin, token_file=state_dir / TOKEN_FILE)
    path = admin.token_file if admin.token_file.is_absolute() else base / admin.token_file
    _check_token_file(path, problems)
    return replace(admin, token_file=path)


def _check_token_file(path: Path, problems: list[Problem]) -> None:
    key = "admin.token_file"
    try:
        info = path.stat()
    except FileNotFoundError:
        return  # `up` creates it
    except OSError as exc:
        problems.append(Problem(key, f"cannot read {path}: {exc.strerror}"))
        return
    if not stat.S_ISREG(info.st_mode):
        problems.append(Problem(key, f"is not a file: {path}"))
    elif info.st_mode & 0o077:
        problems.append(Problem(key, f"{path} can be read by others (mode "
                                f"{stat.S_IMODE(info.st_mode):o}): `chmod 600 {path}`"))
    elif not os.access(path, os.R_OK):
        problems.append(Problem(key, f"cannot read {path}"))
    elif not path.read_text(errors="replace").strip():
        problems.append(Problem(key, f"{path} is empty: write a token in it (at least 16 "
                                "characters), or remove it to have `up` create one"))
