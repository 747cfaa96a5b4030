"""Addresses as Wharf carries them: TCP pairs, and Unix sockets as ("unix:PATH", 0)."""

from wharf.addresses import format_address, unix_address, unix_path


def test_a_unix_address_is_its_path_behind_the_prefix_with_port_0():
    assert unix_address("/run/app.sock") == ("unix:/run/app.sock", 0)
    assert unix_path(*unix_address("/run/app.sock")) == "/run/app.sock"


def test_a_tcp_address_has_no_unix_path():
    assert unix_path("127.0.0.1", 8000) is None
    assert unix_path("unix:/x", 8000) is None  # a port: a (strange) host name, not a socket


def test_addresses_are_shown_as_the_config_spells_them():
    assert format_address("127.0.0.1", 8080) == "127.0.0.1:8080"
    assert format_address("::1", 8080) == "[::1]:8080"
    assert format_address(*unix_address("/run/app.sock")) == "unix:/run/app.sock"
