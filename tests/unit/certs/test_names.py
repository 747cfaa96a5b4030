"""Which names ACME and the local CA cover, and what `wharf check` warns of."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wharf.certs.names import Managed, covers, is_local, managed, warnings
from wharf.config.load import config_from_data


def _config(tls: dict[str, Any], *hosts: str) -> Any:
    routes = [{"host": h, "path": "/", "servers": ["127.0.0.1:9"]} for h in hosts]
    return config_from_data({"tls": tls, "routes": routes}, Path("/tmp/x/wharf.toml"))


def test_no_acme_and_no_local_ca_manage_nothing():
    assert managed(_config({}, "a.example")) == []


def test_acme_covers_every_exact_route_host_and_its_extra_hosts_in_order():
    config = _config({"acme": {"email": "a@b.c", "hosts": ["extra.example"]}},
                     "b.example", "a.example", "b.example")
    assert managed(config) == [Managed("b.example", "acme"), Managed("a.example", "acme"),
                               Managed("extra.example", "acme")]


def test_wildcard_hosts_are_not_ordered_and_are_warned_of_by_route():
    config = _config({"acme": {}}, "a.example", "*.wild.example")
    assert managed(config) == [Managed("a.example", "acme")]
    [warning] = warnings(config)
    assert warning.path == "routes[1].host" and "DNS-01" in warning.message


def test_a_wildcard_host_a_file_certificate_covers_is_not_warned_of():
    config = _config({"acme": {}}, "*.wild.example")
    assert warnings(config, ["*.wild.example"]) == []


def test_names_a_file_certificate_covers_are_left_to_it():
    config = _config({"acme": {}}, "a.example", "x.wild.example", "b.example")
    assert managed(config, ["a.example", "*.wild.example"]) == [Managed("b.example", "acme")]


def test_a_wildcard_in_acme_hosts_is_warned_of():
    [warning] = warnings(_config({"acme": {"hosts": ["*.x.example"]}}))
    assert warning.path == "tls.acme.hosts[0]"


def test_the_local_ca_covers_localhost_first_then_the_route_hosts():
    config = _config({"local_ca": True}, "app.example", "localhost")
    assert managed(config) == [Managed("localhost", "local"), Managed("app.example", "local")]


def test_with_both_local_names_go_to_the_local_ca_and_public_ones_to_acme():
    config = _config({"local_ca": True, "acme": {}}, "app.example", "dev.localhost",
                     "box.internal")
    assert managed(config) == [Managed("localhost", "local"), Managed("app.example", "acme"),
                               Managed("dev.localhost", "local"),
                               Managed("box.internal", "local")]


def test_an_ip_host_cannot_get_an_acme_certificate():
    config = _config({"acme": {}}, "192.0.2.1")
    assert managed(config) == []
    assert warnings(config)[0].path == "routes[0].host"


def test_covers_matches_one_label_under_a_wildcard():
    assert covers("*.example", "a.example") and covers("a.example", "a.example")
    assert not covers("*.example", "a.b.example") and not covers("*.example", "example")


def test_local_names():
    for name in ("localhost", "a.localhost", "box.local", "x.internal", "h.home.arpa",
                 "127.0.0.1", "::1"):
        assert is_local(name), name
    assert not is_local("example.com")
