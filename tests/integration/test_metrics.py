"""`/metrics` on the admin listener: traffic counted by the workers, added up by the daemon."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port

CONFIG = """
    [admin]
    listen = "127.0.0.1:{admin}"

    [proxy]
    listen = ["127.0.0.1:{proxy}"]
    workers = 2

    [apps.web]
    command = "{py} {apps}/httpapp.py"
    instances = 2
    startsecs = 0

    [[routes]]
    path = "/api"
    servers = ["127.0.0.1:{dead}"]
    retries = 0

    [[routes]]
    path = "/"
    app = "web"
"""


@dataclass
class Daemon:
    wharf: Wharf
    admin: int
    proxy: int
    to_api: int = 0  # requests this module sent to the `/api` route

    def get(self, path: str) -> int:
        if path.startswith("/api"):
            self.to_api += 1
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy, timeout=10)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            answer.read()
            return answer.status
        finally:
            conn.close()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        try:
            conn.request("GET", "/metrics")
            answer = conn.getresponse()
            assert answer.status == 200
            assert answer.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
            page = answer.read().decode()
        finally:
            conn.close()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(page) for s in family.samples}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    wharf = Wharf(tmp_path_factory.mktemp("metrics"))
    admin, proxy, dead = free_port(), free_port(), free_port()
    wharf.write_config(CONFIG.replace("{admin}", str(admin)).replace("{proxy}", str(proxy))
                       .replace("{dead}", str(dead)))
    wharf.up()
    wharf.wait_ready("web", 2)
    try:
        yield Daemon(wharf, admin, proxy)
    finally:
        wharf.close()


def _sum(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


def test_every_request_through_any_worker_is_counted_once_by_route_and_class(daemon: Daemon):
    before = daemon.metrics()
    start_ok = _sum(before, "wharf_http_requests_total", route="*/", code="2xx")
    start_404 = _sum(before, "wharf_http_requests_total", route="", code="4xx")
    for _ in range(40):
        assert daemon.get("/") == 200
    assert daemon.get("/api/x") == 502
    wait_until(lambda: _sum(daemon.metrics(), "wharf_http_requests_total", route="*/",
                            code="2xx") == start_ok + 40, timeout=10)
    samples = daemon.metrics()
    assert _sum(samples, "wharf_http_requests_total", route="*/api", code="5xx") >= 1
    assert _sum(samples, "wharf_http_requests_total", route="", code="4xx") == start_404
    # the histogram holds every request, and its +Inf bucket is the count
    assert _sum(samples, "wharf_http_request_duration_seconds_count", route="*/") == start_ok + 40
    assert _sum(samples, "wharf_http_request_duration_seconds_bucket", route="*/",
                le="+Inf") == start_ok + 40
    # the two web instances answered them all between them
    assert _sum(samples, "wharf_backend_requests_total", service="app:web",
                code="2xx") == start_ok + 40
    assert _sum(samples, "wharf_backend_connect_errors_total", service="route:/api") >= 1
    assert _sum(samples, "wharf_http_response_bytes_total", route="*/") > 0


def test_instances_and_proxy_workers_have_state_memory_and_cpu(daemon: Daemon):
    samples = daemon.metrics()
    assert _sum(samples, "wharf_instance_state", app="web", state="RUNNING") == 2
    assert _sum(samples, "wharf_instance_ready", app="web") == 2
    assert _sum(samples, "wharf_instance_state", app="wharf-proxy", state="RUNNING") == 2
    wait_until(lambda: _sum(daemon.metrics(), "wharf_instance_resident_memory_bytes",
                            app="wharf-proxy") > 0, timeout=10)
    wait_until(lambda: _sum(daemon.metrics(), "wharf_instance_cpu_seconds_total",
                            app="wharf-proxy") > 0, timeout=10)


def test_no_label_comes_from_a_request(daemon: Daemon):
    for path in ("/a-path-nobody-configured", "/?q=1", "/%2e%2e/x"):
        daemon.get(path)
    page_labels = {v for (_, labels) in daemon.metrics() for _, v in labels}
    assert not any(re.search(r"nobody|q=1|%2e", v) for v in page_labels)


def test_the_counts_survive_a_reload_that_replaces_the_workers(daemon: Daemon):
    def counted() -> float:
        return _sum(daemon.metrics(), "wharf_http_requests_total", route="*/api")

    for _ in range(3):
        assert daemon.get("/api/x") == 502
    wait_until(lambda: counted() == daemon.to_api, timeout=10)  # every one reported
    daemon.wharf.run("restart", "wharf-proxy")
    assert daemon.get("/api/x") == 502
    wait_until(lambda: counted() == daemon.to_api, timeout=10)  # the old workers' kept
