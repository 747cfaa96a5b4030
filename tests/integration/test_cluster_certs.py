"""Certificates in a cluster, with real Pebble and real etcd: two Wharf daemons on 127.0.0.1
share one `[cluster]` prefix and one route host. Only host A listens on Pebble's HTTP-01 port
(a second daemon cannot bind a port the first holds: `up` checks its ports before starting),
so an order made by host B is validated by A serving B's token from etcd. Each host also has
a plain and a TLS port of its own, on which the test looks at it alone."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import PY, Wharf, pid_alive, wait_until
from tests.integration.etcd_server import EtcdServer
from tests.integration.pebble import Pebble, free_port
from wharf.clients.etcd import Etcd

HOST = "shared.wharf.test"
ORDERING = re.compile(rf"ordering a certificate for {re.escape(HOST)}\b")

CONFIG = """
[proxy]
listen = [{listen}]
listen_tls = ["127.0.0.1:{tls}"]

[tls]
acme = {{ email = "ops@example.com", directory = "{directory}", ca_bundle = "{ca}" }}

[cluster]
etcd = ["{etcd}"]
name = "{name}"
ttl = "3s"
prefix = "{prefix}"

[[routes]]
host = "{host}"
servers = ["127.0.0.1:9"]
"""


class Host:
    """One Wharf daemon of the cluster, with its own plain and TLS ports."""

    def __init__(self, root: Path, name: str) -> None:
        root.mkdir()
        self.wharf = Wharf(root)
        self.name = name
        self.http, self.tls = free_port(), free_port()
        self.leftovers: list[int] = []

    def configure(self, pebble: Pebble, etcd: EtcdServer, prefix: str,
                  validates: bool) -> None:
        ports = [pebble.http_port, self.http] if validates else [self.http]
        self.wharf.write_config(CONFIG.format(
            listen=", ".join(f'"127.0.0.1:{p}"' for p in ports), tls=self.tls,
            directory=pebble.directory, ca=pebble.api_ca, etcd=etcd.url, name=self.name,
            prefix=prefix, host=HOST))

    def orders(self) -> int:
        """How many ACME orders this daemon started for HOST (its log says each)."""
        return len(ORDERING.findall(self.wharf.daemon_log.read_text()))

    def serial(self, pebble: Pebble) -> str:
        """The serial of the certificate a handshake on this host's TLS port gets ("" if
        none verifies yet)."""
        from cryptography import x509

        context = ssl.create_default_context(cafile=str(pebble.root))
        try:
            with socket.create_connection(("127.0.0.1", self.tls), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname=HOST) as conn:
                der = conn.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError):
            return ""
        assert der is not None
        return f"{x509.load_der_x509_certificate(der).serial_number:X}"

    def challenge(self, token: str) -> tuple[int, bytes]:
        """GET the HTTP-01 path of `token` on this host's own plain port."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=5)
        try:
            conn.request("GET", f"/.well-known/acme-challenge/{token}",
                         headers={"Host": HOST})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def kill_9(self) -> None:
        """The host dies: SIGKILL to the daemon and to every process it started."""
        daemon = self.wharf.daemon
        assert daemon is not None
        self.leftovers = [p.pid for p in psutil.Process(daemon.pid).children(recursive=True)]
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        for pid in self.leftovers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        self.wharf.close()
        for pid in self.leftovers:
            if pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def etcd_call(etcd: EtcdServer, work):  # type: ignore[no-untyped-def]
    """Run `work(client)` against etcd and give its result."""
    return asyncio.run(work(Etcd([etcd.url])))


@pytest.fixture
def hosts(tmp_path: Path, pebble: Pebble, etcd: EtcdServer,
          etcd_prefix: str) -> Iterator[tuple[Host, Host]]:
    """Two daemons of one cluster (A holds the validation port), started one right after
    the other, once both serve one certificate."""
    a, b = Host(tmp_path / "a", "host-a"), Host(tmp_path / "b", "host-b")
    try:
        a.configure(pebble, etcd, etcd_prefix, validates=True)
        b.configure(pebble, etcd, etcd_prefix, validates=False)
        a.wharf.up()
        b.wharf.up()
        wait_until(lambda: a.serial(pebble) and a.serial(pebble) == b.serial(pebble),
                   timeout=60, message="both hosts to serve one certificate")
        yield a, b
    finally:
        a.close()
        b.close()


def cert_row(h: Host) -> dict:
    result = h.wharf.run("certs", "--json")
    assert result.returncode == 0, result.stderr
    return next(r for r in json.loads(result.stdout) if r["name"] == HOST)


