"""The certificate manager's etcd side in a cluster (`[cluster]` with `[tls] acme`): the I/O
shell around `shared.View`.

Theory of operation. `start` runs two tasks. The watch task reads the certificate keys
(`P/certs/`, `P/locks/certs/`, `P/acme/`), then watches `P/` from the next revision, feeding
every event to the view and telling the manager what changed; when etcd is lost it reads
again once etcd is back (a compacted revision likewise). The session task holds this host's
session lease (the cluster's ttl, kept alive every third of it), on which it announces itself
in `P/acme/hosts/` and acknowledges challenges; a keepalive that fails while a watch is open
also starts the watch again (a connection to an etcd cut off without a reset stays silent).
Whenever the challenges in etcd change, the host publishes a snapshot with them, waits until
its workers serve it, and acknowledges each new one: the ordering host asks the CA to
validate only once every host has (or after ACK_WAIT), since the CA's request may reach any.

`claim` is the lock: a lease of the ttl, `create` of `P/locks/certs/<name>` on it, kept alive
while the order runs, revoked after (which also removes the order's challenges). Records are
written by the lock holder only; nothing fences a holder whose lease expired while it was cut
off from etcd, but the worst it can do is store a second valid certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from wharf.certs.local_ca import key_pem, new_key
from wharf.certs.offers import Offer
from wharf.certs.shared import Changed, Keys, Kind, View, decode_record, encode_record
from wharf.certs.store import Meta, Stored, describe
from wharf.clients.etcd import Compacted, Etcd, EtcdError
from wharf.config.cluster import ClusterConfig

log = logging.getLogger("wharf.certs")

ACK_WAIT = 10.0  # seconds the ordering host waits for every host to serve a challenge
RETRY_FIRST = 0.5  # seconds before reading etcd again after it was lost, doubling...
RETRY_MAX = 5.0  # ...up to this


@dataclass(frozen=True, slots=True)
class Claim:
    """A held lock: the name and the lease it (and the order's challenges) live on."""

    name: str
    lease: int


class ClusterCerts:
    """Certificates, locks, the ACME account and challenges of the hosts sharing a prefix."""

    def __init__(self, cluster: ClusterConfig, on_change: Callable[[Changed], None],
                 serve: Callable[[], Awaitable[None]]) -> None:
        self.config = cluster
        self.etcd = Etcd(cluster.etcd)
        self.keys = Keys(cluster.prefix)
        self.host = cluster.name
        self.ttl = max(2, math.ceil(cluster.ttl))  # etcd's shortest lease is about 2 s
        self.view = View(self.keys)
        self.loaded = False  # the first read is done: the records can be trusted
        self._on_change = on_change  # told on the loop of every change
        self._serve = serve  # publish a snapshot and wait until this host's workers serve it
        self._session = 0  # this host's session lease, 0 while it has none
        self._mine: set[int] = set()  # the leases of this host's orders under way
        self._acked: set[tuple[Kind, str]] = set()
        self._offered: dict[str, tuple[Kind, str]] = {}  # name -> the challenge in etcd
        self._ack_again = False
        self._acking: asyncio.Task[None] | None = None
        self._acks_seen = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._watching = False  # a watch is open (the session's keepalive probes it)

    def __repr__(self) -> str:
        return (f"<ClusterCerts {self.keys.prefix} host={self.host} loaded={self.loaded} "
                f"records={len(self.view.records)} locks={len(self.view.locks)}>")

    def start(self) -> None:
        """Start the watch and the session (on the running loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch()), loop.create_task(self._keep_session())]

    async def close(self) -> None:
        """Stop both tasks and end the session (this host leaves `P/acme/hosts/`)."""
        for task in [*self._tasks, *([self._acking] if self._acking else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session:
            with contextlib.suppress(EtcdError):
                await self.etcd.revoke(self._session)

    # -- what the manager reads ----------------------------------------------------------

    def load(self, name: str) -> tuple[Stored | None, Meta | None]:
        """The certificate and meta the cluster holds for `name` (from the view, no I/O)."""
        raw = self.view.records.get(name)
        return decode_record(name, raw) if raw is not None else (None, None)

    def locked(self, name: str) -> bool:
        """True if another host (or an order of this host's last run) is ordering `name`."""
        return self.view.locked(name, self._mine)

    async def fresh(self, name: str) -> tuple[Stored | None, Meta | None]:
        """The record of `name` read now (after a claim: the view may lag)."""
        kv = await self.etcd.get(self.keys.cert(name))
        return decode_record(name, kv.value) if kv is not None else (None, None)

    # -- the lock ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def claim(self, name: str) -> AsyncIterator[Claim | None]:
        """Hold `name`'s lock for the block, or give None if another host holds it."""
        lease = await self.etcd.grant(self.ttl)
        self._mine.add(lease)
        try:
            if not await self.etcd.create(self.keys.lock(name), self.host, lease):
                kv = await self.etcd.get(self.keys.lock(name))
                if kv is not None and self.view.learned(name, kv.lease, kv.mod_revision):
                    log.info("wharf: %s is being ordered by %s", name, kv.value.decode())
                yield None
                return
            keeper = asyncio.get_running_loop().create_task(self._keep(lease, name))
            try:
                yield Claim(name, lease)
            finally:
                keeper.cancel()
        finally:
            self._mine.discard(lease)
            with contextlib.suppress(EtcdError):
                await self.etcd.revoke(lease)

    async def _keep(self, lease: int, name: str) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                alive = await self.etcd.keepalive(lease)
            except EtcdError as exc:
                log.warning("wharf: cannot keep the lock of %s alive: %s", name, exc)
                continue
            if not alive:
                log.warning("wharf: the lock of %s expired during its order", name)
                return

    # -- records and the account ---------------------------------------------------------

    async def save(self, name: str, cert_pem: str, key_pem: str, meta: Meta) -> Stored:
        """Store a new certificate for `name` (its validity read from it, failures cleared)."""
        issuer, not_before, not_after, serial = describe(cert_pem)
        meta = replace(meta, issuer=issuer, not_before=not_before, not_after=not_after,
                       serial=serial, last_error="", last_error_at=None, failures=0)
        await self.etcd.put(self.keys.cert(name), encode_record(cert_pem, key_pem, meta))
        return Stored(name, cert_pem, key_pem, meta)

    async def save_meta(self, name: str, meta: Meta, stored: Stored | None) -> None:
        """Replace the meta of `name` (a failure), keeping the certificate it holds."""
        cert, key = (stored.cert_pem, stored.key_pem) if stored else ("", "")
        await self.etcd.put(self.keys.cert(name), encode_record(cert, key, meta))

    async def account_key(self, directory: str) -> str:
        """The ACME account key (PEM) of `directory`, made by the first host that asks."""
        key = self.keys.account(directory)
        kv = await self.etcd.get(key)
        if kv is None:
            pem = key_pem(new_key())
            if await self.etcd.create(key, json.dumps({"directory": directory, "key": pem})):
                log.info("wharf: made the ACME account key for %s in etcd", directory)
                return pem
            kv = await self.etcd.get(key)
            if kv is None:
                raise EtcdError(f"{key} vanished as it was made")
        return str(json.loads(kv.value)["key"])

    # -- challenges ----------------------------------------------------------------------

    async def answer(self, claim: Claim, offer: Offer | None) -> None:
        """Put an order's challenge in etcd for every host to serve, once they all do (or
        take it out: None)."""
        previous = self._offered.pop(claim.name, None)
        if previous is not None:
            await self.withdraw(*previous)
        if offer is None:
            return
        kind: Kind
        if offer.token:
            kind, ident, value = "http01", offer.token, offer.key_authorization
        else:
            kind, ident = "alpn01", claim.name
            value = json.dumps({"cert": offer.alpn_cert_pem, "key": offer.alpn_key_pem})
        self._offered[claim.name] = (kind, ident)
        await self.offer(kind, ident, value, claim)

    async def offer(self, kind: Kind, ident: str, value: str, claim: Claim) -> None:
        """Put a challenge on the claim's lease; return once every host serves it (at most
        ACK_WAIT)."""
        await self.etcd.put(self.keys.challenge(kind, ident), value, claim.lease)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_WAIT
        while not self.view.acked_by_all(kind, ident):
            self._acks_seen.clear()
            if loop.time() >= deadline:
                missing = self.view.hosts - self.view.acked.get((kind, ident), set())
                log.warning("wharf: %s did not say they serve the %s challenge of %s within "
                            "%.0fs; asking the CA to validate anyway", ", ".join(sorted(
                                missing)), kind, claim.name, ACK_WAIT)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acks_seen.wait(), deadline - loop.time())

    async def withdraw(self, kind: Kind, ident: str) -> None:
        """Take a challenge and its acknowledgements out of etcd."""
        await self.etcd.delete(self.keys.challenge(kind, ident))
        await self.etcd.delete(self.keys.acks(kind, ident), prefix=True)

    def _challenges_changed(self) -> None:
        if self._acking is None or self._acking.done():
            self._acking = asyncio.get_running_loop().create_task(self._ack())
        else:
            self._ack_again = True

    async def _ack(self) -> None:
        """Serve the cluster's challenges, then acknowledge the new ones."""
        while True:
            self._ack_again = False
            current = set(self.view.challenges)  # what the snapshot published now carries
            await self._serve()
            try:
                for ident in current - self._acked if self._session else ():
                    if ident not in self.view.challenges:
                        continue  # gone meanwhile
                    await self.etcd.put(self.keys.ack(*ident, self.host), "", self._session)
                    self._acked.add(ident)
                for ident in self._acked - current:  # an order that ended without withdrawing
                    self._acked.discard(ident)
                    await self.etcd.delete(self.keys.ack(*ident, self.host))
            except EtcdError as exc:
                log.warning("wharf: cannot acknowledge a challenge in etcd: %s", exc)
            if not self._ack_again:
                return

    # -- the tasks -----------------------------------------------------------------------

    async def _watch(self) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                revision = await self._read()
                delay = RETRY_FIRST
                self._watching = True
                async for events in self.etcd.watch(self.keys.prefix + "/", revision + 1):
                    for e in events:
                        self._apply(self.view.apply(e.kind, e.kv.key, e.kv.value, e.kv.lease,
                                                    e.kv.mod_revision))
            except Compacted:
                continue
            except EtcdError as exc:
                log.warning("wharf: etcd: %s; the certificates known stay in use", exc)
            finally:
                self._watching = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _read(self) -> int:
        """Read every certificate key into a new view; the revision read at (the lowest)."""
        view = View(self.keys)
        revisions = []
        for sub in ("certs/", "locks/certs/", "acme/"):
            revision, kvs = await self.etcd.get_prefix(f"{self.keys.prefix}/{sub}")
            revisions.append(revision)
            for kv in kvs:
                view.apply("put", kv.key, kv.value, kv.lease, kv.mod_revision)
        old, self.view = self.view, view
        self.loaded = True
        for name in set(old.records) | set(view.records):
            self._on_change(Changed(cert=name))
        for name in set(old.locks) | set(view.locks):
            self._on_change(Changed(lock=name))
        self._apply(Changed(challenges=True, acks=True))
        self._on_change(Changed())  # loaded: the names of the cluster may be planned
        return min(revisions)

    def _apply(self, changed: Changed) -> None:
        if changed.acks:
            self._acks_seen.set()
        if changed.challenges:
            self._challenges_changed()
        if changed.cert or changed.lock:
            self._on_change(changed)

    async def _keep_session(self) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                if not self._session:
                    lease = await self.etcd.grant(self.ttl)
                    await self.etcd.put(self.keys.host(self.host), "", lease)
                    self._session, self._acked = lease, set()
                    self._challenges_changed()  # acknowledge again on the new lease
                await asyncio.sleep(self.ttl / 3)
                if not await self.etcd.keepalive(self._session):
                    log.warning("wharf: the cluster session of %s expired; joining again",
                                self.host)
                    self._session = 0
                delay = RETRY_FIRST
            except EtcdError as exc:
                log.warning("wharf: cannot keep the cluster session: %s", exc)
                if self._watching:  # a watch on a silent connection would wait forever
                    self._tasks[0].cancel()
                    self._tasks[0] = asyncio.get_running_loop().create_task(self._watch())
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
