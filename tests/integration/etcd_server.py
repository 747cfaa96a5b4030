"""A real etcd (Debian's `etcd-server`), once per test session, on free ports of 127.0.0.1.

Tests share it: each takes a key prefix of its own (`etcd_prefix`), so none sees another's
keys, and the prefix is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ETCD = "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdServer:
    """A running etcd: its client URL, its process, its log."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, int] = (0, 0)  # client, peer: pass them to run_etcd to start it again


@contextlib.contextmanager
def run_etcd(workdir: Path, host: str = "127.0.0.1",
             ports: tuple[int, int] = (0, 0)) -> Iterator[EtcdServer]:
    """Start etcd with its data in `workdir`, listening on `host` (on `ports`, client and
    peer, if given: the same etcd started again); stop it (by PID) after."""
    workdir.mkdir(parents=True, exist_ok=True)
    client, peer = ports[0] or _free_port(), ports[1] or _free_port()
    url = f"http://{host}:{client}"
    log = workdir / "etcd.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [ETCD, "--name", "test", "--data-dir", str(workdir / "data"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", f"http://{host}:{peer}",
             "--initial-advertise-peer-urls", f"http://{host}:{peer}",
             "--initial-cluster", f"test=http://{host}:{peer}",
             "--log-level", "warn"], stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"etcd exited:\n{log.read_text()}")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if b'"true"' in answer.read():
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"etcd did not become healthy:\n{log.read_text()}")
            time.sleep(0.05)
        yield EtcdServer(url, proc, log, (client, peer))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One etcd for the whole test session."""
    if not shutil.which(ETCD):
        pytest.fail("etcd is not installed: `apt-get install etcd-server` (.ci/run does it)")
    with run_etcd(tmp_path_factory.mktemp("etcd")) as server:
        yield server


@pytest.fixture
def etcd_prefix(etcd: EtcdServer) -> Iterator[str]:
    """A key prefix for this test alone, deleted afterwards."""
    import asyncio

    from wharf.clients.etcd import Etcd

    prefix = f"/test-{uuid.uuid4().hex[:12]}"
    yield prefix
    asyncio.run(Etcd([etcd.url]).delete(prefix + "/", prefix=True))
