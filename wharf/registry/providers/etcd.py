"""The etcd provider: routes and services in etcd keys, live (see etcd_keys.py for the layout
and the rules; this module is its I/O).

    read PREFIX/ at revision R ──► watch PREFIX/ from R+1 ──► each batch: apply, put an Update
          ▲                              │ stream broke          │ Compacted
          │ etcd has fewer revisions     ▼                       │ (R is gone)
          └─── or Compacted ──── probe etcd, backoff ◄───────────┘ (read again, no wait)

A broken stream is watched again from the newest revision seen (nothing is missed: etcd
replays the events since), after a backoff of 0.1 s doubling up to 5 s, with jitter. Before
each new watch a cheap call (`/v3/maintenance/status`) says whether etcd answers: if not,
the provider reports etcd unreachable, since when, and keeps its last known set in force
until etcd answers again. While a watch is open, the same call every PROBE_EVERY seconds
notices an etcd that went silent without closing the connection (a host cut off).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from pathlib import Path

from wharf.clients.etcd import Compacted, Etcd, EtcdError
from wharf.config.cluster import EtcdProviderConfig
from wharf.config.model import AppConfig
from wharf.registry.provider import Backoff, Update
from wharf.registry.providers.etcd_keys import EtcdKeys, since_text

log = logging.getLogger("wharf.providers")

# While a watch is open, etcd is asked this often whether it still answers: a watch on a
# connection to a host that was cut off (no RST) would otherwise wait forever. etcd's own
# keepalive of watch streams is a gRPC ping, which its JSON gateway does not pass on.
PROBE_EVERY = 5.0


class EtcdProvider:
    """Watches the `routes/` and `services/` keys under one prefix."""

    name = "etcd"

    def __init__(self, config: EtcdProviderConfig, apps: Mapping[str, AppConfig],
                 base: Path) -> None:
        self.config = config
        self.keys = EtcdKeys(config.prefix, config.endpoints, base, apps)
        self._etcd = Etcd(config.endpoints, config.timeout)
        self._backoff = Backoff()

    def __repr__(self) -> str:
        return f"<EtcdProvider {self._etcd} {self.keys!r}>"

    def scan(self) -> Update:
        """The current set as last read or watched (no call to etcd)."""
        return self.keys.update()

    def reconfigure(self, apps: Mapping[str, AppConfig]) -> None:
        """The config's apps changed: check every value again."""
        self.keys.reconfigure(apps)

    async def read(self) -> Update:
        """Read every key once, now (`wharf check --providers`)."""
        try:
            revision, kvs = await self._etcd.get_prefix(self.keys.prefix)
        except EtcdError as exc:
            self._lost(exc)
        else:
            self.keys.reached()
            self.keys.load(revision, kvs)
        return self.keys.update()

    def _lost(self, exc: EtcdError) -> bool:
        if not self.keys.lost(time.time(), str(exc)):
            return False
        kept = "the last known routes and services stay in force" if self.keys.loaded \
            else "nothing read from it yet"
        log.warning("wharf: etcd %s unreachable: %s; %s (trying again)", self.keys.connection,
                    exc, kept)
        return True

    def _reached(self) -> None:
        since = self.keys.reached()
        if since is not None:
            log.info("wharf: etcd %s answers again (unreachable since %s); watching from "
                     "revision %d", self.keys.connection, since_text(since),
                     self.keys.revision + 1)

    async def _status(self) -> int:
        """Ask etcd whether it answers; the revision it is at."""
        answer = await self._etcd.call("/v3/maintenance/status", {})
        return int(answer.get("header", {}).get("revision", 0))

    async def run(self, updates: asyncio.Queue[Update]) -> None:
        """Read the keys, put the current set into `updates`, then again after every change
        the watch brings, until cancelled."""
        reread = True
        while True:
            try:
                if not reread and await self._status() < self.keys.revision:
                    log.warning("wharf: etcd %s is at an older revision than seen "
                                "(restored?): reading %s again", self.keys.connection,
                                self.keys.prefix)
                    reread = True
                if reread:
                    revision, kvs = await self._etcd.get_prefix(self.keys.prefix)
                    self.keys.load(revision, kvs)
                    reread = False
                self._reached()
            except EtcdError as exc:
                if self._lost(exc):
                    updates.put_nowait(self.keys.update())
                await asyncio.sleep(self._backoff.delay(random.random()))
                continue
            updates.put_nowait(self.keys.update())
            try:
                await self._follow(updates)
            except Compacted as exc:
                log.info("wharf: etcd compacted past revision %d (oldest kept: %d): reading "
                         "%s again", self.keys.revision + 1, exc.revision, self.keys.prefix)
                reread = True
            except EtcdError as exc:
                log.info("wharf: etcd %s: %s; watching again from revision %d",
                         self.keys.connection, exc, self.keys.revision + 1)
                await asyncio.sleep(self._backoff.delay(random.random()))

    async def _follow(self, updates: asyncio.Queue[Update]) -> None:
        """Watch until the stream breaks or etcd stops answering (EtcdError)."""
        watch = asyncio.ensure_future(self._watch(updates))
        probe = asyncio.ensure_future(self._probe(updates))
        try:
            done, _ = await asyncio.wait({watch, probe}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (watch, probe):
                task.cancel()
            await asyncio.gather(watch, probe, return_exceptions=True)

    async def _watch(self, updates: asyncio.Queue[Update]) -> None:
        async for events in self._etcd.watch(self.keys.prefix, self.keys.revision + 1):
            self._backoff.reset()  # it delivers: the next loss starts from the first wait
            if self.keys.apply(events):
                updates.put_nowait(self.keys.update())

    async def _probe(self, updates: asyncio.Queue[Update]) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            try:
                await self._status()
            except EtcdError as exc:
                if self._lost(exc):
                    updates.put_nowait(self.keys.update())
                raise
            self._backoff.reset()  # a watch open this long is a good one
