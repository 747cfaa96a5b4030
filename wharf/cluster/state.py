"""The sans-IO core of `[cluster]`: what this host writes into etcd, what it knows of the
others, and what a lost lease or a lost etcd means. No sockets, no clock: inputs in,
decisions out (the shell is `member.py`).

Theory of operation. Every host holds one etcd *lease* of `ttl` seconds and keeps it alive.
Under it, it writes (PREFIX is `[cluster] prefix`):

    PREFIX/cluster/hosts/HOST                     {"host", "advertise", "applied", "pid"}
    PREFIX/cluster/instances/APP/HOST/INDEX-PID   {"host", "address", "port", "weight"}

one key per ready instance of an app that a `scope = "cluster"` service balances over, and
one for the host itself. A host that dies or is cut off stops renewing; etcd deletes its keys
when the lease runs out, and every other host's watch sees the deletes: it leaves their pools
within the TTL.

Every host reads the same subtree (a range, then a watch from the revision after it) into a
`View`: the instances of the other hosts are the remote backends of its cluster services.

Leaving without failing a request elsewhere. An instance that is about to be drained and
stopped is deleted first, at revision D. Each host, once its proxy workers serve a snapshot
made from a view at revision R and no request is in flight to the instances removed by then,
writes `applied = R` into its host key. The leaving host waits (bounded) until every host
still in the view has `applied >= D`; then it drains its own workers and stops the instance.
A host that cannot answer (cut off) is waited for at most until its lease expires, which
takes it out of the view and so out of the wait.

Rules:
- This host's records come from what its supervisor says is ready, whole each time
  (`Registrations.want`); the writer brings etcd to it with the fewest puts and deletes.
- A lost lease (keepalive answers TTL 0, or a put names an unknown lease) means etcd has
  deleted every key of this host: all are written again under a new lease.
- An unreachable etcd changes nothing in the view: the last known instances keep serving
  (with health checks, ejection and retries in front of them), and `status` says since when.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Address = tuple[str, int]


def hosts_prefix(prefix: str) -> str:
    """Where the host keys are."""
    return f"{prefix}/cluster/hosts/"


def instances_prefix(prefix: str) -> str:
    """Where the instance keys are."""
    return f"{prefix}/cluster/instances/"


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One ready instance of an app on one host, as the other hosts reach it."""

    app: str
    host: str  # the cluster name of the host it runs on
    id: str  # INDEX-PID: two processes of one instance may overlap in a rolling reload
    address: str  # the host's advertise address
    port: int
    weight: int = 1

    def key(self, prefix: str) -> str:
        """Its etcd key."""
        return f"{instances_prefix(prefix)}{self.app}/{self.host}/{self.id}"

    def value(self) -> str:
        """Its etcd value (JSON, for anyone reading with etcdctl)."""
        return json.dumps({"host": self.host, "address": self.address, "port": self.port,
                           "weight": self.weight}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host of the cluster: its address, and the revision its proxy has caught up with."""

    host: str
    advertise: str
    applied: int = 0  # see "Leaving without failing a request elsewhere" above
    pid: int = 0

    def key(self, prefix: str) -> str:
        """Its etcd key."""
        return f"{hosts_prefix(prefix)}{self.host}"

    def value(self) -> str:
        """Its etcd value (JSON)."""
        return json.dumps({"host": self.host, "advertise": self.advertise,
                           "applied": self.applied, "pid": self.pid}, separators=(",", ":"))


def parse(prefix: str, key: str, value: bytes) -> InstanceRecord | HostRecord | None:
    """The record of a key of the cluster's subtree; None for anything else or a value that is
    not what Wharf writes (someone's `etcdctl put`: ignored, never fatal)."""
    try:
        data = json.loads(value)
        if key.startswith(hosts_prefix(prefix)):
            host = key[len(hosts_prefix(prefix)):]
            return HostRecord(host, str(data["advertise"]), int(data.get("applied", 0)),
                              int(data.get("pid", 0)))
        if key.startswith(instances_prefix(prefix)):
            app, host, ident = key[len(instances_prefix(prefix)):].split("/")
            port, weight = int(data["port"]), int(data.get("weight", 1))
            if not (0 < port < 65536 and weight >= 0):
                return None
            return InstanceRecord(app, host, ident, str(data["address"]), port, weight)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class Write:
    """One change the writer makes: a put of `value`, or a delete (`value` None)."""

    key: str
    value: str | None


class Registrations:
    """What this host wants in etcd against what it has written under its current lease."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.desired: dict[str, str] = {}
        self.written: dict[str, str] = {}
        self.busy: set[str] = set()  # a write of these keys is under way
        self.deleted_at = 0  # the revision of the last delete etcd answered
        self.put_at = 0  # and of the last put: this host's own watch must see it come

    def __repr__(self) -> str:
        return f"<Registrations desired={len(self.desired)} written={len(self.written)}>"

    def want(self, host: HostRecord, instances: Iterable[InstanceRecord]) -> None:
        """This host and its ready instances, as they are now (the whole set)."""
        self.desired = {host.key(self.prefix): host.value(),
                        **{r.key(self.prefix): r.value() for r in instances}}

    def drop(self, keys: Iterable[str]) -> None:
        """Stop wanting these keys now (instances about to leave), before the next `want`."""
        for key in keys:
            self.desired.pop(key, None)

    def plan(self) -> list[Write]:
        """The writes that bring etcd to what is wanted: new instances first (a rolling
        reload's new instance is in the other pools before the old one leaves), then the
        deletes, the host key last."""
        deletes = [Write(k, None) for k in self.written if k not in self.desired]
        puts = [Write(k, v) for k, v in self.desired.items() if self.written.get(k) != v]
        host = [w for w in puts if w.key.startswith(hosts_prefix(self.prefix))]
        return [w for w in puts if w not in host] + deletes + host

    def current(self, write: Write) -> bool:
        """True if `write` (from an earlier `plan`) is still needed."""
        if write.value is None:
            return write.key in self.written and write.key not in self.desired
        return self.desired.get(write.key) == write.value != self.written.get(write.key)

    def started(self, write: Write) -> None:
        """The writer sent `write`."""
        self.busy.add(write.key)

    def done(self, write: Write, revision: int) -> None:
        """etcd answered `write` at `revision`."""
        self.busy.discard(write.key)
        if write.value is None:
            self.written.pop(write.key, None)
            self.deleted_at = max(self.deleted_at, revision)
        else:
            self.written[write.key] = write.value
            self.put_at = max(self.put_at, revision)

    def failed(self, write: Write) -> None:
        """`write` got no answer: it may or may not have happened; a delete is tried again,
        a put too (the next plan has both)."""
        self.busy.discard(write.key)
        if write.value is not None:
            self.written.pop(write.key, None)

    def lease_lost(self) -> None:
        """etcd deleted every key of the old lease: nothing is written any more."""
        self.written.clear()

    def gone(self, keys: Iterable[str]) -> bool:
        """True once none of `keys` is in etcd or on its way there."""
        return not any(k in self.written or k in self.busy for k in keys)


@dataclass(frozen=True, slots=True)
class Change:
    """What an update of the view changed: the apps whose remote instances differ, and the
    addresses no longer served by any remote instance."""

    apps: frozenset[str] = frozenset()
    gone: tuple[Address, ...] = ()
    hosts: bool = False  # a host came, went or changed

    def __bool__(self) -> bool:
        return bool(self.apps or self.gone or self.hosts)


@dataclass
class View:
    """Every host's records, as read from etcd (a range, then the watch's events)."""

    prefix: str
    me: str  # this host's name: its own instances are local backends, not remote ones
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    revision: int = 0  # the newest revision seen
    changed_at: int = 0  # the revision of the last change of another host's instances

    def reset(self, revision: int, kvs: Iterable[tuple[str, bytes]]) -> Change:
        """The whole subtree as read at `revision` (after a start, a broken watch or an
        etcd outage): what it changed against what was known."""
        before = self.instances
        self.instances, self.hosts = {}, {}
        for key, value in kvs:
            self._put(key, value)
        self.revision = max(self.revision, revision)
        self.changed_at = self.revision
        return self._change(before)

    def apply(self, events: Iterable[tuple[str, str, bytes, int]]) -> Change:
        """A batch of the watch's events, each (kind "put"/"delete", key, value,
        mod_revision)."""
        before = dict(self.instances)
        hosts = dict(self.hosts)
        for kind, key, value, revision in events:
            if kind == "put":
                self._put(key, value)
            else:
                self.instances.pop(key, None)
                if key.startswith(hosts_prefix(self.prefix)):
                    self.hosts.pop(key[len(hosts_prefix(self.prefix)):], None)
            self.revision = max(self.revision, revision)
        change = self._change(before, hosts != self.hosts)
        if change.apps:
            self.changed_at = self.revision
        return change

    def _put(self, key: str, value: bytes) -> None:
        record = parse(self.prefix, key, value)
        if isinstance(record, InstanceRecord):
            self.instances[key] = record
        elif isinstance(record, HostRecord):
            self.hosts[record.host] = record
        else:
            self.instances.pop(key, None)  # a record spoiled by hand is one that left

    def _change(self, before: Mapping[str, InstanceRecord], hosts: bool = False) -> Change:
        old = {k: r for k, r in before.items() if r.host != self.me}
        new = {k: r for k, r in self.instances.items() if r.host != self.me}
        apps = frozenset(r.app for k, r in (*old.items(), *new.items())
                         if old.get(k) != new.get(k))
        served = {(r.address, r.port) for r in new.values()}
        gone = tuple(dict.fromkeys((r.address, r.port) for r in old.values()
                                   if (r.address, r.port) not in served))
        return Change(apps, gone, hosts or bool(apps))

    def remote(self, app: str) -> tuple[InstanceRecord, ...]:
        """The instances of `app` on the other hosts, in a stable order."""
        return tuple(sorted((r for r in self.instances.values()
                             if r.app == app and r.host != self.me),
                            key=lambda r: (r.host, r.port, r.id)))

    def waiting_for(self, revision: int) -> list[str]:
        """The other hosts whose proxy has not caught up with `revision` yet."""
        return sorted(h for h, r in self.hosts.items() if h != self.me and r.applied < revision)

    def counts(self) -> dict[str, int]:
        """How many instances each host has registered."""
        counts = dict.fromkeys(self.hosts, 0)
        for record in self.instances.values():
            counts[record.host] = counts.get(record.host, 0) + 1
        return counts


@dataclass
class Session:
    """This host's lease and whether etcd answers, for `status` and the shell's decisions."""

    lease: int = 0  # 0: none (not granted yet, or lost)
    ttl: int = 0  # as granted
    unreachable_since: float | None = None  # wall-clock time of the first failed call
    error: str = ""
    grants: int = 0  # how many leases this host has held (more than 1: it lost one)

    def granted(self, lease: int, ttl: int) -> None:
        """etcd granted a lease."""
        self.lease, self.ttl = lease, ttl
        self.grants += 1
        self.reachable()

    def renewed(self, ttl: int) -> bool:
        """A keepalive's answer; False if the lease is gone (then grant another and write
        everything again: etcd has deleted this host's keys)."""
        self.reachable()
        if ttl <= 0:
            self.lease = 0
            return False
        return True

    def reachable(self) -> bool:
        """etcd answered; True if it had not before (the watch may have missed events)."""
        was = self.unreachable_since is not None
        self.unreachable_since, self.error = None, ""
        return was

    def unreachable(self, now: float, error: str) -> None:
        """A call failed at `now` (wall clock)."""
        if self.unreachable_since is None:
            self.unreachable_since = now
        self.error = error


def lease_gone(error: str) -> bool:
    """True if etcd refused a write because the lease it names is gone."""
    return "lease not found" in error
