"""Certificates made on the spot, for tests and benchmarks: a throwaway CA and its leaves."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class TestCA:
    """A self-signed ECDSA P-256 CA that issues leaf certificates (clients trust `cert_pem`)."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str = "Wharf Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, names: list[str], valid_for: datetime.timedelta = 90 * DAY,
              common_name: str | None = None, san: bool = True) -> tuple[str, str]:
        """(chain PEM, key PEM) of a leaf for `names` (DNS names or IP addresses) that
        ends `valid_for` from now (negative: already expired)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                common_name or (names[0] if names else "x"))])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(min(now - DAY, now + valid_for - DAY))
                   .not_valid_after(now + valid_for))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [_general_name(n) for n in names]), False)
        cert = builder.sign(self.key, hashes.SHA256())
        chain = cert.public_bytes(serialization.Encoding.PEM).decode() + self.cert_pem
        return chain, _pem_key(key)

    def write(self, directory: Path, stem: str, names: list[str],
              valid_for: datetime.timedelta = 90 * DAY) -> tuple[Path, Path]:
        """Issue a leaf and write it as STEM.pem and STEM.key (0600) in `directory`."""
        chain, key = self.issue(names, valid_for)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_text(chain)
        key_path.touch(mode=0o600)
        key_path.write_text(key)
        return cert_path, key_path

    def write_ca(self, path: Path) -> Path:
        """The CA certificate as a PEM file, for clients to trust."""
        path.write_text(self.cert_pem)
        return path


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
