"""The I/O shell of `[cluster]`: this host's lease, its writes, its watch of the others.

Four tasks share one `Etcd` client (see state.py for the model):
- the lease: granted for `ttl`, renewed every ttl/3; when a renewal says it is gone (the host
  was cut off for longer than the TTL, or etcd lost it), a new one is granted, this host's
  stale keys are deleted and everything is written again;
- the writer: brings etcd to what `Registrations` wants, one call at a time, deletes first;
- the watch: a range of the cluster's subtree, then a watch from the revision after it; a
  broken or compacted watch, or a lease renewal that worked again after failures (the watch
  may have stalled on a dead connection), starts over with a range;
- the acknowledgements: after every change of the other hosts' instances, once the proxy
  workers serve it (`settle`), this host's key says `applied = REVISION` (see state.py).

While etcd does not answer, nothing is taken out of the pools: the last known instances
serve on, and `status` says since when etcd is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from wharf.clients.etcd import Etcd, EtcdError
from wharf.cluster.state import (
    Address,
    Change,
    HostRecord,
    InstanceRecord,
    Registrations,
    Session,
    View,
    instances_prefix,
    lease_gone,
    parse,
)
from wharf.config.cluster import ClusterConfig
from wharf.supervise.program import Notifier

log = logging.getLogger("wharf.cluster")

RETRY = 0.5  # seconds between tries of a failed etcd call (a write, a range, a watch)
SETTLE_TIMEOUT = 30.0  # at most this long for the workers to leave a removed instance
# etcd's calls time out after ttl/3 at most: a renewal that hangs longer is as good as lost
CALL_TIMEOUT_MAX = 5.0

Settle = Callable[[tuple[Address, ...], float], Awaitable[None]]


class Cluster:
    """This host's membership of the cluster."""

    def __init__(self, config: ClusterConfig, on_change: Callable[[], None],
                 settle: Settle) -> None:
        self.config = config
        self.ttl = max(1, math.ceil(config.ttl))  # etcd's leases count whole seconds
        self.etcd = Etcd(config.etcd, timeout=min(CALL_TIMEOUT_MAX, max(0.5, config.ttl / 3)))
        self.view = View(config.prefix, config.name)
        self.session = Session()
        self._regs = Registrations(config.prefix)
        self._on_change = on_change  # the remote instances changed: publish
        self._settle = settle  # publish, and wait until the workers are done with `gone`
        self._notifier = Notifier()
        self._instances: list[InstanceRecord] = []
        self._applied = 0  # the revision this host's workers serve
        self._gone: list[Address] = []  # removed since the last acknowledgement
        self._dirty = asyncio.Event()  # the writer has work
        self._unacked = asyncio.Event()  # the ack loop has work
        self._lost = asyncio.Event()  # a write found the lease gone
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._behind = 0  # renewals since the watch last caught up with this host's writes

    def __repr__(self) -> str:
        return f"<Cluster {self.config.name} lease={self.session.lease:x} " \
               f"hosts={len(self.view.hosts)} instances={len(self.view.instances)}>"

    def start(self) -> None:
        """Join: run the lease, the writer, the watch and the acknowledgements."""
        for name, work in (("lease", self._lease_loop), ("writer", self._writer_loop),
                           ("watch", self._watch_loop), ("ack", self._ack_loop)):
            self._run(name, work)
        self._refresh()

    def _run(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        old = self._tasks.pop(name, None)
        if old is not None:
            old.cancel()
        self._tasks[name] = asyncio.get_running_loop().create_task(work())

    def record(self, app: str, ident: str, port: int, weight: int) -> InstanceRecord:
        """The record of one of this host's instances."""
        return InstanceRecord(app, self.config.name, ident, self.config.advertise, port, weight)

    def want(self, instances: Iterable[InstanceRecord]) -> None:
        """This host's instances that take traffic now (the whole set, at each publish)."""
        instances = list(instances)
        if instances != self._instances:
            self._instances = instances
            self._refresh()

    def remote(self, app: str) -> tuple[InstanceRecord, ...]:
        """The instances of `app` on the other hosts."""
        return self.view.remote(app)

    async def deregister(self, leaving: Iterable[InstanceRecord], timeout: float) -> bool:
        """Take `leaving` out of etcd and wait (at most `timeout`) until every other host's
        workers have stopped sending to them; False if the wait ran out (etcd unreachable, a
        host that does not answer: its lease will expire)."""
        keys = {r.key(self.config.prefix) for r in leaving}
        if not keys or not self._tasks:  # nothing to do, or left already (see `leave`)
            return True
        self._instances = [r for r in self._instances if r.key(self.config.prefix) not in keys]
        self._refresh()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await self._notifier.wait_for(lambda: self._regs.gone(keys), timeout):
            log.warning("cluster: could not deregister %d instance(s) within %.1fs (%s); the "
                        "other hosts drop them when this host's lease expires", len(keys),
                        timeout, self.session.error or "etcd is slow")
            return False
        return await self._caught_up(self._regs.deleted_at, deadline - loop.time())

    async def _caught_up(self, revision: int, timeout: float) -> bool:
        if await self._notifier.wait_for(lambda: not self.view.waiting_for(revision),
                                         max(0.0, timeout)):
            return True
        log.warning("cluster: %s did not confirm revision %d within the wait; going on",
                    ", ".join(self.view.waiting_for(revision)), revision)
        return False

    async def leave(self, timeout: float) -> None:
        """A clean stop: revoke the lease (every key of this host goes at once), wait (at
        most `timeout`) for the other hosts to stop sending here, then stop watching."""
        for name in ("lease", "writer", "ack"):
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
        lease, self.session.lease = self.session.lease, 0
        try:
            if lease:
                revision = await self.etcd.revoke(lease)
                await self._caught_up(revision, timeout)
        except EtcdError as exc:
            log.warning("cluster: could not revoke the lease (%s); it expires in %ds", exc,
                        self.ttl)
        finally:
            self.close()

    def close(self) -> None:
        """Stop every task (the lease, unrevoked, expires on its own)."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    # -- the tasks ----------------------------------------------------------------------------

    def _refresh(self) -> None:
        host = HostRecord(self.config.name, self.config.advertise, self._applied, os.getpid())
        self._regs.want(host, self._instances)
        self._dirty.set()

    def _failed(self, what: str, exc: EtcdError) -> None:
        if self.session.unreachable_since is None:
            log.warning("cluster: etcd: %s failed: %s; serving with what is known", what, exc)
        self.session.unreachable(time.time(), f"{what}: {exc}")
        self._notifier.notify()

    def _reachable(self) -> None:
        if self.session.reachable():
            log.info("cluster: etcd answers again")
            self._run("watch", self._watch_loop)  # it may have stalled on a dead connection

    async def _lease_loop(self) -> None:
        while True:
            if not self.session.lease:
                try:
                    await self._grant()
                except EtcdError as exc:
                    self._failed("lease grant", exc)
                    await asyncio.sleep(RETRY)
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.ttl / 3)
            if self._lost.is_set():
                self._lost.clear()
                self._lease_lost("a write")
                continue
            try:
                ttl = await self.etcd.keepalive(self.session.lease)
            except EtcdError as exc:
                self._failed("lease keepalive", exc)
                continue
            self._reachable()
            if not self.session.renewed(ttl):
                self._lease_lost("a renewal")
            self._check_watch()

    def _check_watch(self) -> None:
        """A watch on a connection that died quietly sees nothing, and the gateway has no
        pings: if this host's own last write has not come back through it for two renewals
        while etcd answers calls, watch again."""
        if self._regs.put_at <= self.view.revision:
            self._behind = 0
            return
        self._behind += 1
        if self._behind >= 2:
            log.warning("cluster: the watch missed this host's own write at revision %d; "
                        "watching again", self._regs.put_at)
            self._behind = 0
            self._run("watch", self._watch_loop)

    async def _grant(self) -> None:
        lease = await self.etcd.grant(self.ttl)
        self.session.granted(lease, self.ttl)
        self._reachable()
        self._regs.lease_lost()  # whatever was written under an old lease is gone
        # A daemon killed and started again finds its former keys under its former lease,
        # still alive for up to a TTL: they name processes that are gone.
        _, kvs = await self.etcd.get_prefix(instances_prefix(self.config.prefix))
        for kv in kvs:
            record = parse(self.config.prefix, kv.key, kv.value)
            if isinstance(record, InstanceRecord) and record.host == self.config.name \
                    and kv.lease != lease:
                await self.etcd.delete_key(kv.key)
        log.info("cluster: %s joined with lease %x (ttl %ds)", self.config.name, lease, self.ttl)
        self._dirty.set()

    def _lease_lost(self, how: str) -> None:
        log.warning("cluster: %s found the lease gone (etcd deleted this host's keys); "
                    "registering again under a new one", how)
        self.session.lease = 0
        self._regs.lease_lost()
        self._notifier.notify()

    async def _writer_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            lease = self.session.lease
            if not lease:
                continue  # the lease loop sets it once granted
            for write in self._regs.plan():
                if not self._regs.current(write):
                    continue  # wanted otherwise since the plan was made
                self._regs.started(write)
                try:
                    revision = await (self.etcd.delete_key(write.key) if write.value is None
                                      else self.etcd.put(write.key, write.value, lease))
                except EtcdError as exc:
                    self._regs.failed(write)
                    if lease_gone(str(exc)):
                        self._lost.set()
                    else:
                        self._failed("a write", exc)
                    self._notifier.notify()
                    await asyncio.sleep(RETRY)
                    self._dirty.set()
                    break
                self._regs.done(write, revision)
                self._notifier.notify()

    async def _watch_loop(self) -> None:
        root = f"{self.config.prefix}/cluster/"
        while True:
            try:
                revision, kvs = await self.etcd.get_prefix(root)
                self._changed(self.view.reset(revision, ((kv.key, kv.value) for kv in kvs)))
                async for events in self.etcd.watch(root, revision + 1):
                    self._changed(self.view.apply(
                        (e.kind, e.kv.key, e.kv.value, e.kv.mod_revision) for e in events))
            except EtcdError as exc:
                self._failed("the watch", exc)
                await asyncio.sleep(RETRY)

    def _changed(self, change: Change) -> None:
        if change:
            self._gone += change.gone
            self._on_change()
            self._notifier.notify()
        if self.view.changed_at > self._applied:
            self._unacked.set()

    async def _ack_loop(self) -> None:
        while True:
            await self._unacked.wait()
            self._unacked.clear()
            revision, gone, self._gone = self.view.revision, tuple(self._gone), []
            try:
                await self._settle(gone, SETTLE_TIMEOUT)
            finally:
                self._applied = revision
                self._refresh()

    # -- status ---------------------------------------------------------------------------------

    def status_rows(self) -> list[dict[str, Any]]:
        """`status` rows: one per host seen, this one first, with etcd's state on it."""
        counts = self.view.counts()
        me = self.config.name
        since = self.session.unreachable_since
        rows = []
        for host in sorted(set(self.view.hosts) | {me}, key=lambda h: (h != me, h)):
            record = self.view.hosts.get(host)
            mine = host == me
            rows.append({
                "kind": "cluster", "host": host, "self": mine,
                "advertise": record.advertise if record else self.config.advertise,
                "instances": len(self._instances) if mine else counts.get(host, 0),
                "applied": record.applied if record else 0,
                "state": ("etcd unreachable" if since is not None else "joined"
                          if self.session.lease else "joining") if mine else "up",
                "since": since if mine else None,
                "error": self.session.error if mine else "",
                "lease": f"{self.session.lease:x}" if mine and self.session.lease else ""})
        return rows
