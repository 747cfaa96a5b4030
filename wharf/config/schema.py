"""Decode plain TOML data into frozen dataclasses, collecting every problem with its key path.

Theory of operation: the dataclass annotations are the schema. A field annotated
`Annotated[T, convert]` hands its raw value to `convert`, which returns the typed value or raises
ValueError with a message. Plain `bool`, `int`, `float`, `str`, `tuple[T, ...]`, `dict[str, T]`,
`T | None` and nested dataclasses are checked here. A field whose metadata has `from_key` takes
its value from the key of the enclosing table (`[apps.web]` gives `name = "web"`); one marked
`derived` is never read from the file (the loader fills it in); one marked `required` must be
in the file, and has a default only to stand in while the rest is checked. A dataclass may name
other tools' spellings of its keys in `FOREIGN_KEYS` (key -> what to write instead).

Why not msgspec or pydantic: msgspec stops at the first error, and pydantic adds about 11 MiB to
the daemon's RSS; this walker is a page of code and reports everything at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from typing import Any, TypeVar

from wharf.errors import Problem

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def decode(cls: type[T], data: Any, path: str, problems: list[Problem]) -> T | None:
    """Build `cls` from `data`, appending a Problem for each bad value.

    It is built even then, so that the checks that follow can still run (every problem at
    once): a bad field takes its default, a bad table entry is left out, a list with a bad item
    takes its default. Only `failed(problems, key)` says whether a value is what the file says.
    None if `data` cannot make a `cls` at all.
    """
    value = _decode_value(cls, data, path, problems)
    return None if value is _BAD else value


def failed(problems: list[Problem], key: str) -> bool:
    """Whether a problem was found at `key` or inside it (its value is then not the file's)."""
    return any(p.path == key or p.path.startswith((f"{key}.", f"{key}[")) for p in problems)


def suggestion(unknown: str, known: list[str]) -> str | None:
    """The known key `unknown` is a slip of, if it is close: a typo of it with the same first
    letter, or one a prefix of the other (`healthcheck` for `health`). Looser matching
    suggested unrelated keys (`exec_mode` -> `exit_codes`)."""
    near = [k for k in difflib.get_close_matches(unknown, known, n=3, cutoff=0.75)
            if k[0] == unknown[:1]]
    if near:
        return near[0]
    prefixed = [k for k in known if min(len(k), len(unknown)) >= 3
                and (k.startswith(unknown) or unknown.startswith(k))]
    return max(prefixed, key=len) if prefixed else None


# A value that could not be decoded at all (distinct from a valid None).
_BAD: Any = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _decode_value(tp: Any, raw: Any, path: str, problems: list[Problem]) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        value = raw
        try:
            for convert in tp.__metadata__:
                value = convert(value)
        except ValueError as exc:
            problems.append(Problem(path, str(exc)))
            return _BAD
        return value
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, raw, path, problems)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode_value(inner[0], raw, path, problems)
    if origin is tuple:
        if not isinstance(raw, list):
            problems.append(Problem(path, f"must be a list, got {_describe(raw)}"))
            return _BAD
        item = typing.get_args(tp)[0]
        items = [_decode_value(item, v, f"{path}[{i}]", problems) for i, v in enumerate(raw)]
        return _BAD if any(v is _BAD for v in items) else tuple(items)
    if origin is dict:
        if not isinstance(raw, dict):
            problems.append(Problem(path, f"must be a table, got {_describe(raw)}"))
            return _BAD
        item = typing.get_args(tp)[1]
        entries = {k: _decode_item(item, k, v, _join(path, k), problems) for k, v in raw.items()}
        return {k: v for k, v in entries.items() if v is not _BAD}
    return _decode_scalar(tp, raw, path, problems)


def _decode_item(tp: Any, key: str, raw: Any, path: str, problems: list[Problem]) -> Any:
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, raw, path, problems, key=key)
    return _decode_value(tp, raw, path, problems)


def _decode_scalar(tp: Any, raw: Any, path: str, problems: list[Problem]) -> Any:
    ok = (
        (tp is bool and isinstance(raw, bool))
        or (tp is int and isinstance(raw, int) and not isinstance(raw, bool))
        or (tp is float and isinstance(raw, int | float) and not isinstance(raw, bool))
        or (tp is str and isinstance(raw, str))
    )
    if not ok:
        problems.append(Problem(path, f"must be {_describe_type(tp)}, got {_describe(raw)}"))
        return _BAD
    return float(raw) if tp is float else raw


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a config class: resolving them took 0.7 ms a table, 150 ms
    for a provider file of 100 services."""
    return typing.get_type_hints(cls, include_extras=True)


def _decode_dataclass(
    cls: Any, raw: Any, path: str, problems: list[Problem], key: str | None = None
) -> Any:
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"must be a table, got {_describe(raw)}"))
        return _BAD
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("derived")}
    settable = [name for name, f in fields.items() if not f.metadata.get("from_key")]
    foreign: dict[str, str] = getattr(cls, "FOREIGN_KEYS", {})
    for unknown in [k for k in raw if k not in settable]:
        near = suggestion(unknown, settable)
        hint = f" ({foreign[unknown]})" if unknown in foreign else \
            f" (did you mean '{near}'?)" if near else ""
        problems.append(Problem(_join(path, unknown), f"unknown key{hint}"))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if f.metadata.get("from_key"):
            values[name] = key
        elif name in raw:
            value = _decode_value(hints[name], raw[name], _join(path, name), problems)
            if value is not _BAD:  # else the default stands in, for the later checks
                values[name] = value
        elif f.metadata.get("required") or (f.default is _MISSING
                                            and f.default_factory is _MISSING):
            problems.append(Problem(_join(path, name), "missing required key"))
    try:
        return cls(**values)
    except (TypeError, ValueError):
        return _BAD  # the problems above already say why


def _describe(raw: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    text = names.get(type(raw), type(raw).__name__)
    return f"{text} ({raw!r})" if isinstance(raw, bool | int | float | str) else text


def _describe_type(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )
