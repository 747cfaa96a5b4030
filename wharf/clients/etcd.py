"""An etcd v3 client over etcd's JSON gateway (`/v3/kv/range`, `/v3/watch`, `/v3/lease/*`).

Why the gateway and not gRPC: `aetcd`, the asyncio client on PyPI, brings grpcio, +14 MiB in
the daemon (measured here: +10.4 MiB for grpcio alone), against a memory target below
supervisord's. The gateway is part of every etcd since 3.3 (Debian's is 3.4.23) and serves the
same calls with the same semantics; keys and values travel base64-encoded and 64-bit numbers
as strings. Calls go through `wharf.clients.http` (one connection each); a watch is one long
streamed answer.

Several endpoints: a call goes to the last one that answered, and on a connection error to
the next ones in turn; `EtcdError` only when none answers.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from wharf.clients.http import Endpoint, HttpError, request_json, stream

log = logging.getLogger("wharf.etcd")

TIMEOUT = 5.0


class EtcdError(Exception):
    """etcd cannot be reached, or refused a call."""


class Compacted(EtcdError):
    """A watch asked for a revision etcd no longer has: read the range again."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"revision compacted; the oldest kept is {revision}")
        self.revision = revision


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int = 0
    create_revision: int = 0
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One change seen by a watch: a put (with the new value) or a delete."""

    kind: str  # "put" or "delete"
    kv: KeyValue


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def prefix_end(prefix: str) -> str:
    """The `range_end` that makes a range cover every key starting with `prefix`, base64."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return _b64(b"\0")  # every key
    raw[-1] += 1
    return _b64(bytes(raw))


def _kv(item: dict[str, Any]) -> KeyValue:
    return KeyValue(base64.b64decode(item.get("key", "")).decode("utf-8", "replace"),
                    base64.b64decode(item.get("value", "")),
                    int(item.get("mod_revision", 0)), int(item.get("create_revision", 0)),
                    int(item.get("lease", 0)))


def _revision(answer: dict[str, Any]) -> int:
    return int(answer.get("header", {}).get("revision", 0))


