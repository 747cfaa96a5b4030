"""The registry: merges what the config and the providers say, and publishes snapshots.

    wharf.toml ──(config source, at start and reload)──┐
    local provider (supervised apps' ready instances) ──┤ asked at each publish
    file provider ──┐                                   │
    (docker, etcd) ─┴─► queue of Updates ─► Throttle ───┤
                                                        ▼
                         merge (table.py) ─► health checks ─► build_snapshot ─► Publisher
                                                                                  │
                                                                        proxy workers

Sources are merged in precedence order (config, then the providers in `[providers]` order);
the merge and the throttle are sans-IO (table.py, provider.py) and this class is their thin
driver. The daemon tells it when the config changed (`configure`) and when an instance came or
went (`schedule_publish`); providers run as tasks it owns and restarts when `[providers]`
changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from wharf.addresses import format_address
from wharf.config.model import Config
from wharf.registry.build import (
    NO_REMOTE,
    Address,
    BuildCache,
    Remote,
    Target,
    build_snapshot,
    config_source,
    health_targets,
    service_backends,
)
from wharf.registry.health import HealthChecker
from wharf.registry.provider import Provider, Readable, Rereadable, Throttle, Update
from wharf.registry.providers.local import LocalProvider, addresses
from wharf.registry.publisher import Publisher
from wharf.registry.snapshot import Backend, Tls
from wharf.registry.table import Issue, Source, merge

log = logging.getLogger("wharf.registry")

# A source's state in `status`: its worst issue's kind ("waiting": a container not healthy
# yet; "unreachable": the provider lost what it watches and keeps its last known set).
ISSUE_STATES = ("unreachable", "invalid", "conflict", "waiting")


def make_providers(config: Config) -> list[Provider]:
    """The providers `[providers]` asks for, in precedence order."""
    providers: list[Provider] = []
    if config.providers.file is not None:
        from wharf.registry.providers.file import FileProvider

        providers.append(FileProvider(config.providers.file.directory, config.apps,
                                      config.path.parent))
    if config.providers.docker is not None:
        from wharf.registry.providers.docker import DockerProvider

        providers.append(DockerProvider(config.providers.docker))
    if config.providers.etcd is not None:
        from wharf.registry.providers.etcd import EtcdProvider

        providers.append(EtcdProvider(config.providers.etcd, config.apps, config.path.parent))
    return providers


def check_providers(config: Config) -> tuple[list[Update], list[Issue]]:
    """What `wharf check --providers` reports: each provider's current set as read now, and
    every issue (refused content, merge conflicts, an unreachable etcd). Only providers that
    can be read at once take part (the file provider; etcd, read once)."""

    async def read(providers: list[Provider]) -> list[Update]:
        updates = []
        for provider in providers:
            if isinstance(provider, Readable):
                updates.append(await provider.read())
            elif isinstance(provider, Rereadable):
                updates.append(provider.scan())
        return updates

    updates = asyncio.run(read(make_providers(config)))
    table = merge([config_source(config), *(s for u in updates for s in u.sources)])
    problems = [i for u in updates for i in u.issues if i.kind != "waiting"]  # not wrong
    return updates, problems + list(table.conflicts)


class Registry:
    """Sources in, snapshots out."""

    def __init__(self, config: Config, publisher: Publisher, local: LocalProvider,
                 tls: Callable[[Config], Tls], on_serving: Callable[[dict[str, list[Any]]], None],
                 on_table: Callable[[], None]) -> None:
        self.config = config
        self.local = local
        self.table = merge([config_source(config)])
        self.version = 0
        self.health: HealthChecker | None = None  # once the loop runs (see `start`)
        self._publisher = publisher
        self._tls = tls
        self._on_serving = on_serving  # the instances in the pool, at each publish
        self._on_table = on_table  # the apps some route reaches changed
        self._providers: list[Provider] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._updates: dict[str, Update] = {}  # each provider's newest
        self._queue: asyncio.Queue[Update] = asyncio.Queue()
        self._throttle = Throttle()
        self._scheduled = False
        self._built = BuildCache()  # the last build's services and routes, to reuse
        # an app's instances on the other hosts of [cluster] (set by the daemon)
        self.remote: Callable[[str], tuple[Backend, ...]] = lambda app: ()

    def __repr__(self) -> str:
        return f"<Registry v{self.version} routes={len(self.table.routes)} " \
               f"services={len(self.table.services)} providers={len(self._providers)}>"

    def start(self, health: HealthChecker) -> None:
        """Run the providers of the config and the coalescing loop (in the running loop)."""
        self.health = health
        self._tasks.append(asyncio.get_running_loop().create_task(self._consume()))
        self._start_providers(self.config)

    def close(self) -> None:
        """Stop every provider, the loop and the health checks."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self.health is not None:
            self.health.close()

    def configure(self, config: Config) -> None:
        """The config changed (a reload): merge it in; restart the providers if
        `[providers]` changed, else have them check their sources against its apps."""
        old, self.config = self.config, config
        if config.providers != old.providers:
            for task in self._tasks[1:]:
                task.cancel()
            del self._tasks[1:]
            self._updates.clear()
            self._start_providers(config)
        elif config.apps != old.apps:
            for provider in self._providers:
                if isinstance(provider, Rereadable):
                    provider.reconfigure(config.apps)
                    self._queue.put_nowait(provider.scan())
        self._merge()

    def _start_providers(self, config: Config) -> None:
        self._providers = make_providers(config)
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(p.run(self._queue)) for p in self._providers]

    def cluster_apps(self) -> frozenset[str]:
        """The apps some `scope = "cluster"` service balances over."""
        return frozenset(s.app for s in self.table.services.values()
                         if s.app and s.scope == "cluster")

    def _remote(self) -> Remote:
        return {app: self.remote(app) for app in self.cluster_apps()} or NO_REMOTE

    def sources(self, config: Config | None = None) -> list[Source]:
        """Every source in precedence order: `config` (by default the current one), then
        the providers'."""
        order = [p.name for p in self._providers]
        return [config_source(config or self.config),
                *(s for name in order if name in self._updates
                  for s in self._updates[name].sources)]

    def _merge(self) -> None:
        before = self.table.apps()
        self.table = merge(self.sources())
        if self.table.apps() != before:
            self._on_table()

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            update = await self._queue.get()
            if self._updates.get(update.provider) == update:
                continue  # the safety-net look found nothing new
            self._updates[update.provider] = update
            delay = self._throttle.change(loop.time())
            if delay == 0.0:
                self._apply()
            elif delay is not None:
                loop.call_later(delay, self._apply)

    def _apply(self) -> None:
        self._throttle.published(asyncio.get_running_loop().time())
        self._merge()
        self.publish()

    def schedule_publish(self) -> None:
        """Publish once this turn of the loop is over (many changes, one snapshot)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.publish)

    def publish(self) -> int:
        """Publish a snapshot of the table and the instances that take traffic now; its
        version."""
        self._scheduled = False
        config = self.config
        if config.proxy is None:
            return self.version
        serving = self.local.serving()
        ready = {name: addresses(instances) for name, instances in serving.items()}
        self._on_serving({n: i for n, i in serving.items() if n in self.table.apps()})
        down: frozenset[Target] = frozenset()
        remote = self._remote()
        if self.health is not None:
            self.health.sync(health_targets(self.table, self.config.apps, ready, remote))
            down = self.health.down()
        self.version += 1
        start = time.perf_counter()
        snapshot = build_snapshot(config, self.version, ready, down, self._tls(config),
                                  self.table, self._built, remote)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("wharf: built snapshot %d (%d services, %d routes) in %.2f ms",
                      self.version, len(snapshot.services), len(snapshot.routes),
                      (time.perf_counter() - start) * 1000)
        self._publisher.publish(snapshot)
        return self.version

    def routed(self, app: str, config: Config | None = None) -> bool:
        """True if a route reaches `app` now, or would with `config` (a reload's)."""
        if app in self.table.apps():
            return True
        return config is not None and app in merge(self.sources(config)).apps()

    def health_pending(self, app: str, address: Address) -> list[str]:
        """The health-checked services over `app` in which `address` is not up yet."""
        if self.health is None:
            return []
        up = {target for target, state in self.health.states().items() if state.up}
        return [name for name, s in self.table.services.items()
                if s.app == app and s.health is not None and (name, *address) not in up]

    def health_wait(self, app: str) -> float:
        """How long active health checks take at most to pass a new instance of `app`."""
        return max((s.health.rise * s.health.interval + s.health.timeout
                    for s in self.table.services.values() if s.app == app and s.health),
                   default=0.0)

    def backend_rows(self, app: str | None) -> list[dict[str, Any]]:
        """`status` rows: one per backend of each route."""
        running = self.local.running()
        health = self.health.states() if self.health is not None else {}
        seen = self._publisher.backend_totals()
        remote = self._remote()
        rows = []
        for route in self.table.routes:
            service = self.table.services.get(route.service or "")
            if service is None or (app is not None and service.app != app):
                continue
            for backend in service_backends(service, self.config.apps, running, remote):
                key = (service.name, backend.host, backend.port)
                state, live = health.get(key), seen.get(key, {})
                errors = [e for e in (state.last_error if state else "",
                                      live.get("last_error", "")) if e]
                rows.append({
                    "kind": "backend", "service": service.name, "host": route.host,
                    "route": route.path,
                    "app": service.app, "backend": format_address(backend.host, backend.port),
                    "weight": backend.weight, "balance": service.balance,
                    "health": ("up" if state.up else "down") if state else "unchecked",
                    "ejected": bool(live.get("ejected", False)),
                    "inflight": live.get("inflight", 0),
                    "last_error": errors[0] if errors else "",
                })
        return rows

    def provider_rows(self) -> list[dict[str, Any]]:
        """`status` rows: one per source of each provider, with what is wrong in it."""
        issues: dict[str, list[Issue]] = {}
        for issue in (*self.table.conflicts, *(i for u in self._updates.values()
                                                for i in u.issues)):
            issues.setdefault(issue.source, []).append(issue)
        rows = []
        for provider in self._providers:
            update = self._updates.get(provider.name, Update(provider.name))
            good = {s.name: s for s in update.sources}
            for name in update.known:
                found, source = issues.get(name, []), good.get(name)
                kinds = {i.kind for i in found}
                rows.append({
                    "kind": "provider", "provider": provider.name, "source": name,
                    "state": next((k for k in ISSUE_STATES if k in kinds), "ok"),
                    "routes": len(source.routes) if source else 0,
                    "services": len(source.services) if source else 0,
                    "problems": [f"{i.key}: {i.message}" if i.key else i.message
                                 for i in found]})
        return rows
