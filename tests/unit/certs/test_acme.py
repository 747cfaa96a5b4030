"""The parts of the ACME client that need no CA: the TLS-ALPN-01 certificate, error text."""

from __future__ import annotations

import hashlib

import requests
from acme import messages
from cryptography import x509

from wharf.certs.acme import ACME_IDENTIFIER, alpn_certificate, describe_error


def test_the_tls_alpn_01_certificate_carries_the_key_authorization_digest():
    cert_pem, _ = alpn_certificate("a.example", "token.thumb")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER)
    assert ext.critical
    assert ext.value.value == b"\x04\x20" + hashlib.sha256(b"token.thumb").digest()
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["a.example"]


def test_errors_read_as_one_line():
    down = requests.exceptions.ConnectionError("Max retries exceeded\nwith url")
    assert describe_error(down) == "cannot reach the CA: Max retries exceeded"
    refused = messages.Error(typ="urn:ietf:params:acme:error:rejectedIdentifier",
                             detail="no such name")
    assert describe_error(refused) == "the CA refused: no such name"