class Etcd:
    """A client of one etcd cluster."""

    def __init__(self, endpoints: Sequence[str], timeout: float = TIMEOUT) -> None:
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        self.endpoints = [Endpoint.parse(e) for e in endpoints]
        self.timeout = timeout
        self._first = 0  # the endpoint that answered last

    def __repr__(self) -> str:
        return f"<Etcd {', '.join(map(str, self.endpoints))}>"

    def _order(self) -> list[Endpoint]:
        return self.endpoints[self._first:] + self.endpoints[:self._first]

    async def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST `payload` to the gateway's `path` (`/v3/kv/range`...) and return its answer."""
        problems = []
        for endpoint in self._order():
            try:
                status, answer = await request_json(endpoint, "POST", path, payload,
                                                    timeout=self.timeout)
            except HttpError as exc:
                problems.append(str(exc))
                continue
            self._first = self.endpoints.index(endpoint)
            if status != 200 or not isinstance(answer, dict):
                message = answer.get("message") or answer.get("error") \
                    if isinstance(answer, dict) else answer
                raise EtcdError(f"{endpoint}{path}: {status}: {message}")
            return answer
        raise EtcdError("; ".join(problems))

    async def get(self, key: str) -> KeyValue | None:
        """The key's value, or None."""
        answer = await self.call("/v3/kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    async def get_prefix(self, prefix: str) -> tuple[int, list[KeyValue]]:
        """Every key under `prefix`, and the store's revision they were read at (watch from
        the one after it to miss nothing)."""
        answer = await self.call("/v3/kv/range", {"key": _b64(prefix),
                                                  "range_end": prefix_end(prefix)})
        return _revision(answer), [_kv(item) for item in answer.get("kvs", [])]

    async def put(self, key: str, value: str | bytes, lease: int = 0) -> int:
        """Set the key (tied to `lease`, if not 0); the new revision."""
        payload: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            payload["lease"] = str(lease)
        return _revision(await self.call("/v3/kv/put", payload))

    async def delete(self, key: str, prefix: bool = False) -> int:
        """Delete the key (or every key under it); how many went."""
        payload = {"key": _b64(key)}
        if prefix:
            payload["range_end"] = prefix_end(key)
        return int((await self.call("/v3/kv/deleterange", payload)).get("deleted", 0))

    async def delete_key(self, key: str) -> int:
        """Delete one key; the store's revision after it (that of the delete, if it was
        there)."""
        return _revision(await self.call("/v3/kv/deleterange", {"key": _b64(key)}))

    async def create(self, key: str, value: str | bytes, lease: int = 0) -> bool:
        """Set the key only if it does not exist (one transaction); True if this call made
        it. The building block of a lock: the holder is whoever created the key."""
        put: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            put["lease"] = str(lease)
        answer = await self.call("/v3/kv/txn", {
            "compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL",
                         "create_revision": "0"}],
            "success": [{"request_put": put}]})
        return bool(answer.get("succeeded", False))

    async def replace(self, key: str, value: str | bytes, mod_revision: int) -> bool:
        """Set the key only if nobody changed it since `mod_revision`; True if set."""
        answer = await self.call("/v3/kv/txn", {
            "compare": [{"key": _b64(key), "target": "MOD", "result": "EQUAL",
                         "mod_revision": str(mod_revision)}],
            "success": [{"request_put": {"key": _b64(key), "value": _b64(value)}}]})
        return bool(answer.get("succeeded", False))

    async def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; its ID."""
        answer = await self.call("/v3/lease/grant", {"TTL": str(ttl)})
        if "ID" not in answer:
            raise EtcdError(f"no lease granted: {answer.get('error', answer)}")
        return int(answer["ID"])

    async def keepalive(self, lease: int) -> int:
        """Renew the lease; its TTL, 0 if it is gone (expired or revoked)."""
        answer = await self.call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(answer.get("result", answer).get("TTL", 0))

    async def revoke(self, lease: int) -> int:
        """End the lease now: every key tied to it goes. The revision of their deletes (0 if
        the lease was already gone)."""
        try:
            return _revision(await self.call("/v3/lease/revoke", {"ID": str(lease)}))
        except EtcdError as exc:
            if "not found" not in str(exc):
                raise
            return 0

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """The changes under `prefix` from `start_revision` on, a batch per etcd answer, for
        as long as the connection lasts (EtcdError when it ends; Compacted if etcd no
        longer has `start_revision`). Tries the endpoints in turn to open it."""
        create = {"create_request": {"key": _b64(prefix), "range_end": prefix_end(prefix),
                                     "start_revision": str(start_revision)}}
        body = json.dumps(create).encode()
        problems = []
        for endpoint in self._order():
            try:
                async with stream(endpoint, "POST", "/v3/watch", body,
                                  headers={"Content-Type": "application/json"},
                                  timeout=self.timeout) as answer:
                    if answer.status != 200:
                        raise EtcdError(f"{endpoint}/v3/watch: {answer.status}: "
                                        f"{(await answer.body())[:200]!r}")
                    self._first = self.endpoints.index(endpoint)
                    try:
                        async for line in answer.lines():
                            events = _watch_events(line)
                            if events:
                                yield events
                    except HttpError as exc:  # once open, the caller watches again
                        raise EtcdError(f"{endpoint}: the watch broke: {exc}") from exc
                    raise EtcdError(f"{endpoint}: the watch ended")
            except HttpError as exc:
                problems.append(str(exc))
        raise EtcdError("; ".join(problems))

def _watch_events(line: bytes) -> list[Event]:
    """The events of one line of a watch's stream (none for its created/progress notices)."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise EtcdError(f"a watch answer that is not JSON: {line[:80]!r}") from exc
    if "error" in message:
        raise EtcdError(f"the watch failed: {message['error']}")
    result = message.get("result", {})
    if int(result.get("compact_revision", 0)):
        raise Compacted(int(result["compact_revision"]))
    if result.get("canceled"):
        raise EtcdError(f"etcd cancelled the watch: {result.get('cancel_reason', '')}")
    return [Event("delete" if item.get("type") == "DELETE" else "put", _kv(item.get("kv", {})))
            for item in result.get("events", [])]
