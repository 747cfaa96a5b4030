"""The OpenAPI 3 document of the admin API (served at /api/openapi.json), built from the
operations table, so that it describes every operation the listener serves."""

from __future__ import annotations

from functools import cache
from typing import Any

from wharf.control.admin.operations import OPERATIONS, Operation, Param, Stream
from wharf.observability.events import EventKind


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": kind, "nullable": True}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


_STR, _INT, _NUM, _BOOL = ({"type": t} for t in ("string", "integer", "number", "boolean"))
_STRS = {"type": "array", "items": _STR}

SCHEMAS: dict[str, Any] = {
    "InstanceRow": _object({
        "kind": {"type": "string", "enum": ["instance"]}, "ready": _BOOL, "app": _STR,
        "instance": _INT, "pid": _nullable("integer"),
        "state": {"type": "string", "enum": ["STOPPED", "STARTING", "RUNNING", "BACKOFF",
                                             "STOPPING", "EXITED", "FATAL"]},
        "port": _nullable("integer"), "uptime_s": _nullable("number"), "restarts": _INT,
        "exit_code": _nullable("integer"), "exit_signal": _nullable("integer"),
        "reason": _STR, "last_restart": _STR, "cpu_percent": _nullable("number"),
        "rss_bytes": _nullable("integer"), "listen": _STRS, "uses_port": _BOOL,
        "next_try_in_s": _nullable("number"), "configured_instances": _INT}),
    "BackendRow": _object({
        "kind": {"type": "string", "enum": ["backend"]}, "service": _STR,
        "host": _nullable("string"), "route": _STR,
        "app": _nullable("string"), "backend": _STR, "weight": _INT, "balance": _STR,
        "health": {"type": "string", "enum": ["up", "down", "unchecked"]}, "ejected": _BOOL,
        "inflight": _INT, "last_error": _STR}),
    "CertificateRow": {"type": "object", "required": ["name", "source"], "properties": {
        "kind": {"type": "string", "enum": ["certificate"]}, "name": _STR,
        "source": {"type": "string", "enum": ["file", "acme", "local"]},
        "issuer": _nullable("string"), "not_before": _nullable("number"),
        "not_after": _nullable("number"), "serial": _nullable("string"),
        "next_renewal": _nullable("number"), "last_error": _nullable("string"),
        "last_error_at": _nullable("number"), "path": _STR, "order_url": _nullable("string")}},
    "ProviderRow": _object({
        "kind": {"type": "string", "enum": ["provider"]}, "provider": _STR, "source": _STR,
        "state": {"type": "string", "enum": ["ok", "invalid", "conflict", "unreachable"]},
        "routes": _INT, "services": _INT, "problems": _STRS}),
    "StatusRows": {"type": "array", "items": {"oneOf": [
        {"$ref": "#/components/schemas/InstanceRow"},
        {"$ref": "#/components/schemas/BackendRow"},
        {"$ref": "#/components/schemas/ProviderRow"},
        {"allOf": [{"$ref": "#/components/schemas/CertificateRow"},
                   {"type": "object", "required": ["kind"]}]}]}},
    "Histogram": _object({"buckets": {"type": "array", "items": _INT}, "sum": _NUM}),
    "Traffic": _object({
        "bounds": {"type": "array", "items": _NUM},
        "routes": {"type": "array", "items": _object({
            "route": _STR, "requests": {"type": "array", "items": _INT},
            "duration": {"$ref": "#/components/schemas/Histogram"}, "bytes_in": _INT,
            "bytes_out": _INT, "rate_limited": _INT})},
        "services": {"type": "array", "items": _object({
            "service": _STR, "retries": _INT, "queue_timeouts": _INT, "queued": _INT})},
        "backends": {"type": "array", "items": _object({
            "service": _STR, "backend": _STR, "requests": {"type": "array", "items": _INT},
            "upstream": {"$ref": "#/components/schemas/Histogram"}, "connect_errors": _INT,
            "ejections": _INT})},
        "connections": _INT}),
    "Certificates": {"type": "array", "items": {"$ref": "#/components/schemas/CertificateRow"}},
    "CaPem": _object({"ca_pem": _STR}),
    "SignalRows": {"type": "array", "items": _object({
        "app": _STR, "instance": _INT, "pid": _INT, "signal": _STR})},
    "Rolled": _object({"rolled": _STRS}),
    "ReloadResult": _object({k: _STRS for k in ("added", "removed", "rolled", "scaled",
                                                "unchanged", "failed")}),
    "LogLines": {"type": "array", "items": _object({
        "stream": {"type": "string", "enum": ["out", "err"]}, "data": _STR})},
    "Event": _object({
        "seq": _INT, "time": _NUM, "kind": {"type": "string", "enum": [k.value for k in
                                                                       EventKind]},
        "level": {"type": "string", "enum": ["info", "warning"]}, "message": _STR,
        "app": _nullable("string"), "instance": _nullable("integer"),
        "pid": _nullable("integer"), "exit_code": _nullable("integer"),
        "exit_signal": _nullable("integer"), "service": _nullable("string"),
        "backend": _nullable("string"), "certificate": _nullable("string")}),
    "Events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
    "Error": {"type": "object", "required": ["error"], "properties": {
        "ok": _BOOL, "error": _STR, "hint": _STR, "exit_code": _INT, "internal": _BOOL}},
}

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_UNAUTHORIZED = {"description": "no token, or a wrong one", **_ERROR}
_TEXT = {"schema": {"type": "string"}}