def test_two_hosts_order_one_certificate_with_one_account_and_serve_it_both(
        hosts: tuple[Host, Host], pebble: Pebble, etcd: EtcdServer, etcd_prefix: str):
    a, b = hosts
    assert a.orders() + b.orders() == 1
    assert cert_row(a)["serial"] == cert_row(b)["serial"] == a.serial(pebble)

    async def keys(client: Etcd) -> list[str]:
        return [kv.key for kv in (await client.get_prefix(etcd_prefix + "/"))[1]]

    stored = etcd_call(etcd, keys)
    assert f"{etcd_prefix}/certs/{HOST}" in stored
    assert len([k for k in stored if k.startswith(f"{etcd_prefix}/acme/account/")]) == 1
    assert not [k for k in stored if "/locks/" in k or "/http01/" in k]  # released after
    for h in hosts:  # the account key is in etcd only; the certificate is cached on disk
        state = h.wharf.root / ".wharf" / "certs"
        assert not (state / ".acme").exists()
        assert (state / HOST / "cert.pem").exists()


def test_a_challenge_put_in_etcd_is_served_by_every_host(
        hosts: tuple[Host, Host], etcd: EtcdServer, etcd_prefix: str):
    token = "t0k3n-from-another-host"

    async def put(client: Etcd) -> None:
        await client.put(f"{etcd_prefix}/acme/http01/{token}", f"{token}.thumbprint")

    etcd_call(etcd, put)
    for h in hosts:
        wait_until(lambda h=h: h.challenge(token)[0] == 200,  # type: ignore[misc]
                   message=f"{h.name} to serve the token")
        assert h.challenge(token) == (200, f"{token}.thumbprint".encode())

    async def delete(client: Etcd) -> None:
        await client.delete(f"{etcd_prefix}/acme/http01/{token}")

    etcd_call(etcd, delete)
    for h in hosts:
        wait_until(lambda h=h: h.challenge(token)[0] == 404,  # type: ignore[misc]
                   message=f"{h.name} to forget the token")


def renew(h: Host, pebble: Pebble, old: str) -> str:
    """`wharf certs --renew` on a host; the new serial, once that host serves it."""
    renewed = h.wharf.run("certs", "--renew", HOST)
    assert renewed.returncode == 0, renewed.stderr
    new: str = cert_row(h)["serial"]
    assert new != old
    wait_until(lambda: h.serial(pebble) == new, message=f"{h.name} to serve the new one")
    return new


def test_the_host_without_the_validation_port_renews_as_the_other_serves_its_token(
        hosts: tuple[Host, Host], pebble: Pebble):
    a, b = hosts
    before = b.orders()
    new = renew(b, pebble, a.serial(pebble))
    assert b.orders() == before + 1
    wait_until(lambda: a.serial(pebble) == new, message="host-a to load the new certificate")
    assert cert_row(a)["serial"] == new


def test_when_the_holder_dies_during_a_renewal_the_other_renews_after_its_lease(
        hosts: tuple[Host, Host], pebble: Pebble, etcd: EtcdServer, etcd_prefix: str):
    a, b = hosts
    old = a.serial(pebble)
    lock = f"{etcd_prefix}/locks/certs/{HOST}"

    async def holder(client: Etcd) -> str:
        kv = await client.get(lock)
        return kv.value.decode() if kv is not None else ""

    with subprocess.Popen([PY, "-m", "wharf", "-c", str(b.wharf.config), "certs", "--renew",
                           HOST], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as renewing:
        wait_until(lambda: etcd_call(etcd, holder) == "host-b", timeout=30,
                   message="host-b to hold the lock")
        b.kill_9()
        renewing.wait(timeout=30)
    assert etcd_call(etcd, holder) == "host-b"  # the dead host's lock outlives it...
    renew(a, pebble, old)  # ...until its lease ends: then host-a takes over


def test_a_name_is_claimed_by_one_host_at_a_time_and_free_once_released(
        etcd: EtcdServer, etcd_prefix: str):
    from wharf.certs.cluster import ClusterCerts
    from wharf.config.cluster import ClusterConfig

    async def main() -> None:
        def member(name: str) -> ClusterCerts:
            config = ClusterConfig(etcd=(etcd.url,), name=name, ttl=3.0, prefix=etcd_prefix)

            async def serve() -> None:
                return None

            return ClusterCerts(config, lambda changed: None, serve)

        a, b = member("host-a"), member("host-b")
        async with a.claim(HOST) as held:
            assert held is not None
            async with b.claim(HOST) as refused:
                assert refused is None
            assert b.locked(HOST) and not a.locked(HOST)  # b learned of it from its read
        async with b.claim(HOST) as taken:  # a's lease was revoked with the block
            assert taken is not None

    asyncio.run(main())
