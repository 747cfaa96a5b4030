"""The admin HTTP API as an ASGI application: authentication, routing to the control commands
(the same `dispatch.execute` the Unix socket calls), and the three shapes of an answer.

- JSON, once: the command's result (or, for logs and events, the lines it would stream), with
  200; an error as {"error", "hint", "exit_code"} with 400 (a bad request: the CLI's exit 2),
  404 (no such app), 409 (the command failed: exit 1) or 500 (a bug).
- Server-Sent Events (`Accept: text/event-stream`, logs and events): follows until the client
  goes away; each event has `id:` its seq, so EventSource resumes after a reconnect.
- NDJSON (`Accept: application/x-ndjson`, long operations): one {"progress": EVENT} line per
  event of the change as it happens, then the final message, {"ok": true, "result": ...} or
  {"ok": false, "error": ...}.
A streaming answer's status is 200: what the parameters get wrong (404, 400) is found before it
begins, and how the command ended is its last message (SSE: an `end` or `error` event).

A stream's pending lines are bounded (MAX_PENDING): a client that reads too slowly misses lines
(and is told how many), it never makes the daemon hold more.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from wharf.control.admin.auth import Authenticator, logout_cookie
from wharf.control.admin.openapi import document
from wharf.control.admin.operations import Operation, Stream, match
from wharf.control.admin.static import PREFIX, SECURITY_HEADERS, lookup
from wharf.control.api import DaemonApi
from wharf.control.dispatch import error_message, execute
from wharf.errors import UsageError, WharfError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Metrics = Callable[[], tuple[bytes, str]]  # the exposition and its content type

MAX_PENDING = 4096  # messages waiting for one slow streaming client
MAX_BODY = 64 * 1024  # a request body: only the login has one, of a few dozen bytes
PING_INTERVAL = 15.0  # an SSE comment this often keeps idle proxies and browsers connected
_JSON = "application/json"


def placeholder_metrics() -> tuple[bytes, str]:
    """What /metrics serves until the metrics exposition is plugged in: valid, and empty."""
    return b"# wharf: no metrics are exported yet\n", "text/plain; version=0.0.4; charset=utf-8"


class HttpReply:
    """The control Reply of one HTTP request: streamed messages wait in a bounded queue."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.queue: deque[dict[str, Any]] = deque()
        self.wake = asyncio.Event()
        self.dropped = 0

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the client (dropped, and counted, if too many wait)."""
        if len(self.queue) >= MAX_PENDING:
            self.dropped += 1
            return
        self.queue.append(message)
        self.wake.set()

    async def closed(self) -> None:
        """Return once the client has gone away."""
        while (await self._receive())["type"] != "http.disconnect":
            pass


class AdminApp:
    """The ASGI application of the admin listener."""

    def __init__(self, api: DaemonApi, auth: Authenticator, metrics_auth: bool = False,
                 metrics: Metrics = placeholder_metrics) -> None:
        self._api = api
        self._auth = auth
        self._metrics_auth = metrics_auth
        self.metrics = metrics  # the metrics exposition replaces it
        self._closing = asyncio.Event()

    def __repr__(self) -> str:
        return f"<AdminApp closing={self._closing.is_set()}>"

    def close(self) -> None:
        """End every streaming answer (the daemon is stopping)."""
        self._closing.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if path == "/metrics":
            if method != "GET":
                return await _respond(send, 405, b"", "text/plain", [("allow", "GET")])
            if self._metrics_auth and not self._authorized(headers, method):
                return await _unauthorized(send)
            body, content_type = self.metrics()
            return await _respond(send, 200, body, content_type)
        if path == "/api/session":
            return await self._session(method, headers, receive, send)
        if path == "/" or path.startswith(PREFIX):
            return await _dashboard(method, path, send)
        if not self._authorized(headers, method):
            return await _unauthorized(send)
        if path == "/api/openapi.json":
            if method != "GET":
                return await _respond(send, 405, b"", "text/plain", [("allow", "GET")])
            return await _json(send, 200, document(self._metrics_auth))
        operation, params, known = match(method, path)
        if operation is None:
            return await _json(send, 405 if known else 404, {
                "error": "method not allowed" if known else f"no such path: {path}",
                "hint": "the operations are listed in /api/openapi.json", "exit_code": 2})
        try:
            args = self._arguments(operation, params, scope, headers)
        except _NotFound as exc:
            return await _json(send, 404, error_message(exc))
        except WharfError as exc:
            return await _json(send, 400, error_message(exc))
        await self._run(operation, args, _stream_of(operation, headers), receive, send)

    def _authorized(self, headers: dict[str, str], method: str) -> bool:
        if self._auth.check_bearer(headers.get("authorization")):
            return True
        if not self._auth.check_cookie(headers.get("cookie")):
            return False
        # A cookie rides along with any request the browser makes: a change must come from a
        # page of this origin (SameSite=Strict already keeps other sites' requests out).
        origin = headers.get("origin")
        return method == "GET" or origin is None or origin.split("://", 1)[-1] == \
            headers.get("host")

    def _arguments(self, operation: Operation, params: dict[str, str], scope: Scope,
                   headers: dict[str, str]) -> dict[str, Any]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"),
                         keep_blank_values=True)
        args: dict[str, Any] = dict(operation.fixed)
        for param in operation.params:
            raw = params[param.name] if param.name in params else \
                query[param.name][-1] if param.name in query else None
            if raw is None:
                if param.required:
                    raise UsageError(f"missing parameter {param.name}")
                continue
            args[param.arg or param.name] = param.convert(raw)
        app = params.get("app")
        if app == "all" and not operation.all_apps:
            raise UsageError(f"{operation.id} takes one app, not all")
        if app is not None and app != "all" and app not in self._api.app_names():
            known = ", ".join(self._api.app_names()) or "none"
            raise _NotFound(f"no app named {app!r}", hint=f"apps: {known}")
        last_id = headers.get("last-event-id", "")
        if operation.command == "events" and last_id.isdigit():  # an EventSource reconnects
            args["after"] = int(last_id)
        return args

    async def _run(self, operation: Operation, args: dict[str, Any], stream: Stream,
                   receive: Receive, send: Send) -> None:
        if stream == Stream.SSE:
            args["follow"] = True
        elif stream == Stream.PROGRESS:
            args["progress"] = True
        reply = HttpReply(receive)
        task = asyncio.ensure_future(execute(self._api, operation.command, args, reply))
        try:
            if stream != Stream.NONE:
                await self._stream(stream, task, reply, send)
                return
            final = await task
            if not final["ok"]:
                await _json(send, _error_status(final), final)
                return
            body = [_item(m) for m in reply.queue] if operation.collect else final["result"]
            await _json(send, 200, body)
        finally:
            if not task.done():
                task.cancel()

    async def _stream(self, stream: Stream, task: asyncio.Future[dict[str, Any]],
                      reply: HttpReply, send: Send) -> None:
        sse = stream == Stream.SSE
        await send({"type": "http.response.start", "status": 200, "headers": _headers(
            stream.value + ("; charset=utf-8" if sse else ""), [("x-accel-buffering", "no")])})
        closing = asyncio.ensure_future(self._closing.wait())
        reported = 0
        try:
            while True:
                while reply.queue:
                    if reply.dropped > reported:
                        await _chunk(send, _encode(sse, {"stream": "dropped", "dropped":
                                                         reply.dropped - reported}))
                        reported = reply.dropped
                    await _chunk(send, _encode(sse, reply.queue.popleft()))
                if task.done():
                    await _chunk(send, _encode(sse, task.result()))
                    break
                if closing.done():
                    break
                reply.wake.clear()
                waking = asyncio.ensure_future(reply.wake.wait())
                done, _ = await asyncio.wait((task, waking, closing), timeout=PING_INTERVAL,
                                             return_when=asyncio.FIRST_COMPLETED)
                waking.cancel()
                if not done and sse:
                    await _chunk(send, b": ping\n\n")
        finally:
            closing.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _session(self, method: str, headers: dict[str, str], receive: Receive,
                       send: Send) -> None:
        """POST: log in with the token (form field or JSON `token`), get the session
        cookie. DELETE: log out."""
        if method == "DELETE":
            return await _respond(send, 204, b"", "text/plain",
                                  [("set-cookie", logout_cookie())])
        if method != "POST":
            return await _respond(send, 405, b"", "text/plain", [("allow", "POST, DELETE")])
        body = await read_body(receive)
        if body is None:
            return await _json(send, 413, {"error": "request body too large", "hint": "",
                                           "exit_code": 2})
        token = _token_of(body, headers.get("content-type", ""))
        if token is None or not self._auth.check_token(token):
            return await _unauthorized(send)
        await _respond(send, 204, b"", "text/plain",
                       [("set-cookie", self._auth.session_cookie())])


async def _dashboard(method: str, path: str, send: Send) -> None:
    """A file of the web dashboard (no token needed: it holds no data); `/` leads to it."""
    if method not in ("GET", "HEAD"):
        return await _respond(send, 405, b"", "text/plain", [("allow", "GET, HEAD")])
    if path == "/":
        return await _respond(send, 302, b"", "text/plain", [("location", PREFIX)])
    found = lookup(path)
    if found is None:
        return await _json(send, 404, {"error": f"no such path: {path}", "hint": "",
                                       "exit_code": 2})
    body, content_type = found
    await _respond(send, 200, b"" if method == "HEAD" else body, content_type,
                   SECURITY_HEADERS)


class _NotFound(UsageError):
    """No app of that name: 404."""


def _stream_of(operation: Operation, headers: dict[str, str]) -> Stream:
    accept = headers.get("accept", "")
    wanted = operation.stream
    return wanted if wanted != Stream.NONE and wanted.value in accept else Stream.NONE


def _error_status(final: dict[str, Any]) -> int:
    if final.get("internal"):
        return 500
    return 400 if final.get("exit_code") == 2 else 409


def _item(message: dict[str, Any]) -> Any:
    """What a streamed message says, as a list item: an event, or a log line."""
    if "event" in message:
        return message["event"]
    return {"stream": message["stream"], "data": message.get("data", "")}


def _encode(sse: bool, message: dict[str, Any]) -> bytes:
    """One streamed message as an SSE event or an NDJSON line."""
    if not sse:
        if message.get("stream") == "progress":
            return _dumps({"progress": message["event"]}) + b"\n"
        if message.get("stream") == "dropped":
            return _dumps({"dropped": message["dropped"]}) + b"\n"
        return _dumps(message) + b"\n"
    stream = message.get("stream")
    if stream is None:  # the final message
        return b"event: " + (b"end" if message.get("ok") else b"error") + b"\ndata: " + \
            _dumps(message) + b"\n\n"
    if stream == "dropped":
        return b"event: dropped\ndata: " + _dumps({"dropped": message["dropped"]}) + b"\n\n"
    if "event" in message:
        return f"id: {message['event']['seq']}\nevent: event\ndata: ".encode() + \
            _dumps(message["event"]) + b"\n\n"
    return f"event: {stream}\ndata: ".encode() + _dumps(_item(message)) + b"\n\n"


def _token_of(body: bytes, content_type: str) -> str | None:
    text = body.decode(errors="replace")
    if content_type.startswith(_JSON):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        token = data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) else None
    values = parse_qs(text).get("token")
    return values[-1] if values else None


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes | None:
    """The request body, or None if it is over `limit` bytes."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _headers(content_type: str, extra: list[tuple[str, str]] | None = None
             ) -> list[tuple[bytes, bytes]]:
    pairs = [("content-type", content_type), ("cache-control", "no-store"),
             ("x-content-type-options", "nosniff"), *(extra or [])]
    return [(k.encode(), v.encode("latin-1")) for k, v in pairs]


async def _respond(send: Send, status: int, body: bytes, content_type: str,
                   extra: list[tuple[str, str]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": _headers(content_type, extra)})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, value: Any) -> None:
    await _respond(send, status, _dumps(value), _JSON)


async def _unauthorized(send: Send) -> None:
    """401 with nothing said of why (missing, wrong or expired are alike)."""
    await _respond(send, 401, b'{"error":"unauthorized"}', _JSON,
                   [("www-authenticate", 'Bearer realm="wharf"')])


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})
