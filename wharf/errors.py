"""The exception hierarchy: one root, split by who is at fault, with text written for the user."""

from __future__ import annotations

from dataclasses import dataclass


class WharfError(Exception):
    """Root of every error Wharf raises on purpose; `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a config file, at a dotted key path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(WharfError, ValueError):
    """The configuration is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = [f"{source}: {count}:"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


class SupervisorError(WharfError):
    """A process could not be started, signalled or found."""


class ControlError(WharfError):
    """The control socket could not be reached, or a command was refused."""


class UsageError(WharfError):
    """The command line asks for something that cannot be done (unknown app, bad argument)."""

    exit_code = 2
