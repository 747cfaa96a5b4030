"""Certificates shared by the hosts of a cluster through etcd: the key layout, the record
format and the view of the keys that the watch keeps (sans-IO: etcd's events in, what changed
out; the I/O is in `cluster`).

Key layout under the cluster prefix P (docs/https.md, "Certificates in a cluster"):

    P/certs/<name>                      one JSON record: cert, key and meta (failures too)
    P/locks/certs/<name>                the host ordering <name>, on that order's lease
    P/acme/account/<hash>               the ACME account key of a directory (JSON)
    P/acme/hosts/<host>                 every host that serves challenges, on its session lease
    P/acme/http01/<token>               an HTTP-01 key authorization, on the order's lease
    P/acme/alpn01/<name>                a TLS-ALPN-01 certificate and key (JSON), likewise
    P/acme/acks/<kind>/<id>/<host>      "my workers serve it", on that host's session lease

Rules:
- A name is ordered only by the host whose `create` made its lock; the lock lives on a lease of
  the cluster's ttl that the holder keeps alive while it orders and revokes after (taking its
  challenges with it). A holder that dies loses the lock within the ttl.
- A name whose lock exists is not planned by the others (`locked`): its deletion, or the new
  record the holder writes before it lets go, wakes them; a host claims only names that are
  due, and looks at the record again once it holds the lock, so that a certificate written
  just before is not ordered twice.
- The view follows the watch, in revision order. A claim that fails reads the lock to learn of
  it before the watch shows it (`learned`); that read is taken only if it is newer than what
  the watch has already applied for that name, so a late read never brings back a lock the
  watch has seen go.
- A challenge is answered once every host of `P/acme/hosts/` has acknowledged it (`acked`):
  the CA's request may reach any of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from wharf.certs.store import Meta, Stored, describe, key_matches, storable

log = logging.getLogger("wharf.certs")

Kind = Literal["http01", "alpn01"]
KINDS: tuple[Kind, ...] = ("http01", "alpn01")


def directory_hash(directory: str) -> str:
    """The short hash naming an ACME directory's account (as the file store names it)."""
    return hashlib.sha256(directory.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Keys:
    """Where each thing lives under the cluster prefix."""

    prefix: str

    def cert(self, name: str) -> str:
        return f"{self.prefix}/certs/{name}"

    def lock(self, name: str) -> str:
        return f"{self.prefix}/locks/certs/{name}"

    def account(self, directory: str) -> str:
        return f"{self.prefix}/acme/account/{directory_hash(directory)}"

    def host(self, host: str) -> str:
        return f"{self.prefix}/acme/hosts/{host}"

    def challenge(self, kind: Kind, ident: str) -> str:
        return f"{self.prefix}/acme/{kind}/{ident}"

    def acks(self, kind: Kind, ident: str) -> str:
        """The prefix of a challenge's acknowledgements."""
        return f"{self.prefix}/acme/acks/{kind}/{ident}/"

    def ack(self, kind: Kind, ident: str, host: str) -> str:
        return self.acks(kind, ident) + host


def encode_record(cert_pem: str, key_pem: str, meta: Meta) -> str:
    """The value of `P/certs/<name>`: cert and key empty for a name that only failed so far."""
    return json.dumps({"cert": cert_pem, "key": key_pem, "meta": asdict(meta)})


def decode_record(name: str, raw: bytes) -> tuple[Stored | None, Meta | None]:
    """(the certificate, if whole; its meta) of a record; (None, None) if unreadable. A key
    that does not match its certificate is refused, as the file store refuses it."""
    try:
        data = json.loads(raw)
        meta = Meta.from_json(json.dumps(data["meta"]))
        cert_pem, key_pem = str(data.get("cert", "")), str(data.get("key", ""))
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("wharf: the cluster's record of %s cannot be read (%s); ignoring it",
                    name, exc)
        return None, None
    if not cert_pem:
        return None, meta
    try:
        issuer, not_before, not_after, serial = describe(cert_pem)
    except ValueError:
        return None, meta
    if serial != meta.serial or not key_matches(cert_pem, key_pem):
        log.warning("wharf: the cluster's record of %s holds a certificate and key that do "
                    "not belong together; ignoring it", name)
        return None, meta
    meta = replace(meta, issuer=issuer, not_before=not_before, not_after=not_after)
    return Stored(name, cert_pem, key_pem, meta), meta


@dataclass(frozen=True, slots=True)
class Changed:
    """What one event changed in the view."""

    cert: str = ""  # a name whose record changed
    lock: str = ""  # a name whose lock came or went
    challenges: bool = False  # the challenges to serve
    acks: bool = False  # the acknowledgements or the hosts


@dataclass
class View:
    """The cluster's certificate keys as the watch has shown them."""

    keys: Keys
    records: dict[str, bytes] = field(default_factory=dict)
    locks: dict[str, int] = field(default_factory=dict)  # name -> the lock's lease
    hosts: set[str] = field(default_factory=set)
    challenges: dict[tuple[Kind, str], bytes] = field(default_factory=dict)
    acked: dict[tuple[Kind, str], set[str]] = field(default_factory=dict)
    _lock_revision: dict[str, int] = field(default_factory=dict)

    def apply(self, kind: str, key: str, value: bytes, lease: int, revision: int) -> Changed:
        """Take one event (`kind` "put" or "delete") of a key under the prefix."""
        rest = key[len(self.keys.prefix) + 1:] if key.startswith(self.keys.prefix + "/") \
            else ""
        parts = rest.split("/")
        put = kind == "put"
        if len(parts) == 2 and parts[0] == "certs" and storable(parts[1]):
            if put:
                self.records[parts[1]] = value
            else:
                self.records.pop(parts[1], None)
            return Changed(cert=parts[1])
        if len(parts) == 3 and parts[:2] == ["locks", "certs"]:
            self._lock_revision[parts[2]] = revision
            if put:
                self.locks[parts[2]] = lease
            else:
                self.locks.pop(parts[2], None)
            return Changed(lock=parts[2])
        if len(parts) < 3 or parts[0] != "acme":
            return Changed()
        if len(parts) == 3 and parts[1] == "hosts":
            (self.hosts.add if put else self.hosts.discard)(parts[2])
            return Changed(acks=True)
        if len(parts) == 3 and parts[1] in KINDS:
            ident: tuple[Kind, str] = (parts[1], parts[2])
            if put:
                self.challenges[ident] = value
            else:
                self.challenges.pop(ident, None)
            return Changed(challenges=True)
        if len(parts) == 5 and parts[1] == "acks" and parts[2] in KINDS:
            ack: tuple[Kind, str] = (parts[2], parts[3])
            hosts = self.acked.setdefault(ack, set())
            (hosts.add if put else hosts.discard)(parts[4])
            if not hosts:
                del self.acked[ack]
            return Changed(acks=True)
        return Changed()

    def learned(self, name: str, lease: int, revision: int) -> bool:
        """A lock read outside the watch (after a failed claim); taken, and True, only if the
        watch has applied nothing newer for that name."""
        if revision <= self._lock_revision.get(name, 0):
            return False
        self._lock_revision[name] = revision
        self.locks[name] = lease
        return True

    def locked(self, name: str, mine: set[int]) -> bool:
        """True if another order holds `name`'s lock (one not on a lease of `mine`)."""
        lease = self.locks.get(name)
        return lease is not None and lease not in mine

    def acked_by_all(self, kind: Kind, ident: str) -> bool:
        """True once every host serving challenges has acknowledged this one."""
        return self.hosts <= self.acked.get((kind, ident), set())

    def http01(self) -> list[tuple[str, str]]:
        """(token, key authorization) of every HTTP-01 challenge in the cluster."""
        return [(ident, value.decode()) for (kind, ident), value in self.challenges.items()
                if kind == "http01"]

    def alpn01(self) -> list[tuple[str, str, str]]:
        """(name, certificate PEM, key PEM) of every TLS-ALPN-01 challenge in the cluster."""
        found = []
        for (kind, ident), value in self.challenges.items():
            if kind == "alpn01":
                try:
                    data = json.loads(value)
                    found.append((ident, str(data["cert"]), str(data["key"])))
                except (ValueError, KeyError, TypeError):
                    continue
        return found
