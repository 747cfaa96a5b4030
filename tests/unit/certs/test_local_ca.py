"""The local CA: made once, kept, and signing leaves that verify against it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from wharf.certs.local_ca import LEAF_LIFETIME, LocalCa


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_the_ca_is_made_once_and_kept(tmp_path: Path):
    first = LocalCa(tmp_path).ca_pem
    assert LocalCa(tmp_path).ca_pem == first


def test_the_ca_key_is_private(tmp_path: Path):
    ca = LocalCa(tmp_path)
    ca.load_or_create()
    assert stat.S_IMODE((ca.dir / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.dir.stat().st_mode) == 0o700


def test_the_ca_is_an_ecdsa_p256_ca(tmp_path: Path):
    ca = _cert(LocalCa(tmp_path).ca_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_a_leaf_is_signed_by_the_ca_for_its_name(tmp_path: Path):
    ca = LocalCa(tmp_path)
    leaf = _cert(ca.issue("app.example").cert_pem)
    leaf.verify_directly_issued_by(_cert(ca.ca_pem))
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.example"]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_localhost_also_covers_the_loopback_addresses(tmp_path: Path):
    leaf = _cert(LocalCa(tmp_path).issue("localhost").cert_pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]


def test_leaves_are_short_lived(tmp_path: Path):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    leaf = _cert(LocalCa(tmp_path).issue("a.example", now=now).cert_pem)
    assert leaf.not_valid_after_utc == now + LEAF_LIFETIME


def test_a_leaf_verifies_in_a_tls_client(tmp_path: Path):
    import ssl

    ca = LocalCa(tmp_path)
    issued = ca.issue("localhost")
    (tmp_path / "c.pem").write_text(issued.cert_pem)
    (tmp_path / "k.pem").write_text(issued.key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client = ssl.create_default_context(cadata=ca.ca_pem)
    a, b = ssl.MemoryBIO(), ssl.MemoryBIO()
    c, d = ssl.MemoryBIO(), ssl.MemoryBIO()
    cs = client.wrap_bio(a, b, server_hostname="localhost")
    ss = server.wrap_bio(c, d, server_side=True)
    for _ in range(10):
        for side in (cs, ss):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        c.write(b.read())
        a.write(d.read())
    assert cs.version() in ("TLSv1.2", "TLSv1.3")
