"""Real Pebble (Let's Encrypt's test ACME server, from Debian's `pebble` package), once per
test session, with `pebble-challtestsrv` as its DNS (every name resolves to 127.0.0.1).

Pebble validates HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`: the tests give those
ports to Wharf's listeners (one daemon at a time uses them). Its API needs a certificate of
our own (made here with Wharf's local CA; `api_ca` trusts it) and its issuing root is new at
every start (`root`, fetched from the management port).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wharf.certs.local_ca import LocalCa

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pebble:
    """A running Pebble: where its directory is, what to trust, where it validates."""

    workdir: Path
    directory: str
    api_ca: Path  # trust for Pebble's API (tls.acme.ca_bundle)
    root: Path  # Pebble's issuing root, for clients of the certificates it issues
    http_port: int
    tls_port: int
    management: str
    procs: list[subprocess.Popen[bytes]]

    def root_pem(self) -> str:
        """The issuing root (the same for the whole session)."""
        return self.root.read_text()


def _get(url: str, cafile: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    with urllib.request.urlopen(url, context=context, timeout=5) as answer:
        return bytes(answer.read())


def _wait_for(url: str, cafile: Path, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise AssertionError(f"pebble exited:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            _get(url, cafile)
            return
        time.sleep(0.05)
    raise AssertionError(f"pebble did not answer on {url}:\n{log.read_text()}")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def run_pebble(workdir: Path) -> Iterator[Pebble]:
    """Start challtestsrv and Pebble on free ports; stop both (by PID) afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    api = LocalCa(workdir / "api-ca")
    issued = api.issue("localhost")
    (workdir / "api.pem").write_text(issued.cert_pem)
    (workdir / "api.key").write_text(issued.key_pem)
    api_ca = workdir / "api-ca.pem"
    api_ca.write_text(api.ca_pem)
    listen, manage, http, tls = (free_port() for _ in range(4))
    dns, dns_manage = free_port(socket.SOCK_DGRAM), free_port()
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{listen}", "managementListenAddress": f"127.0.0.1:{manage}",
        "certificate": str(workdir / "api.pem"), "privateKey": str(workdir / "api.key"),
        "httpPort": http, "tlsPort": tls, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}
    (workdir / "pebble.json").write_text(json.dumps(config))
    log = workdir / "pebble.log"
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
           "PEBBLE_AUTHZREUSE": "0"}
    procs: list[subprocess.Popen[bytes]] = []
    with log.open("ab") as out:
        try:
            procs.append(subprocess.Popen(
                [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns}", "-management",
                 f"127.0.0.1:{dns_manage}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                 "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                stdout=out, stderr=out, stdin=subprocess.DEVNULL))
            procs.append(subprocess.Popen(
                [PEBBLE, "-config", str(workdir / "pebble.json"), "-dnsserver",
                 f"127.0.0.1:{dns}"], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                env=env, cwd=workdir))
            directory = f"https://127.0.0.1:{listen}/dir"
            _wait_for(directory, api_ca, procs, log)
            root = workdir / "pebble-root.pem"
            root.write_bytes(_get(f"https://127.0.0.1:{manage}/roots/0", api_ca))
            yield Pebble(workdir, directory, api_ca, root, http, tls, f"127.0.0.1:{manage}",
                         procs)
        finally:
            _stop(procs)


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """One Pebble for the whole test session."""
    if not (shutil.which(PEBBLE) and shutil.which(CHALLTESTSRV)):
        pytest.fail("pebble is not installed: `apt-get install pebble` (.ci/run does it)")
    with run_pebble(tmp_path_factory.mktemp("pebble")) as p:
        yield p
