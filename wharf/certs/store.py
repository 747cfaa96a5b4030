"""Certificates on disk, in the state directory: `certs/<name>/{cert.pem,key.pem,meta.json}`.

Directories are 0700 and private keys 0600. Every file is written to a temporary file in the
same directory, flushed and renamed over the old one, so a reader sees the old file or the
new one, never half of one. The three files of a name are renamed one after the other (key,
certificate, then meta): a crash between two renames leaves a key that does not match its
certificate, or a meta with another serial, and `load` treats such a pair as absent (the
manager then orders a new certificate) rather than serving it. The meta file may exist alone:
it records the failures of a name that never got a certificate, so that a restarted daemon
keeps backing off instead of asking the CA again at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger("wharf.certs")

Source = Literal["acme", "local"]

# A host name as a directory name: no `/`, no `..`, no leading dot (the manager's own
# directories, such as `.local-ca`, start with one).
_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?$")


def storable(name: str) -> bool:
    """True if `name` can be a directory of the store."""
    return bool(_NAME.match(name)) and ".." not in name


@dataclass(frozen=True, slots=True)
class Meta:
    """What `meta.json` says of a name's certificate and of the tries to renew it."""

    source: Source
    issuer: str = ""
    not_before: float | None = None  # seconds since the epoch
    not_after: float | None = None
    serial: str = ""  # hex, as `openssl x509 -serial` prints it
    order_url: str = ""
    next_renewal: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    failures: int = 0  # failed tries in a row

    def to_json(self) -> str:
        """The meta as JSON text."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Meta:
        """Parse `meta.json`; unknown keys are ignored (a newer Wharf may add some)."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class Stored:
    """A name's certificate chain (PEM, leaf first), its key (PEM) and its meta."""

    name: str
    cert_pem: str
    key_pem: str
    meta: Meta


def describe(cert_pem: str) -> tuple[str, float, float, str]:
    """(issuer, not_before, not_after, serial hex) of the first certificate of a PEM chain."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    issuer = cert.issuer.rfc4514_string()
    return (issuer, cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(),
            f"{cert.serial_number:X}")


def key_matches(cert_pem: str, key_pem: str) -> bool:
    """True if `key_pem` is the private key of the first certificate of `cert_pem`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except ValueError:
        return False
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(serialization.Encoding.DER, raw)
                == key.public_key().public_bytes(serialization.Encoding.DER, raw))


def write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `path` atomically with `mode`, its directory made 0700 if missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class CertStore:
    """The `certs/` directory of a state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "certs"

    def __repr__(self) -> str:
        return f"<CertStore {self.root}>"

    def path(self, name: str) -> Path:
        """The directory of a name."""
        assert storable(name), name
        return self.root / name

    def ensure_root(self) -> None:
        """Create `certs/` (0700), and make it 0700 if it exists."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)

    def names(self) -> list[str]:
        """Every name with a directory in the store, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and storable(p.name))

    def load_meta(self, name: str) -> Meta | None:
        """The meta of a name, or None if it has none (or one that cannot be read)."""
        try:
            return Meta.from_json((self.path(name) / "meta.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("wharf: certs/%s/meta.json cannot be read (%s); ignoring it", name, exc)
            return None

    def load(self, name: str) -> Stored | None:
        """The certificate of a name, or None if there is none whole: missing files, a key
        that does not match, or a meta of another certificate (a write cut short)."""
        meta = self.load_meta(name)
        directory = self.path(name)
        try:
            cert_pem = (directory / "cert.pem").read_text()
            key_pem = (directory / "key.pem").read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("wharf: certs/%s cannot be read (%s)", name, exc)
            return None
        try:
            issuer, not_before, not_after, serial = describe(cert_pem)
        except ValueError:
            log.warning("wharf: certs/%s/cert.pem is not a PEM certificate; ignoring it", name)
            return None
        if meta is None or meta.serial != serial or not key_matches(cert_pem, key_pem):
            log.warning("wharf: certs/%s holds a certificate, key and meta that do not belong "
                        "together (a write was cut short?); a new certificate will be made",
                        name)
            return None
        return Stored(name, cert_pem, key_pem, replace(
            meta, issuer=issuer, not_before=not_before, not_after=not_after))

    def save(self, name: str, cert_pem: str, key_pem: str, meta: Meta) -> Stored:
        """Store a new certificate and key for a name; the meta's validity, issuer and serial
        are read from the certificate, its failures cleared."""
        issuer, not_before, not_after, serial = describe(cert_pem)
        meta = replace(meta, issuer=issuer, not_before=not_before, not_after=not_after,
                       serial=serial, last_error="", last_error_at=None, failures=0)
        self.ensure_root()
        directory = self.path(name)
        directory.mkdir(exist_ok=True, mode=0o700)
        write_private(directory / "key.pem", key_pem)
        write_private(directory / "cert.pem", cert_pem, 0o644)
        write_private(directory / "meta.json", meta.to_json(), 0o644)
        return Stored(name, cert_pem, key_pem, meta)

    def save_meta(self, name: str, meta: Meta) -> None:
        """Replace the meta of a name (a failure, the next renewal time)."""
        self.ensure_root()
        write_private(self.path(name) / "meta.json", meta.to_json(), 0o644)


def meta_fields(meta: Meta) -> dict[str, Any]:
    """The meta as a dict, for `wharf certs --json`."""
    return asdict(meta)
