"""The ACME client (RFC 8555), on certbot's `acme` library: synchronous, requests-based, so
the manager runs every call here in a thread of its own, never on the daemon's loop.

One order per name: a failure of one name (its DNS, its route) never holds back another, a
renewal replaces one certificate, and the rate limits (`renewal`) count simple units. Let's
Encrypt allows 300 new orders per three hours per account: far above what one machine needs.

The account key (ECDSA P-256, JWS ES256) is made once per directory URL and kept, 0600, at
`certs/.acme/<hash of the directory>/account.key` (in a cluster the manager hands in the key
etcd holds instead: `adopt_key`). The account itself is looked up (or made)
once per daemon run with that key: newAccount with a known key returns the existing account,
so a CA that lost its accounts (Pebble restarted) gets a new one without any state of ours.

The library's own polling sleeps with `time.sleep` for up to 90 s; here every wait is on the
manager's stop event, so a daemon that shuts down cancels an order within one HTTP request's
timeout (NETWORK_TIMEOUT). Challenges (HTTP-01, TLS-ALPN-01) are offered to the manager, which
puts them into the snapshot and returns once the proxy workers serve it (`offer`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wharf.certs.local_ca import cert_pem, key_pem, new_key
from wharf.certs.offers import Offer, Stopped
from wharf.certs.store import write_private
from wharf.config.tls import AcmeConfig

log = logging.getLogger("wharf.certs")

NETWORK_TIMEOUT = 15  # seconds per HTTP request to the CA
ORDER_TIMEOUT = 120.0  # seconds for one order, from newOrder to the certificate
POLL_INTERVAL = 0.5  # seconds between polls of an authorization or an order
USER_AGENT = "wharf (+acme-python)"
# RFC 8737: the acmeIdentifier extension of a TLS-ALPN-01 challenge certificate.
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


@dataclass(frozen=True, slots=True)
class Order:
    """What an order brought: the chain (PEM, leaf first), its key, and the order's URL."""

    cert_pem: str
    key_pem: str
    url: str


def alpn_certificate(name: str, key_authorization: str) -> tuple[str, str]:
    """The self-signed TLS-ALPN-01 certificate for `name` (RFC 8737): SAN `name` and the
    critical acmeIdentifier extension holding SHA-256 of the key authorization. (acme 4
    dropped its helper for this.)"""
    key = new_key()
    digest = hashlib.sha256(key_authorization.encode()).digest()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return cert_pem(cert), key_pem(key)


def describe_error(exc: BaseException) -> str:
    """An ACME failure as one line for `wharf certs` and `wharf status`."""
    if isinstance(exc, errors.ValidationError):
        details = [f"{a.body.identifier.value}: {c.error.detail or c.error.typ}"
                   for a in exc.failed_authzrs for c in a.body.challenges if c.error]
        return "validation failed: " + "; ".join(details)
    if isinstance(exc, messages.Error):
        return f"the CA refused: {exc.detail or exc.typ}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"cannot verify the CA's certificate (set tls.acme.ca_bundle?): {exc}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot reach the CA: {_first_line(exc)}"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the CA did not answer in time"
    if isinstance(exc, errors.TimeoutError | TimeoutError):
        return "the order did not complete in time"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _typ(challb: messages.ChallengeBody) -> str:
    """A challenge's type, also for those the library no longer knows (tls-alpn-01)."""
    chall = challb.chall
    if isinstance(chall, challenges.UnrecognizedChallenge):
        return str(chall.jobj.get("type", ""))
    return str(chall.typ)


class _TlsAlpn01Response(challenges.KeyAuthorizationChallengeResponse):
    """The answer to a TLS-ALPN-01 challenge: an empty JSON object, as for HTTP-01."""

    typ = "tls-alpn-01"


