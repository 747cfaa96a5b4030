"""The certificate manager: the daemon's part of HTTPS (the control plane owns secrets and slow
work). It keeps a certificate for every name `names.managed` lists, from ACME or the local CA.

Theory of operation. One asyncio task asks `renewal.plan` what is due, orders those names one
at a time, and sleeps until the next one falls due or something changes (a reload, a forced
renewal). Every blocking call (the `acme` library, key generation, disk writes) runs in a thread
of the manager's own executor; the daemon loop never waits on the CA. A challenge is offered
to the workers through the snapshot (`http01`, `alpn01`): the manager asks the daemon to
publish and waits until the workers serve that snapshot (bounded by the daemon) before it
tells the CA to validate. A new certificate is stored, then published; the old one serves
until then, and keeps serving if the order fails. Failures back off (`renewal`) and are shown
in `wharf certs` and `wharf status`. Stopping sets the stop event (an order in a thread ends at
its next step) and cancels the task.

In a cluster (`[cluster]` with `[tls] acme`), ACME names live in etcd (`cluster`): a name is
planned only while no other host holds its lock, ordered only under the lock (and only if the
record read then is still due), stored in etcd (and cached in the state directory, so that a
restart serves at once), and its challenges are put in etcd for every host to serve. A
certificate another host stored arrives through the watch and is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from wharf.certs import names as certnames
from wharf.certs import renewal
from wharf.certs.listing import file_rows, managed_row
from wharf.certs.local_ca import LocalCa
from wharf.certs.names import Managed
from wharf.certs.offers import Offer, Stopped
from wharf.certs.shared import Changed
from wharf.certs.store import CertStore, Meta, Stored, describe
from wharf.clients.etcd import EtcdError
from wharf.config.cluster import ClusterConfig
from wharf.config.model import Config
from wharf.errors import ControlError, UsageError
from wharf.observability.events import EventKind, EventStream
from wharf.registry.snapshot import Certificate

if TYPE_CHECKING:
    from wharf.certs.acme import AcmeClient
    from wharf.certs.cluster import Claim, ClusterCerts

log = logging.getLogger("wharf.certs")

MAX_SLEEP = 3600.0  # look again at least hourly: the wall clock may have jumped
OFFER_TIMEOUT = 15.0  # seconds a thread waits for the loop to publish a challenge

# Publish a snapshot with the current certificates and challenges; with wait=True, return
# once the workers serve it (the daemon bounds the wait).
Publish = Callable[[bool], Awaitable[None]]


class CertManager:
    """Gets, stores and renews the certificates of ACME and local-CA names."""

    def __init__(self, config: Config, publish: Publish,
                 events: EventStream | None = None) -> None:
        self.store = CertStore(config.daemon.state_dir)
        self._publish = publish
        self._events = events  # certificate.issued, .renewed, .failed
        self._config = config
        self._wanted: list[Managed] = []
        self._stored: dict[str, Stored] = {}
        self._meta: dict[str, Meta] = {}
        self._forced: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._recent: list[float] = []  # start times of ACME orders (rate limit)
        self._http01: dict[str, tuple[str, str]] = {}  # name -> (token, key authorization)
        self._alpn01: dict[str, Certificate] = {}
        self._busy: str | None = None
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="wharf-certs")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._local = LocalCa(self.store.root)
        self._acme: AcmeClient | None = None
        self._cluster: ClusterCerts | None = None  # with [cluster] and [tls] acme
        self._claims: dict[str, Claim] = {}  # names this host orders under a lock
        self._background: set[asyncio.Future[Any]] = set()

    def __repr__(self) -> str:
        return (f"<CertManager names={len(self._wanted)} held={len(self._stored)} "
                f"busy={self._busy}>")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load what the store holds for the config's names and start the renewal task."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.configure(self._config)
        self._task = self._loop.create_task(self._run())

    def configure(self, config: Config) -> None:
        """Take the names of `config` (at start and on reload); stored certificates of new
        names are loaded at once, so a restart serves them without asking anyone."""
        self._config = config
        patterns = [n for c in config.tls_files for n in c.names]
        self._wanted = certnames.managed(config, patterns)
        acme = config.tls.acme if config.tls else None
        if acme is None:
            self._acme = None
        elif self._acme is None or self._acme.config != acme:
            from wharf.certs.acme import AcmeClient  # the acme library: only when needed

            self._acme = AcmeClient(acme, self.store.root, self._stop)
        self._join(config.cluster if acme is not None else None)
        for m in self._wanted:
            if m.name not in self._meta:
                self._load(m)
        for name in list(self._stored):
            if name not in {m.name for m in self._wanted}:
                del self._stored[name]  # kept on disk, no longer served
        if self._wake is not None:
            self._wake.set()

    def _load(self, m: Managed) -> None:
        stored = self.store.load(m.name)
        meta = stored.meta if stored else self.store.load_meta(m.name)
        if stored is not None and stored.meta.source == m.source:
            self._stored[m.name] = stored
        elif stored is not None:  # from the other source: replace it (serve it meanwhile)
            self._stored[m.name] = stored
            self._forced.add(m.name)
        self._meta[m.name] = replace(meta, source=m.source) if meta else Meta(m.source)
        if self._cluster is not None and m.source == "acme":
            self._take(m, *self._cluster.load(m.name))  # a name added by a reload

    def _join(self, cluster: ClusterConfig | None) -> None:
        """Share ACME names through `cluster` (None: keep them in the state directory)."""
        if self._cluster is not None and (cluster is None or self._cluster.config != cluster):
            self._spawn(self._cluster.close())
            self._cluster = None
        if cluster is not None and self._cluster is None and self._loop is not None:
            from wharf.certs.cluster import ClusterCerts

            self._cluster = ClusterCerts(cluster, self._cluster_changed,
                                         lambda: self._publish(True))
            self._cluster.start()

    def _spawn(self, work: Awaitable[Any]) -> None:
        future = asyncio.ensure_future(work)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Abandon any order under way and stop the task."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Stopped):
                await self._task
        if self._cluster is not None:
            await self._cluster.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for waiters in self._waiters.values():
            for w in waiters:
                if not w.done():
                    w.set_exception(ControlError("the daemon is stopping"))

    # -- what the snapshot gets -----------------------------------------------------------

    def issued(self) -> tuple[Certificate, ...]:
        """The certificates to serve, in config order (an expired one still serves: there is
        nothing better for its name, and `wharf certs` says so)."""
        return tuple(Certificate((m.name,), s.cert_pem, s.key_pem)
                     for m in self._wanted if (s := self._stored.get(m.name)) is not None)

    def http01(self) -> tuple[tuple[str, str], ...]:
        """(token, key authorization) of every HTTP-01 challenge under way (in a cluster,
        those of every host's orders)."""
        shared = self._cluster.view.http01() if self._cluster is not None else []
        return tuple(dict([*self._http01.values(), *shared]).items())

    def alpn01(self) -> tuple[Certificate, ...]:
        """The TLS-ALPN-01 challenge certificates under way (in a cluster, every host's)."""
        shared = self._cluster.view.alpn01() if self._cluster is not None else []
        return (*self._alpn01.values(),
                *(Certificate((name,), cert, key) for name, cert, key in shared))

    # -- commands -------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Every name with a certificate source: file certificates, then managed names."""
        rows = file_rows(self._config)
        for m in self._wanted:
            meta = self._meta.get(m.name, Meta(m.source))
            rows.append(managed_row(m.name, meta, self._next_renewal(m.name)))
        return rows

    def ca_pem(self) -> str:
        """The local CA's certificate, for users to trust."""
        if not (self._config.tls and self._config.tls.local_ca) and \
                not (self._local.dir / "ca.pem").exists():
            raise UsageError("there is no local CA: local_ca is off in [tls]",
                             hint="set `local_ca = true` in [tls] and `wharf reload`")
        return self._local.ca_pem

    async def renew(self, name: str, timeout: float) -> dict[str, Any]:
        """Renew one name now (whatever its age), wait for the result, return its row."""
        if name not in {m.name for m in self._wanted}:
            known = ", ".join(m.name for m in self._wanted) or "none"
            files = any(name in c.names for c in self._config.tls_files)
            source = "served from a file certificate" if files else "not a managed name"
            raise UsageError(f"{name!r} is {source}: only ACME and local-CA names renew",
                             hint=f"managed names: {known}")
        assert self._loop is not None and self._wake is not None
        done: asyncio.Future[None] = self._loop.create_future()
        self._waiters.setdefault(name, []).append(done)
        self._forced.add(name)
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            raise ControlError(f"the renewal of {name} did not finish in {timeout:.0f}s",
                               hint="it goes on; see `wharf certs`") from None
        return next(r for r in self.rows() if r["name"] == name and r["source"] != "file")

    # -- the renewal task -----------------------------------------------------------------

    def _next_renewal(self, name: str) -> float | None:
        held = self._held().get(name)
        failure = self._failures().get(name)
        if held is None and failure is None:
            return None if self._busy == name else time.time()
        return renewal.due_at(held, failure, name in self._forced)

    def _held(self) -> dict[str, renewal.Held]:
        return {n: renewal.Held(s.meta.not_before or 0.0, s.meta.not_after or 0.0)
                for n, s in self._stored.items()}

    def _failures(self) -> dict[str, renewal.Failure]:
        return {n: renewal.Failure(m.failures, m.last_error_at or 0.0)
                for n, m in self._meta.items() if m.failures}

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            now = time.time()
            plan = renewal.plan([renewal.Wanted(m.name, m.source == "acme")
                                 for m in self._wanted if self._may_plan(m)], self._held(),
                                self._failures(), self._forced, self._recent, now)
            self._recent = renewal.recent_starts(self._recent, now)
            for name in plan.order:
                m = next((m for m in self._wanted if m.name == name), None)
                if m is not None:  # a reload may have dropped it meanwhile
                    await self._obtain(m)
            if plan.order:
                continue
            sleep = MAX_SLEEP if plan.wake_at is None else \
                max(0.0, min(plan.wake_at - time.time(), MAX_SLEEP))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), sleep)

    def _shared(self, m: Managed) -> ClusterCerts | None:
        """The cluster that holds an ACME name, if there is one."""
        return self._cluster if m.source == "acme" else None

    def _may_plan(self, m: Managed) -> bool:
        """False for a name of the cluster while it is unread or another host orders it
        (the end of its lock, or the record it writes, wakes the task)."""
        cluster = self._shared(m)
        return cluster is None or (cluster.loaded and not cluster.locked(m.name))

    async def _obtain(self, m: Managed) -> None:
        """Get a certificate for one name: in a cluster, under its lock and only if still
        due once the lock is held."""
        cluster = self._shared(m)
        if cluster is None:
            return await self._order(m)
        try:
            async with cluster.claim(m.name) as claim:
                if claim is None:
                    return None  # another host orders it
                self._take(m, *await cluster.fresh(m.name))
                due = self._next_renewal(m.name)
                if due is not None and due > time.time():
                    self._resolve(m.name, "")  # another host renewed it a moment ago
                    return None
                self._claims[m.name] = claim
                try:
                    await self._order(m)
                finally:
                    del self._claims[m.name]
        except EtcdError as exc:
            await self._failed(m, self._meta.get(m.name, Meta(m.source)),
                               f"cannot reach etcd: {exc}")
            self._resolve(m.name, f"cannot reach etcd: {exc}")
        return None

    async def _order(self, m: Managed) -> None:
        """Get a certificate for one name, store it and publish it; on failure record the
        error and back off. Never raises but for cancellation."""
        loop = asyncio.get_running_loop()
        self._busy = m.name
        self._forced.discard(m.name)
        meta = self._meta.get(m.name, Meta(m.source))
        error = ""
        renewing = m.name in self._stored
        try:
            if m.source == "local":
                issued = await loop.run_in_executor(self._executor, self._local.issue, m.name)
                cert_pem, key_pem, url = issued.cert_pem, issued.key_pem, ""
            else:
                assert self._acme is not None
                self._recent.append(time.time())
                acme = self._acme
                if self._cluster is not None:
                    acme.adopt_key(await self._cluster.account_key(acme.config.directory))
                log.info("wharf: ordering a certificate for %s from %s", m.name,
                         acme.config.directory)
                order = await loop.run_in_executor(
                    self._executor, acme.obtain, m.name,
                    lambda offer: self._offer_from_thread(m.name, offer))
                cert_pem, key_pem, url = order.cert_pem, order.key_pem, order.url
            _, not_before, not_after, _ = describe(cert_pem)
            meta = replace(meta, source=m.source, order_url=url, next_renewal=renewal.renew_at(
                renewal.Held(not_before, not_after)))
            cluster = self._shared(m)
            if cluster is not None:
                stored = await cluster.save(m.name, cert_pem, key_pem, meta)
                self._cache(stored)
            else:
                stored = await loop.run_in_executor(self._executor, self.store.save, m.name,
                                                    cert_pem, key_pem, meta)
            self._stored[m.name], self._meta[m.name] = stored, stored.meta
            until = time.strftime("%Y-%m-%d %H:%M", time.gmtime(stored.meta.not_after or 0))
            log.info("wharf: certificate for %s from %s (%s), serial %s, valid until %s",
                     m.name, m.source, stored.meta.issuer, stored.meta.serial, until)
            if self._events is not None:
                self._events.emit(
                    EventKind.CERTIFICATE_RENEWED if renewing else EventKind.CERTIFICATE_ISSUED,
                    f"from {m.source} ({stored.meta.issuer}), serial {stored.meta.serial}, valid "
                    f"until {until} UTC", certificate=m.name)
            await self._publish(False)
        except (Stopped, asyncio.CancelledError):
            raise
        except Exception as exc:  # the CA's answer, the network, the disk: a state, not a crash
            error = self._describe(exc, m)
            await self._failed(m, meta, error)
        finally:
            self._busy = None
        self._resolve(m.name, error)

    def _describe(self, exc: Exception, m: Managed) -> str:
        if m.source == "acme":
            from wharf.certs.acme import describe_error

            return describe_error(exc)
        return f"{type(exc).__name__}: {exc}"

    async def _failed(self, m: Managed, meta: Meta, error: str) -> None:
        now = time.time()
        failure = renewal.Failure(meta.failures + 1, now)
        meta = replace(meta, source=m.source, last_error=error, last_error_at=now,
                       failures=failure.count, next_renewal=renewal.retry_at(failure))
        self._meta[m.name] = meta
        if self._acme is not None and m.source == "acme":
            self._acme.forget_account()  # the CA may have lost it (a restarted Pebble)
        cluster = self._shared(m)
        with contextlib.suppress(OSError, EtcdError):
            if cluster is not None and m.name in self._claims:
                await cluster.save_meta(m.name, meta, self._stored.get(m.name))
            elif cluster is None:
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.store.save_meta, m.name, meta)
        held = " (the current certificate keeps serving)" if m.name in self._stored else ""
        log.warning("wharf: no certificate for %s from %s%s: %s; next try in %.0fs", m.name,
                    m.source, held, error, renewal.backoff(failure.count))
        if self._events is not None:
            self._events.emit(EventKind.CERTIFICATE_FAILED, f"from {m.source}{held}: {error}; "
                              f"next try in {renewal.backoff(failure.count):.0f}s",
                              certificate=m.name)

    def _resolve(self, name: str, error: str) -> None:
        for waiter in self._waiters.pop(name, []):
            if not waiter.done():
                if error:
                    waiter.set_exception(ControlError(f"{name}: {error}"))
                else:
                    waiter.set_result(None)

    def _offer_from_thread(self, name: str, offer: Offer | None) -> None:
        """Called by an order's thread: put a challenge into the snapshot (or take it out)
        and return once the workers serve it."""
        if self._stop.is_set() or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._offer(name, offer), self._loop)
        future.result(OFFER_TIMEOUT)

    async def _offer(self, name: str, offer: Offer | None) -> None:
        if self._cluster is not None and name in self._claims:
            return await self._cluster.answer(self._claims[name], offer)
        self._http01.pop(name, None)
        self._alpn01.pop(name, None)
        if offer is not None and offer.token:
            self._http01[name] = (offer.token, offer.key_authorization)
        elif offer is not None:
            self._alpn01[name] = Certificate((name,), offer.alpn_cert_pem, offer.alpn_key_pem)
        await self._publish(offer is not None)

    # -- the cluster's changes ------------------------------------------------------------

    def _cluster_changed(self, changed: Changed) -> None:
        """Called by the watch: a record or a lock changed in etcd."""
        m = next((m for m in self._wanted if m.name == changed.cert and m.source == "acme"),
                 None)
        if m is not None and self._cluster is not None:
            self._take(m, *self._cluster.load(m.name))
        if self._wake is not None:
            self._wake.set()

    def _take(self, m: Managed, stored: Stored | None, meta: Meta | None) -> None:
        """Adopt the cluster's record of a name: its meta, and its certificate if new here
        (published, and cached in the state directory)."""
        if meta is not None and m.name not in self._claims:
            self._meta[m.name] = meta
        held = self._stored.get(m.name)
        if stored is None or (held is not None and held.meta.serial == stored.meta.serial):
            return
        self._stored[m.name] = stored
        log.info("wharf: certificate for %s from the cluster, serial %s", m.name,
                 stored.meta.serial)
        self._cache(stored)
        self._spawn(self._publish(False))

    def _cache(self, stored: Stored) -> None:
        """Keep a copy of a cluster certificate in the state directory (served at a restart
        before etcd answers)."""
        def save() -> None:
            try:
                self.store.save(stored.name, stored.cert_pem, stored.key_pem, stored.meta)
            except OSError as exc:
                log.warning("wharf: cannot cache the certificate of %s: %s", stored.name, exc)

        self._spawn(asyncio.get_running_loop().run_in_executor(self._executor, save))
