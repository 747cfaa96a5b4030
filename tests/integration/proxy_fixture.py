"""A module-scoped daemon with a proxy in front of two scripted upstreams and an app."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxyutil import probe
from wharf.testing.upstream import ScriptedUpstream


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proxy:
    """A running daemon with a proxy in front of scripted upstreams A and B and an app."""

    def __init__(self, wharf: Wharf, a: ScriptedUpstream, b: ScriptedUpstream, port: int):
        self.wharf, self.a, self.b, self.port = wharf, a, b, port

    def seen(self, upstream: ScriptedUpstream, marker: str) -> list:
        return [r for r in upstream.requests if marker in r.target]


CONFIG = """
[proxy]
listen = ["127.0.0.1:{port}"]
timeouts = {{ connect = "1s", header = "1s", idle = "1s", upstream = "1s" }}
max_header_size = "4KB"
max_body_size = "1MB"
access_log = "json"

[apps.web]
command = "{{py}} {{apps}}/httpapp.py"
instances = 2
startsecs = "0.2s"

[apps.broken]
command = "/nonexistent/app"
startretries = 0

[[routes]]
path = "/"
servers = ["127.0.0.1:{a}"]

[[routes]]
host = "api.test"
servers = ["127.0.0.1:{b}"]

[[routes]]
host = "*.wild.test"
path = "/"
servers = ["127.0.0.1:{b}"]

[[routes]]
path = "/app"
app = "web"
strip_prefix = true

[[routes]]
path = "/b"
servers = ["127.0.0.1:{b}"]
add_request_headers = {{ X-Added = "1" }}
remove_request_headers = ["X-Remove-Me"]
add_response_headers = {{ X-Resp = "yes" }}
remove_response_headers = ["X-Backend"]

[[routes]]
path = "/form"
methods = ["POST"]
servers = ["127.0.0.1:{b}"]

[[routes]]
path = "/versioned"
headers = {{ X-Version = "2" }}
servers = ["127.0.0.1:{b}"]

[[routes]]
path = "/old"
redirect = "https://{{host}}/new{{path}}"
redirect_code = 301

[[routes]]
path = "/dead"
servers = ["127.0.0.1:{dead}"]

[[routes]]
path = "/down"
app = "broken"

[[routes]]
path = "/files"
static = "files"

[[routes]]
path = "/h2c/admin"
redirect = "/denied"

[[routes]]
path = "/ws-h2c"
servers = ["127.0.0.1:{a}"]
upgrade = ["websocket", "h2c"]
"""


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    a, b = ScriptedUpstream("A"), ScriptedUpstream("B")
    wharf = Wharf(tmp_path_factory.mktemp("proxy"))
    (wharf.root / "files").mkdir()
    (wharf.root / "files" / "f.bin").write_bytes(bytes(range(256)) * 4096)
    port = free_port()
    wharf.write_config(CONFIG.format(port=port, a=a.port, b=b.port, dead=free_port()))
    try:
        wharf.up()
        wharf.wait_state("web", "RUNNING", 1)
        wait_until(lambda: b"instance=" in probe(
            port, b"GET /app/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
            message="the proxy to route to the app")
        yield Proxy(wharf, a, b, port)
    finally:
        wharf.close()
        a.close()
        b.close()


@contextlib.contextmanager
def proxy_to_upstream(root: Path, settings: str = "",
                      upstream: ScriptedUpstream | None = None, route: str = ""
                      ) -> Iterator[tuple[Wharf, ScriptedUpstream, int]]:
    """A daemon whose proxy sends everything (or what `route`'s extra lines match) to one
    scripted upstream; `settings` go in `[proxy]`. Yields (wharf, upstream, port) and stops
    both after."""
    upstream = upstream or ScriptedUpstream("U")
    wharf = Wharf(root)
    port = free_port()
    wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n{settings}\n'
                       f'[[routes]]\nservers = ["127.0.0.1:{upstream.port}"]\n{route}\n')
    try:
        wharf.up()
        wait_until(lambda: probe(port), message="the proxy")
        yield wharf, upstream, port
    finally:
        wharf.close()
        upstream.close()