class AcmeClient:
    """An account at one ACME directory, and the orders it makes (blocking calls)."""

    def __init__(self, config: AcmeConfig, certs_dir: Path, stop: threading.Event) -> None:
        self.config = config
        self._stop = stop
        digest = hashlib.sha256(config.directory.encode()).hexdigest()[:16]
        self.account_dir = certs_dir / ".acme" / digest
        self._client: client.ClientV2 | None = None
        self._key: jose.JWKEC | None = None
        self._adopted = ""  # the PEM of a key handed in (a cluster's, from etcd)

    def __repr__(self) -> str:
        return f"<AcmeClient {self.config.directory} connected={self._client is not None}>"

    def account_key(self) -> jose.JWKEC:
        """The account key, made and stored (0600) on first use."""
        if self._key is None:
            path = self.account_dir / "account.key"
            if path.exists():
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                assert isinstance(key, ec.EllipticCurvePrivateKey)
            else:
                key = new_key()
                write_private(path, key_pem(key))
                write_private(self.account_dir / "directory.txt", self.config.directory + "\n",
                              0o644)
            self._key = jose.JWKEC(key=key)
        return self._key

    def adopt_key(self, pem: str) -> None:
        """Use this account key instead of the state directory's (in a cluster every host
        orders with the one key etcd holds)."""
        if pem == self._adopted:
            return
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key, self._adopted, self._client = jose.JWKEC(key=key), pem, None

    def _connect(self) -> client.ClientV2:
        """The directory, and the account registered (or found) with our key."""
        if self._client is not None:
            return self._client
        verify: Any = str(self.config.ca_bundle) if self.config.ca_bundle else True
        net = client.ClientNetwork(self.account_key(), alg=jose.ES256, verify_ssl=verify,
                                   user_agent=USER_AGENT, timeout=NETWORK_TIMEOUT)
        directory = client.ClientV2.get_directory(self.config.directory, net)
        acme = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(
            email=self.config.email, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as exc:  # the key has an account: use it
            net.account = messages.RegistrationResource(uri=exc.location,
                                                        body=messages.Registration())
        self._client = acme
        return acme

    def forget_account(self) -> None:
        """Look the account up again at the next order (after an error that may mean the CA
        no longer knows it)."""
        self._client = None

    def obtain(self, name: str, offer: Callable[[Offer | None], None]) -> Order:
        """Order a certificate for `name`, answering its challenge through `offer` (called
        with None to withdraw it). Blocks; raises the library's errors, or Stopped."""
        acme = self._connect()
        key = new_key()
        csr = crypto_util.make_csr(key_pem(key).encode(), [name])
        deadline = dt.datetime.now() + dt.timedelta(seconds=ORDER_TIMEOUT)
        order = acme.new_order(csr)
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # the CA remembers a recent validation
                self._answer(acme, authz, name, offer)
                self._poll(acme, authz, deadline)
        finally:
            offer(None)
        order = acme.begin_finalization(order)
        order = acme.poll_finalization(order, deadline)
        return Order(order.fullchain_pem, key_pem(key), order.uri or "")

    def _answer(self, acme: client.ClientV2, authz: messages.AuthorizationResource, name: str,
                offer: Callable[[Offer | None], None]) -> None:
        wanted = self.config.challenge
        challb = next((c for c in authz.body.challenges if _typ(c) == wanted), None)
        if challb is None:
            offered = ", ".join(_typ(c) for c in authz.body.challenges)
            raise errors.Error(f"the CA offers no {wanted} challenge for {name} ({offered})")
        token = challb.chall.jobj["token"] if wanted == "tls-alpn-01" else \
            challb.chall.encode("token")
        thumbprint = jose.b64encode(self.account_key().public_key().thumbprint(
            hash_function=hashes.SHA256)).decode()
        key_authorization = f"{token}.{thumbprint}"
        if wanted == "http-01":
            offer(Offer(name, token=token, key_authorization=key_authorization))
            response: challenges.ChallengeResponse = challenges.HTTP01Response(
                key_authorization=key_authorization)
        else:
            cert, key = alpn_certificate(name, key_authorization)
            offer(Offer(name, alpn_cert_pem=cert, alpn_key_pem=key))
            response = _TlsAlpn01Response(key_authorization=key_authorization)
        self._check_stop()
        acme.answer_challenge(challb, response)

    def _poll(self, acme: client.ClientV2, authz: messages.AuthorizationResource,
              deadline: dt.datetime) -> None:
        while True:
            self._check_stop()
            updated, _ = acme.poll(authz)
            status = updated.body.status
            if status == messages.STATUS_VALID:
                return
            if status != messages.STATUS_PENDING:
                raise errors.ValidationError([updated])
            if dt.datetime.now() > deadline:
                raise errors.TimeoutError()
            self._stop.wait(POLL_INTERVAL)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Stopped()
