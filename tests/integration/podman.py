"""A real Docker-compatible engine: podman's `system service`, once per test session.

The recipe measured on these machines (shared notes, containers.md): podman with the vfs
storage driver and runc, the default ulimits emptied, and an image made without any registry
(a rootfs tarball with a static busybox). Everything podman keeps (images, containers, its
state, its events) is under a temp dir of its own: `--root`, `--runroot`, `--tmpdir`, and the
API socket. Only host networking is used (the container's ports are the host's), so nothing
is added to the host's network set-up (podman still makes an empty /run/containers/networks).
The service is stopped by its PID, every container the tests made is removed, and the dir
goes with pytest's temp dirs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PODMAN = "/usr/bin/podman"
BUSYBOX = "/bin/busybox"
IMAGE = "localhost/wharf-test-busybox:1"
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Podman:
    """The podman CLI over one private store, and its API service on a Unix socket."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "podman.sock"
        self.env = {**os.environ, "CONTAINERS_CONF": str(workdir / "containers.conf")}
        self.service: subprocess.Popen[bytes] | None = None
        self.made: set[str] = set()  # every container name a test created
        self.log = workdir / "service.log"

    @property
    def endpoint(self) -> str:
        """The engine's API, as `[providers.docker] endpoint` spells it."""
        return f"unix://{self.socket}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS` on this store."""
        w = self.workdir
        result = subprocess.run(
            [PODMAN, "--root", str(w / "root"), "--runroot", str(w / "run"),
             "--tmpdir", str(w / "tmp"), "--storage-driver", "vfs", "--runtime", "runc",
             "--events-backend", "file", *args],
            env=self.env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {result.stderr}")
        return result

    def prepare(self) -> None:
        """Write the config and import the busybox image."""
        (self.workdir / "containers.conf").write_text(CONTAINERS_CONF)
        rootfs = self.workdir / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "www").mkdir()
        shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
        for tool in ("sh", "httpd", "rm"):
            (rootfs / "bin" / tool).symlink_to("busybox")
        with tarfile.open(self.workdir / "rootfs.tar", "w") as tar:
            tar.add(rootfs, arcname=".")
        self.cli("import", str(self.workdir / "rootfs.tar"), IMAGE)

    def start_service(self) -> None:
        """Serve the API on the socket; return once it answers."""
        assert self.service is None or self.service.poll() is not None
        with self.log.open("ab") as out:
            w = self.workdir
            self.service = subprocess.Popen(
                [PODMAN, "--root", str(w / "root"), "--runroot", str(w / "run"),
                 "--tmpdir", str(w / "tmp"), "--storage-driver", "vfs", "--runtime", "runc",
                 "--events-backend", "file", "system", "service", "--time=0",
                 self.endpoint], env=self.env, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.service.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"podman system service:\n{self.log.read_text()}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.socket))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
        return False

    def stop_service(self) -> None:
        """Stop the API service (by its PID); the containers keep running."""
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def run_httpd(self, *, labels: dict[str, str], port: int | None = None,
                  health: str | None = None, name: str | None = None) -> tuple[str, int]:
        """Start a busybox httpd on the host's network, on `port` (a free one by default),
        answering GET / with the container's name; its (name, port). "{port}" in a label's
        value is that port."""
        name = name or f"t-{uuid.uuid4().hex[:8]}"
        port = port or _free_port()
        self.made.add(name)
        args = ["run", "-d", "--name", name, "--network", "host"]
        for key, value in labels.items():
            args += ["--label", f"{key}={value.replace('{port}', str(port))}"]
        if health is not None:
            # no systemd here, so podman runs no health timer: `healthcheck` runs it
            args += ["--health-cmd", health, "--health-interval", "1h", "--health-retries", "1"]
        self.cli(*args, IMAGE, "/bin/sh", "-c",
                 f"echo {name} > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www")
        return name, port

    def remove(self, *names: str) -> None:
        """Remove containers now (killed, no grace: httpd as PID 1 ignores SIGTERM)."""
        if names:
            self.cli("rm", "-f", "-t", "0", *names, check=False)
            self.made.difference_update(names)

    def close(self) -> None:
        """Remove every container made, stop the service."""
        self.remove(*self.made)
        self.stop_service()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """One podman API service for the whole session."""
    for tool in (PODMAN, "/usr/sbin/runc", BUSYBOX):
        if not os.path.exists(tool):
            pytest.fail(f"{tool} is missing: `apt-get install podman runc busybox-static` "
                        "(.ci/run does it)")
    engine = Podman(tmp_path_factory.mktemp("podman"))
    try:
        engine.prepare()
        engine.start_service()
        yield engine
    finally:
        engine.close()


@pytest.fixture
def containers(podman: Podman) -> Iterator[Podman]:
    """The session's podman, with the API up; the containers a test made are removed after
    it (and the service is started again if the test stopped it)."""
    if podman.service is None or podman.service.poll() is not None:
        podman.start_service()
    before = set(podman.made)
    try:
        yield podman
    finally:
        podman.remove(*(podman.made - before))
        if podman.service is None or podman.service.poll() is not None:
            podman.start_service()
