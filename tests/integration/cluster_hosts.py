"""Hosts as network namespaces, for the `[cluster]` tests.

    root namespace:  bridge wcbXXXX 10.R.S.1/24  ── etcd listens here
                       │            │
                   veth wcXXXXa  veth wcXXXXb      (`cut` sets the root end down)
                       │            │
    namespace A: 10.R.S.2        namespace B: 10.R.S.3
      wharf up (its own state dir), proxy on 10.R.S.x:PORT, app `web` answering "host=A"

Names carry a random id (links have at most 15 characters), so that parallel runs never
collide; everything is removed afterwards, and every process is ended by its PID (a daemon
killed with -9 leaves its apps running: they are found in its state dir's processes.json).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.conftest import APPS, PY, Wharf, pid_alive, wait_until


def ip(*args: str) -> None:
    """Run `ip ARGS`, failing loudly."""
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if str(net)[:-4].rsplit(".", 1)[0] + "." not in used:
            return net  # type: ignore[return-value]
    raise AssertionError("no free 10.x.y.0/24 for the test network")


@dataclass
class Host:
    """One namespace on the bridge."""

    name: str  # the cluster name: "a", "b"
    netns: str
    veth: str  # its root end (cut it to cut the host off)
    address: str

    def cut(self) -> None:
        """Cut the host off the network (as a pulled cable: packets are lost, no reset)."""
        ip("link", "set", self.veth, "down")

    def mend(self) -> None:
        """Plug it back."""
        ip("link", "set", self.veth, "up")


@dataclass
class Network:
    """A bridge in the root namespace and a namespace per host."""

    bridge: str
    gateway: str  # the bridge's address: etcd listens here
    hosts: dict[str, Host] = field(default_factory=dict)


@contextlib.contextmanager
def network(names: tuple[str, ...] = ("a", "b")) -> Iterator[Network]:
    """Make the bridge and one namespace per name; remove them all after."""
    tag = uuid.uuid4().hex[:6]
    subnet = _free_subnet()
    addresses = [str(a) for a in subnet.hosts()]
    net = Network(f"wcb{tag}", addresses[0])
    try:
        ip("link", "add", net.bridge, "type", "bridge")
        ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
        ip("link", "set", net.bridge, "up")
        for index, name in enumerate(names, start=1):
            host = Host(name, f"wharf-{tag}-{name}", f"wc{tag}{name}", addresses[index])
            net.hosts[name] = host
            ip("netns", "add", host.netns)
            ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns",
               host.netns)
            ip("link", "set", host.veth, "master", net.bridge, "up")
            inside = ("netns", "exec", host.netns, "ip")
            ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip(*inside, "link", "set", "eth0", "up")
            ip(*inside, "link", "set", "lo", "up")
        yield net
    finally:
        for host in net.hosts.values():
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
            subprocess.run(["ip", "link", "del", host.veth], capture_output=True)
        subprocess.run(["ip", "link", "del", net.bridge], capture_output=True)


class HostWharf(Wharf):
    """A Wharf whose daemon runs inside a host's namespace (its CLI reaches it through the
    control socket's path, from anywhere)."""

    def __init__(self, root: Path, host: Host, etcd_url: str, prefix: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root)
        self.host = host
        self.port = 8080
        self.etcd_url = etcd_url
        self.prefix = prefix

    def configure(self, retries: int = 3) -> None:
        """wharf.toml: [cluster], two instances of `web` and a cluster service over them."""
        self.write_config(f"""
            [cluster]
            etcd = ["{self.etcd_url}"]
            name = "{self.host.name}"
            ttl = "2s"
            prefix = "{self.prefix}"
            advertise = "{self.host.address}"

            [apps.web]
            command = ["{{py}}", "{{apps}}/hostapp.py"]
            instances = 2
            env = {{ HOST_NAME = "{self.host.name}" }}
            stop_timeout = "3s"

            [services.web]
            app = "web"
            scope = "cluster"
            retries = {retries}
            retry_budget = 1.0
            eject_after = 1
            ejection = "30s"

            [proxy]
            listen = ["{self.host.address}:{self.port}"]

            [proxy.timeouts]
            connect = "1s"
            upstream = "2s"  # a request in flight to a host cut off is retried then

            [[routes]]
            service = "web"
        """)

    def up(self, preexec: object = None) -> None:  # type: ignore[override]
        """`wharf up` inside the namespace, in the foreground (a child of the test)."""
        log = self.daemon_log.open("ab")
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.host.netns, PY, "-m", "wharf", "up", "-c",
             str(self.config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.getcwd()})
        log.close()
        self.wait_answering()

    def kill9(self) -> None:
        """kill -9 the daemon (its apps and workers keep running, orphaned)."""
        assert self.daemon is not None
        self._leftover_pids()
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait()

    def _leftover_pids(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.root / ".wharf" / "processes.json").read_text())
            self.seen_pids.update(int(p["pid"]) for p in data["processes"])

    def pool(self) -> set[str]:
        """The cluster hosts whose instances are in this host's pool (from `status`)."""
        rows = self.status_json()
        where = {r["advertise"]: r["host"] for r in rows if r["kind"] == "cluster"}
        return {where.get(r["backend"].rsplit(":", 1)[0], self.host.name)
                for r in rows if r["kind"] == "backend"}

    def close(self) -> None:
        """Stop the daemon; end every process it (or a killed one before it) started."""
        self._leftover_pids()
        super().close()
        for pid in self.seen_pids:
            if pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


class Load:
    """GETs through one proxy from a thread of the test, counting answers by host."""

    def __init__(self, address: str, port: int, limit: int = 100_000) -> None:
        self.address, self.port, self.limit = address, port, limit
        self.hosts: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def total(self) -> int:
        return sum(self.hosts.values()) + len(self.failures)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and self.total < self.limit:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.address, self.port, timeout=30)
                conn.request("GET", "/")
                answer = conn.getresponse()
                body = answer.read().decode()
                if answer.status == 200 and body.startswith("host="):
                    self.hosts[body.split()[0][5:]] += 1
                else:
                    self.failures.append(f"{answer.status}: {body[:100]}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.002)
        if conn is not None:
            conn.close()

    def answered_by(self, host: str, timeout: float = 30.0) -> None:
        """Wait until `host` has answered a few more requests."""
        seen = self.hosts[host]
        wait_until(lambda: self.hosts[host] >= seen + 5, timeout, f"answers from {host}")

    def mark(self) -> Counter[str]:
        """The answers by host so far (to compare with later)."""
        return Counter(self.hosts)


__all__ = ["APPS", "Host", "HostWharf", "Load", "Network", "network"]
