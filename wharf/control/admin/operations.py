"""The operations of the admin HTTP API: each one a control command (see `commands/`) reached by
a method and a path. The table is the single source of the routing and of the OpenAPI
document, so no operation can be served and not described.

Parameters come in the query string (`?timeout=30`) and the path (`{app}`); a request body is
never needed (curl -X POST is enough). How an answer streams is chosen by the Accept header:
`text/event-stream` follows (logs, events), `application/x-ndjson` reports the progress of a
long operation line by line; without them every operation answers once, with JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from wharf.errors import UsageError


class Kind(Enum):
    """The type of a parameter, as OpenAPI names it."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: in the path if its name is in the path's braces, else in the query."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    arg: str = ""  # the command's argument name, if not `name`

    def convert(self, raw: str) -> Any:
        """The typed value of a raw string; UsageError saying what is wrong."""
        try:
            if self.kind == Kind.INTEGER:
                value: Any = int(raw)
            elif self.kind == Kind.NUMBER:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError(raw)
            elif self.kind == Kind.BOOLEAN:
                value = {"true": True, "false": False, "1": True, "0": False}[raw.lower()]
            else:
                value = raw
        except (ValueError, KeyError):
            raise UsageError(f"{self.name} must be {self.kind.value}, got {raw!r}") from None
        if isinstance(value, int | float) and not isinstance(value, bool) and (
                (self.minimum is not None and value < self.minimum)
                or (self.maximum is not None and value > self.maximum)):
            raise UsageError(f"{self.name} must be between {self.minimum:g} and "
                             f"{self.maximum:g}, got {raw}")
        return value


class Stream(Enum):
    """How an operation may stream, with the Accept header that asks for it."""

    NONE = ""
    SSE = "text/event-stream"  # follows until the client goes away
    PROGRESS = "application/x-ndjson"  # the events of the change, then the result


@dataclass(frozen=True, slots=True)
class Operation:
    """An HTTP method and path that runs one control command."""

    id: str  # the OpenAPI operationId
    method: str
    path: str  # with {app} for the app parameter
    command: str
    summary: str
    result: str  # the name of the result's schema (see openapi.py)
    params: tuple[Param, ...] = ()
    stream: Stream = Stream.NONE
    all_apps: bool = True  # {app} may be "all"
    collect: bool = False  # the answer is the list of streamed items, not the result
    fixed: tuple[tuple[str, Any], ...] = ()  # arguments every call passes

    @property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regular expression, {app} matching one segment."""
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
                          + "$")


APP = Param("app", Kind.STRING, "an app name, or `all` where every app is meant",
            required=True)
TIMEOUT = Param("timeout", Kind.NUMBER, "seconds to wait for the instances to take traffic "
                "(60)", minimum=0.001, maximum=86400)
LINES = Param("lines", Kind.INTEGER, "how many lines of history", minimum=0, maximum=100000)

OPERATIONS: tuple[Operation, ...] = (
    Operation("status", "GET", "/api/status", "status", "every instance, then every backend of "
              "every route, with health (what `wharf status --json` prints)", "StatusRows",
              (Param("app", Kind.STRING, "only this app (or `all`)"),)),
    Operation("start", "POST", "/api/apps/{app}/start", "start", "start an app and wait until "
              "it takes traffic", "StatusRows", (APP, TIMEOUT), Stream.PROGRESS),
    Operation("stop", "POST", "/api/apps/{app}/stop", "stop", "stop an app and wait until it "
              "has exited", "StatusRows", (APP,), Stream.PROGRESS),
    Operation("restart", "POST", "/api/apps/{app}/restart", "restart", "restart an app (one "
              "with a route is rolled: no failed request) and wait", "StatusRows",
              (APP, TIMEOUT), Stream.PROGRESS),
    Operation("scale", "POST", "/api/apps/{app}/scale", "scale", "run COUNT instances of an app",
              "StatusRows", (APP, Param("count", Kind.INTEGER, "how many instances",
                                        required=True, minimum=1, maximum=1000), TIMEOUT),
              Stream.PROGRESS, all_apps=False),
    Operation("roll", "POST", "/api/apps/{app}/reload", "reload", "replace an app's instances "
              "one batch at a time (`wharf reload APP`)", "Rolled", (APP, TIMEOUT),
              Stream.PROGRESS, all_apps=False),
    Operation("signal", "POST", "/api/apps/{app}/signal", "signal", "send a signal to every "
              "instance's main process", "SignalRows",
              (APP, Param("signal", Kind.STRING, "a name (HUP, SIGUSR1) or a number",
                          required=True))),
    Operation("wait", "POST", "/api/apps/{app}/wait", "wait", "wait until every instance takes "
              "traffic or has failed", "StatusRows", (APP,)),
    Operation("reload", "POST", "/api/reload", "reload", "re-read the config file and apply the "
              "difference", "ReloadResult", (TIMEOUT,), Stream.PROGRESS),
    Operation("logs", "GET", "/api/apps/{app}/logs", "logs", "the last lines of an app's output "
              "(`all`: every app's, by time); follows with Accept: text/event-stream",
              "LogLines", (APP, Param("lines", Kind.INTEGER, "lines of history (20)",
                                      minimum=0, maximum=100000)),
              Stream.SSE, collect=True),
    Operation("events", "GET", "/api/events", "events", "the recent events, oldest first; "
              "follows with Accept: text/event-stream", "Events",
              (Param("lines", Kind.INTEGER, "how many past events (50)", minimum=0,
                     maximum=100000),
               Param("after", Kind.INTEGER, "only events after this seq", minimum=0,
                     maximum=2**53)),
              Stream.SSE, collect=True, fixed=(("json", True),)),
    Operation("traffic", "GET", "/api/traffic", "traffic", "the proxy's traffic counters since "
              "the daemon started, per route, service and backend (two readings give rates "
              "and quantiles)", "Traffic"),
    Operation("certs", "GET", "/api/certs", "certs", "every name Wharf serves a certificate "
              "for: source, issuer, validity, next renewal, last error", "Certificates"),
    Operation("certs_ca", "GET", "/api/certs/ca", "certs", "the local CA's certificate (PEM), "
              "to trust", "CaPem", fixed=(("ca", True),)),
    Operation("renew", "POST", "/api/certs/{name}/renew", "certs", "renew an ACME or local-CA "
              "name's certificate now, and wait", "Certificates",
              (Param("name", Kind.STRING, "the certificate's name (a route host)",
                     required=True, arg="renew"), TIMEOUT)),
)


def match(method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
    """The operation for a request, its path parameters, and whether the path exists at all
    (for 405 rather than 404)."""
    known = False
    for operation in OPERATIONS:
        found = operation.pattern.match(path)
        if found:
            known = True
            if operation.method == method:
                return operation, found.groupdict(), True
    return None, {}, known
