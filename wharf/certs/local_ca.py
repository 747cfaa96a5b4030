"""A certificate authority of Wharf's own (`[tls] local_ca = true`), as Caddy's `tls internal`.

The CA (ECDSA P-256, ten years) is made once, at `certs/.local-ca/{ca.pem,ca.key}` in the state
directory, and kept: the user trusts it once (`wharf certs --ca` prints it). It signs short-lived
leaves (LEAF_LIFETIME) for each name directly, without Caddy's intermediate: one certificate
fewer to send, and the CA's key never leaves the daemon anyway. Leaves are renewed by the same
rule as ACME certificates (a third of the lifetime left). `localhost` also covers 127.0.0.1
and ::1, so `curl https://127.0.0.1:8443` verifies against the CA too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wharf.certs.store import write_private

CA_LIFETIME = dt.timedelta(days=3650)
LEAF_LIFETIME = dt.timedelta(days=7)  # Caddy's internal leaves last 12 h; a week is gentler
BACKDATE = dt.timedelta(minutes=5)  # a client whose clock is a little behind still accepts
LOOPBACK_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
DIR = ".local-ca"


@dataclass(frozen=True, slots=True)
class Issued:
    """A leaf from the local CA: certificate PEM and key PEM."""

    cert_pem: str
    key_pem: str


def new_key() -> ec.EllipticCurvePrivateKey:
    """An ECDSA P-256 key, the kind every certificate of Wharf's has."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def cert_pem(cert: x509.Certificate) -> str:
    """A certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class LocalCa:
    """The CA in `<state_dir>/certs/.local-ca`, created on first use."""

    def __init__(self, certs_dir: Path) -> None:
        self.dir = certs_dir / DIR
        self._cert: x509.Certificate | None = None
        self._key: ec.EllipticCurvePrivateKey | None = None

    def __repr__(self) -> str:
        return f"<LocalCa {self.dir} loaded={self._cert is not None}>"

    def load_or_create(self, now: dt.datetime | None = None) -> None:
        """Read the CA, or make it if there is none yet."""
        if self._cert is not None:
            return
        cert_file, key_file = self.dir / "ca.pem", self.dir / "ca.key"
        if cert_file.exists() and key_file.exists():
            self._cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._key = key
            return
        now = now or dt.datetime.now(dt.UTC)
        key = new_key()
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wharf local CA"),
            x509.NameAttribute(NameOID.COMMON_NAME,
                               f"Wharf local CA {socket.gethostname()[:40]} {now:%Y-%m-%d}")])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE).not_valid_after(now + CA_LIFETIME)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        write_private(key_file, key_pem(key))
        write_private(cert_file, cert_pem(cert), 0o644)
        self._cert, self._key = cert, key

    @property
    def ca_pem(self) -> str:
        """The CA certificate, to trust."""
        self.load_or_create()
        assert self._cert is not None
        return cert_pem(self._cert)

    def issue(self, name: str, now: dt.datetime | None = None,
              lifetime: dt.timedelta = LEAF_LIFETIME) -> Issued:
        """A new leaf for `name` (with the loopback addresses for `localhost`)."""
        self.load_or_create()
        assert self._cert is not None and self._key is not None
        now = now or dt.datetime.now(dt.UTC)
        key = new_key()
        sans: list[x509.GeneralName] = [x509.DNSName(name)]
        if name == "localhost":
            sans += [x509.IPAddress(ip) for ip in LOOPBACK_IPS]
        ca_ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(self._cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - BACKDATE).not_valid_after(now + lifetime)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=False, crl_sign=False,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    ca_ski.value), critical=False)
                .sign(self._key, hashes.SHA256()))
        return Issued(cert_pem(cert), key_pem(key))  # the root is trusted, not sent
