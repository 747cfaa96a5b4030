"""`[tls] local_ca`: the daemon's own CA, its leaves stored and reused, `wharf certs`."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.conftest import Wharf, wait_until
from tests.integration.pebble import free_port

CONFIG = """
[proxy]
listen = ["127.0.0.1:{port}"]

[tls]
local_ca = true

[[routes]]
host = "app.localhost"
servers = ["127.0.0.1:9"]

[[routes]]
host = "*.wild.localhost"
servers = ["127.0.0.1:9"]
"""


def certs(wharf: Wharf) -> dict[str, dict]:
    result = wharf.run("certs", "--json")
    assert result.returncode == 0, result.stderr
    return {r["name"]: r for r in json.loads(result.stdout)}


def issued(wharf: Wharf) -> dict[str, dict]:
    return wait_until(lambda: (rows := certs(wharf)) and all(
        r["serial"] for r in rows.values()) and rows, message="local certificates")


@pytest.fixture
def local(wharf: Wharf) -> Wharf:
    wharf.write_config(CONFIG.format(port=free_port()))
    wharf.up()
    return wharf


def test_every_route_host_and_localhost_get_a_leaf_of_the_local_ca(local: Wharf):
    rows = issued(local)
    assert sorted(rows) == ["app.localhost", "localhost"]  # the wildcard needs a file cert
    assert {r["source"] for r in rows.values()} == {"local"}
    ca = x509.load_pem_x509_certificate(local.run("certs", "--ca").stdout.encode())
    for name in rows:
        leaf = x509.load_pem_x509_certificate(
            (local.root / ".wharf" / "certs" / name / "cert.pem").read_bytes())
        leaf.verify_directly_issued_by(ca)
        assert rows[name]["issuer"] == ca.subject.rfc4514_string()
        assert rows[name]["next_renewal"] < rows[name]["not_after"]


def test_keys_are_private(local: Wharf):
    issued(local)
    store = local.root / ".wharf" / "certs"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "localhost").stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "localhost" / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((store / ".local-ca" / "ca.key").stat().st_mode) == 0o600


def test_a_restart_serves_the_stored_leaves_and_the_same_ca(local: Wharf):
    before = issued(local)
    ca = local.run("certs", "--ca").stdout
    local.close()
    local.up()
    after = issued(local)
    assert {n: r["serial"] for n, r in after.items()} == \
        {n: r["serial"] for n, r in before.items()}
    assert local.run("certs", "--ca").stdout == ca


def test_renew_makes_a_new_leaf_now(local: Wharf):
    before = issued(local)["app.localhost"]["serial"]
    result = local.run("certs", "--renew", "app.localhost")
    assert result.returncode == 0, result.stderr
    assert certs(local)["app.localhost"]["serial"] != before
    assert certs(local)["localhost"]["serial"] == issued(local)["localhost"]["serial"]


def test_renew_of_a_name_nobody_manages_exits_2_naming_the_managed_ones(local: Wharf):
    result = local.run("certs", "--renew", "other.example")
    assert result.returncode == 2
    assert "app.localhost" in result.stderr


def test_status_lists_the_certificates(local: Wharf):
    issued(local)
    kinds = [r for r in local.status_json() if r["kind"] == "certificate"]
    assert sorted(r["name"] for r in kinds) == ["app.localhost", "localhost"]


def test_the_table_shows_source_and_expiry(local: Wharf):
    issued(local)
    table = local.run("certs").stdout
    assert "app.localhost" in table and "local" in table and "Wharf local CA" in table


def test_certs_ca_without_a_local_ca_exits_2(wharf: Wharf, tmp_path: Path):
    wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{free_port()}"]\n')
    wharf.up()
    result = wharf.run("certs", "--ca")
    assert result.returncode == 2 and "local_ca" in result.stderr


def test_https_verifies_with_the_ca_of_certs_ca(wharf: Wharf, tmp_path: Path):
    http, tls = free_port(), free_port()
    wharf.write_config(f"""
[proxy]
listen = ["127.0.0.1:{http}"]
listen_tls = ["127.0.0.1:{tls}"]

[tls]
local_ca = true

[apps.web]
command = "{{py}} {{apps}}/httpapp.py"
startsecs = "0.2s"

[[routes]]
host = "app.localhost"
app = "web"

[[routes]]
path = "/"
app = "web"
""")
    wharf.up()
    issued(wharf)
    ca = tmp_path / "ca.pem"
    ca.write_text(wharf.run("certs", "--ca").stdout)

    def curl(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(ca),
                               "--resolve", f"app.localhost:{tls}:127.0.0.1", url],
                              capture_output=True, text=True, check=False)

    for url in (f"https://app.localhost:{tls}/a", f"https://127.0.0.1:{tls}/b",
                f"https://localhost:{tls}/c"):
        answer = wait_until(lambda u=url: (r := curl(u)).returncode == 0 and r,
                            message=f"{url} over HTTPS")
        assert "path=/" in answer.stdout  # type: ignore[attr-defined]


def test_each_certificate_issued_is_an_event(local: Wharf):
    names = set(issued(local))
    result = local.run("events", "--json", "-n", "1000")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    got = {e["certificate"] for e in events if e["kind"] == "certificate.issued"}
    assert got == names
