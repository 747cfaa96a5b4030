"""Certificates from files (`[tls] certificates`): read, checked and kept by the config loader.

Each entry is a PEM chain (leaf first) and its PEM private key. The names it is served for
come from the leaf itself: its DNS subject alternative names, exact or `*.` wildcard (and IP
SANs, for the HTTP redirect), or its common name only when it has no SAN, as browsers read it.
Every problem goes to the loader's one-pass list with its key path; one that does not stop
Wharf (a certificate that expires within a week) goes to the warnings.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from wharf.config.schema import failed
from wharf.config.tls import CertificateFiles, LoadedCertificate, TlsConfig
from wharf.errors import Problem

# A certificate this close to its end is worth a warning at every `check` and `up`: Let's
# Encrypt sends its expiry mails from 20 days, and certbot renews at 30; a week leaves time.
EXPIRY_WARNING = 7 * 86400.0


def resolve_tls(tls: TlsConfig, base: Path) -> TlsConfig:
    """The `[tls]` table with its file paths made absolute (relative to the config file)."""
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    certificates = tuple(CertificateFiles(absolute(c.cert), absolute(c.key))
                         for c in tls.certificates)
    acme = tls.acme
    if acme is not None and acme.ca_bundle is not None:
        acme = replace(acme, ca_bundle=absolute(acme.ca_bundle))
    return replace(tls, certificates=certificates, acme=acme)


def check_tls(tls: TlsConfig | None, listen_tls: tuple[tuple[str, int], ...],
              problems: list[Problem], warnings: list[Problem],
              now: float | None = None) -> tuple[LoadedCertificate, ...]:
    """Read every file certificate of `tls` (paths already absolute); append what is wrong
    to `problems` and what expires soon to `warnings`. Returns the certificates read."""
    now = time.time() if now is None else now
    loaded = []
    for index, files in enumerate(tls.certificates if tls else ()):
        key = f"tls.certificates[{index}]"
        if failed(problems, key):  # a missing path stands in as "", the config's directory
            continue
        cert = load_certificate(files, key, problems, warnings, now)
        if cert is not None:
            loaded.append(cert)
    sources = tls is not None and (tls.certificates or tls.acme or tls.local_ca)
    if listen_tls and not sources:
        problems.append(Problem("proxy.listen_tls", "needs a certificate source: add "
                                "[tls] certificates, acme or local_ca"))
    if tls is not None and tls.certificates and not listen_tls:
        warnings.append(Problem("tls.certificates", "no proxy.listen_tls: the certificates "
                                "are not served"))
    return tuple(loaded)


def load_certificate(files: CertificateFiles, key: str, problems: list[Problem],
                     warnings: list[Problem], now: float) -> LoadedCertificate | None:
    """One certificate and its key, or None after appending why not."""
    cert_text = _read(files.cert, f"{key}.cert", problems)
    key_text = _read(files.key, f"{key}.key", problems)
    if cert_text is None or key_text is None:
        return None
    try:
        chain = x509.load_pem_x509_certificates(cert_text.encode())
    except ValueError:
        problems.append(Problem(f"{key}.cert", f"{files.cert} holds no PEM certificate"))
        return None
    try:
        private = serialization.load_pem_private_key(key_text.encode(), password=None)
    except TypeError:
        problems.append(Problem(f"{key}.key", f"{files.key} is encrypted: Wharf needs the "
                                "key without a passphrase (openssl pkey -in KEY -out KEY2)"))
        return None
    except (ValueError, UnsupportedAlgorithm):
        problems.append(Problem(f"{key}.key", f"{files.key} holds no PEM private key"))
        return None
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        problems.append(Problem(f"{key}.key", f"{files.key} is not the key of the "
                                f"certificate in {files.cert}"))
        return None
    names = certificate_names(leaf)
    if not names:
        problems.append(Problem(f"{key}.cert", f"{files.cert} names no host (no DNS "
                                "subject alternative name, no common name)"))
        return None
    not_after = leaf.not_valid_after_utc.timestamp()
    if not_after <= now:
        problems.append(Problem(f"{key}.cert", f"{files.cert} expired on {_day(not_after)}: "
                                "renew it (or let [tls] acme get one)"))
        return None
    if not_after - now < EXPIRY_WARNING:
        days = (not_after - now) / 86400
        warnings.append(Problem(f"{key}.cert", f"{files.cert} expires in {days:.1f} days "
                                f"({_day(not_after)}): renew it"))
    return LoadedCertificate(cert_path=files.cert, names=names, not_after=not_after,
                             issuer=leaf.issuer.rfc4514_string(), cert_pem=cert_text,
                             key_pem=key_text)


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The names a certificate serves, lower case, in its own order, without repeats."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        found = [str(a.value) for a in common[:1]]
    else:
        found = san.get_values_for_type(x509.DNSName)
        found += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(dict.fromkeys(n.lower().rstrip(".") for n in found if n))


def _read(path: Path, key: str, problems: list[Problem]) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        problems.append(Problem(key, f"no such file: {path}"))
    except IsADirectoryError:
        problems.append(Problem(key, f"is a directory, not a PEM file: {path}"))
    except PermissionError:
        problems.append(Problem(key, f"cannot be read (permission denied): {path}"))
    except OSError as exc:
        problems.append(Problem(key, f"cannot be read ({exc.strerror}): {path}"))
    except UnicodeDecodeError:
        problems.append(Problem(key, f"is not a PEM file (binary data; DER? convert it with "
                                f"openssl x509 -inform der): {path}"))
    return None


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
