"""The Docker provider: containers labelled `wharf.enable=true` become services, backends and
routes, live, from the Docker Engine API (or podman's compatible one).

This is the I/O shell; what the labels mean is docker_labels.py (sans-IO). A session with
the engine goes:

1. follow `GET /events` (containers labelled `wharf.enable=true` only), opened first so that
   no change falls between the list and the stream;
2. list them (`GET /containers/json`, the same label filter) and inspect each
   (`GET /containers/{id}/json`: state, health, networks, ports), then put the provider's
   whole set into the registry's queue;
3. on each event of a container (start, die, stop, pause, health_status, destroy, ...)
   inspect it again, and put the new set; events that come together cost one set;
4. every `refresh` seconds, list and inspect again: the safety net for a missed event.

When the engine cannot be reached (its socket is gone, it answers with an error, the stream
ends), the last known containers stay in force, the set is put again with an `unreachable`
issue saying since when (shown in `wharf status`), and the session starts over after a
backoff (0.1 s doubling to 5 s, with jitter), for as long as it takes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Iterable
from contextlib import suppress
from urllib.parse import quote

from wharf.clients.http import Endpoint, HttpError, Stream, request_json, stream
from wharf.config.cluster import DockerProviderConfig
from wharf.registry.provider import Backoff, Update, since_text
from wharf.registry.providers.docker_labels import (
    ENABLE,
    PROVIDER,
    Container,
    containers_update,
    engine_lost,
)

log = logging.getLogger("wharf.providers")

LABEL_FILTER = {"label": [f"{ENABLE}=true"]}
EVENT_FILTER = {"type": ["container"], **LABEL_FILTER}
# The events after which a container is inspected again (Docker spells health changes
# "health_status: healthy").
ACTIONS = frozenset({"start", "restart", "die", "died", "stop", "kill", "oom", "pause",
                     "unpause", "health_status", "destroy", "remove", "rename", "update"})
# The events of a health check run. Podman 4.3 sends `health_status` with the status from
# before the check (`starting` after one that passed) and may write the new status after the
# event: a container with a health check is inspected at once and again RETRY seconds later
# after each of these (exec_die(d): one per check run, Docker's and podman's spelling).
HEALTH_ACTIONS = frozenset({"health_status", "exec_die", "exec_died"})
INSPECTS_AT_ONCE = 8  # a full list of many containers does not open hundreds of connections
TIMEOUT = 10.0  # of each call to the engine: a hung engine counts as a lost one


RETRY = 0.5  # seconds before a container whose inspect failed is inspected again


class EngineError(Exception):
    """The engine answered, but not what its API says."""


class InspectError(EngineError):
    """One container's inspect failed (podman answers 500 while it removes one): that
    container keeps its last known state and is inspected again RETRY seconds later."""


def _filters(value: object) -> str:
    return quote(json.dumps(value, separators=(",", ":")))


class DockerProvider:
    """Watches one Docker-compatible engine."""

    name = PROVIDER

    def __init__(self, config: DockerProviderConfig) -> None:
        self.config = config
        self.endpoint = Endpoint.parse(config.endpoint)
        self._containers: dict[str, Container] = {}  # by id: the last known, kept when lost
        self._update = Update(PROVIDER)  # the set as the containers define it
        self._lost: tuple[float, str] | None = None  # (since when, why) the engine is lost
        self._reached = False  # it answered once
        self._reported: frozenset[str] = frozenset()  # the issues already in the log
        self._retry: set[str] = set()  # ids whose last inspect failed

    def __repr__(self) -> str:
        state = f"lost since {since_text(self._lost[0])}" if self._lost else "following"
        return f"<DockerProvider {self.endpoint} containers={len(self._containers)} {state}>"

    async def read(self) -> Update:
        """List and inspect the containers once, now (`wharf check --providers`)."""
        try:
            await self._refresh()
        except (HttpError, EngineError) as exc:
            self._lost = (time.time(), str(exc))
        else:
            self._update = containers_update(self._containers.values(), self.config.host)
        return self._current()

    async def run(self, updates: asyncio.Queue[Update]) -> None:
        """Follow the engine, and again after each loss, until cancelled."""
        backoff = Backoff()
        while True:
            try:
                await self._session(updates, backoff)
            except (HttpError, EngineError) as exc:
                self._engine_lost(str(exc), updates)
            await asyncio.sleep(backoff.delay(random.random()))

    async def _session(self, updates: asyncio.Queue[Update], backoff: Backoff) -> None:
        events: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        async with stream(self.endpoint, "GET", f"/events?filters={_filters(EVENT_FILTER)}",
                          timeout=TIMEOUT) as answer:
            if answer.status != 200:
                raise EngineError(f"GET /events: HTTP {answer.status} "
                                  f"{(await answer.body())[:200]!r}")
            reader = asyncio.get_running_loop().create_task(self._read(answer, events))
            try:
                await self._refresh()
                if self._lost is not None:
                    log.info("wharf: docker: %s answers again (unreachable since %s)",
                             self.endpoint, since_text(self._lost[0]))
                    self._lost = None
                self._reached = True
                backoff.reset()
                self._emit(updates)
                await self._follow(events, updates)
            finally:
                reader.cancel()
                with suppress(asyncio.CancelledError):
                    await reader

    async def _read(self, answer: Stream, events: asyncio.Queue[bytes | Exception]) -> None:
        try:
            async for line in answer.lines():
                events.put_nowait(line)
            events.put_nowait(HttpError("the event stream ended"))
        except HttpError as exc:
            events.put_nowait(exc)

    async def _follow(self, events: asyncio.Queue[bytes | Exception],
                      updates: asyncio.Queue[Update]) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.config.refresh
        while True:
            wait = min(due - loop.time(), RETRY if self._retry else due - loop.time())
            try:
                item = await asyncio.wait_for(events.get(), max(0.0, wait))
            except TimeoutError:
                if loop.time() >= due:
                    await self._refresh()
                    due = loop.time() + self.config.refresh
                else:
                    await self._inspect_into(set(self._retry))
                self._emit(updates)
                continue
            changed: set[str] = set()
            checked: set[str] = set()  # health check runs: inspected again RETRY s later
            while True:  # every event that is in already: one set for a burst
                if isinstance(item, Exception):
                    raise item
                ident, action = _container_of(item)
                if action in HEALTH_ACTIONS and ident in self._containers \
                        and self._containers[ident].health is not None:
                    checked.add(ident)
                if action in ACTIONS or ident in checked:
                    changed.add(ident)
                if events.empty():
                    break
                item = events.get_nowait()
            if changed:
                await self._inspect_into(changed)
                self._retry.update(checked & self._containers.keys())
                self._emit(updates)

    async def _refresh(self) -> None:
        """List and inspect every labelled container: the set starts over from the engine."""
        status, listed = await request_json(
            self.endpoint, "GET", f"/containers/json?filters={_filters(LABEL_FILTER)}",
            timeout=TIMEOUT)
        if status != 200 or not isinstance(listed, list):
            raise EngineError(f"GET /containers/json: HTTP {status}")
        ids = [str(item["Id"]) for item in listed if isinstance(item, dict) and "Id" in item]
        self._containers = {i: c for i, c in self._containers.items() if i in ids}
        self._retry.intersection_update(ids)
        await self._inspect_into(ids)

    async def _inspect_into(self, ids: Iterable[str]) -> None:
        limit = asyncio.Semaphore(INSPECTS_AT_ONCE)

        async def one(ident: str) -> None:
            self._retry.discard(ident)
            try:
                async with limit:
                    container = await self._inspect(ident)
            except InspectError as exc:
                log.debug("wharf: docker: %s", exc)
                self._retry.add(ident)
                return
            if container is None:
                self._containers.pop(ident, None)
            else:
                self._containers[ident] = container

        await asyncio.gather(*(one(i) for i in ids))

    async def _inspect(self, ident: str) -> Container | None:
        """The container now; None if it is gone, stopped or not labelled."""
        status, data = await request_json(self.endpoint, "GET",
                                          f"/containers/{quote(ident)}/json", timeout=TIMEOUT)
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise InspectError(f"GET /containers/{ident[:12]}/json: HTTP {status} {data!r}"
                               [:300])
        container = Container.from_inspect(data)
        if not (container.running or container.paused) \
                or container.labels.get(ENABLE) != "true":
            return None
        return container

    def _emit(self, updates: asyncio.Queue[Update]) -> None:
        before = {s.name for s in self._update.sources}
        self._update = containers_update(self._containers.values(), self.config.host)
        after = {s.name for s in self._update.sources}
        for name in sorted(after - before):
            log.info("wharf: docker: %s joined", name)
        for name in sorted(before - after):
            log.info("wharf: docker: %s left", name)
        issues = {str(i): i for i in self._update.issues}
        for text in sorted(issues.keys() - self._reported):
            if issues[text].kind == "invalid":
                log.warning("wharf: docker: %s (the container is left out)", text)
            else:
                log.info("wharf: docker: %s", text)
        self._reported = frozenset(issues)
        updates.put_nowait(self._current())

    def _current(self) -> Update:
        if self._lost is None:
            return self._update
        since, reason = self._lost
        return engine_lost(self._update, f"engine {self.endpoint}", since_text(since), reason,
                           self._reached)

    def _engine_lost(self, reason: str, updates: asyncio.Queue[Update]) -> None:
        if self._lost is None:
            kept = "the last known containers stay in force" if self._reached else \
                "nothing was read from it yet"
            log.warning("wharf: docker: %s unreachable: %s; %s (trying again)",
                        self.endpoint, reason, kept)
            self._lost = (time.time(), reason)
        updates.put_nowait(self._current())


def _container_of(line: bytes) -> tuple[str, str]:
    """The container an event line is about and what happened (("", "") if it is not one)."""
    try:
        event = json.loads(line)
    except ValueError:
        return "", ""
    if not isinstance(event, dict):
        return "", ""
    action = str(event.get("Action") or event.get("status") or "").split(":")[0].strip()
    actor = event.get("Actor") if isinstance(event.get("Actor"), dict) else {}
    ident = event.get("id") or (actor or {}).get("ID")
    return (str(ident), action) if ident else ("", "")