def _parameter(param: Param, operation: Operation) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.kind.value}
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    where = "path" if f"{{{param.name}}}" in operation.path else "query"
    return {"name": param.name, "in": where, "required": param.required or where == "path",
            "description": param.description, "schema": schema}


def _operation(operation: Operation) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{operation.result}"}}}
    if operation.stream == Stream.SSE:
        content["text/event-stream"] = _TEXT
    elif operation.stream == Stream.PROGRESS:
        content["application/x-ndjson"] = _TEXT
    responses: dict[str, Any] = {
        "200": {"description": "done", "content": content},
        "400": {"description": "a bad parameter (the CLI's exit 2)", **_ERROR},
        "401": _UNAUTHORIZED,
        "404": {"description": "no such app, or no such path", **_ERROR},
    }
    if operation.method == "POST" or operation.command in ("logs", "status"):
        responses["409"] = {"description": "the command failed (the CLI's exit 1)", **_ERROR}
    return {"operationId": operation.id, "summary": operation.summary,
            "parameters": [_parameter(p, operation) for p in operation.params],
            "responses": responses}


@cache
def document(metrics_auth: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every operation."""
    paths: dict[str, Any] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    paths["/api/openapi.json"] = {"get": {
        "operationId": "openapi", "summary": "this document",
        "responses": {"200": {"description": "the OpenAPI document",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "401": _UNAUTHORIZED}}}
    paths["/api/session"] = {
        "post": {"operationId": "login", "summary": "log a browser in: the session cookie "
                 "for this token", "security": [],
                 "requestBody": {"required": True, "content": {
                     "application/x-www-form-urlencoded": {"schema": _object({"token": _STR})},
                     "application/json": {"schema": _object({"token": _STR})}}},
                 "responses": {"204": {"description": "logged in (Set-Cookie)"},
                               "401": _UNAUTHORIZED,
                               "413": {"description": "body too large", **_ERROR}}},
        "delete": {"operationId": "logout", "summary": "end the browser's session",
                   "security": [], "responses": {"204": {"description": "logged out"}}}}
    metrics: dict[str, Any] = {
        "operationId": "metrics", "summary": "Prometheus metrics (text exposition format)",
        "responses": {"200": {"description": "the metrics", "content": {"text/plain": _TEXT}}}}
    if metrics_auth:
        metrics["responses"]["401"] = _UNAUTHORIZED
    else:
        metrics["security"] = []
    paths["/metrics"] = {"get": metrics}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Wharf admin API", "version": "1",
                 "description": "Every command of the `wharf` CLI over HTTP; see "
                                "docs/observability.md."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "wharf_session"}}},
        "security": [{"bearer": []}, {"session": []}],
    }
