"""Which addresses a config may bind, at `up` and at a reload (by owner); route values that
become header lines; route and proxy keys of the proxy's hardening."""

import socket
from pathlib import Path

import pytest

from wharf.config import config_from_data
from wharf.config.proxy_checks import bound_by, listen_problems
from wharf.errors import ConfigError


def apps(tmp_path: Path, sockets: dict[str, str]):
    return config_from_data({"apps": {name: {"command": "x", "socket": f"tcp://{address}"}
                                      for name, address in sockets.items()}},
                            tmp_path / "wharf.toml").apps


def messages(problems) -> list[str]:
    return [str(p) for p in problems]


def test_an_owner_keeps_its_address_and_nobody_else_takes_it_in_the_same_reload(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        ours = bound_by(None, apps(tmp_path, {"a": f"127.0.0.1:{port}"}))
        assert ours == {("127.0.0.1", port): "app a"}
        assert listen_problems(None, apps(tmp_path, {"a": f"127.0.0.1:{port}"}), ours) == []
        assert messages(listen_problems(None, apps(tmp_path, {"b": f"127.0.0.1:{port}"}),
                                        ours)) == [
            f"apps.b.socket: 127.0.0.1:{port} is still bound for app a; free it in one reload "
            "and take it in the next"]


def test_a_port_in_use_says_whether_this_daemon_holds_it(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        wildcard = apps(tmp_path, {"a": f"0.0.0.0:{port}"})
        assert messages(listen_problems(None, wildcard, {("127.0.0.1", port): "app a"})) == [
            f"apps.a.socket: 0.0.0.0:{port} is already in use (by this daemon, for app a on "
            "127.0.0.1: free it in one reload and take it in the next)"]
        assert messages(listen_problems(None, wildcard)) == [
            f"apps.a.socket: 0.0.0.0:{port} is already in use"]


def route_problems(tmp_path: Path, route: dict, proxy: dict | None = None) -> list[str]:
    data = {"routes": [route], **({"proxy": proxy} if proxy is not None else {})}
    try:
        config_from_data(data, tmp_path / "wharf.toml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize("target", ["/new\r\nSet-Cookie: a=b", "https://x/\n\nHTTP/1.1 200 OK",
                                    "/a\x00b", "/a\rb"])
def test_a_redirect_that_would_break_its_location_header_is_a_problem(tmp_path, target):
    assert route_problems(tmp_path, {"redirect": target}) == [
        "routes[0].redirect: must be a valid header value (no line breaks or control "
        f"characters), got {target!r}"]


@pytest.mark.parametrize("target", ["//evil.com/x", "/{path}", "/{uri}", "/\\evil.com"])
def test_a_redirect_path_that_names_another_host_is_a_problem(tmp_path, target):
    [found] = route_problems(tmp_path, {"redirect": target})
    assert found.startswith("routes[0].redirect: a path must not start with '//'"), found
    assert route_problems(tmp_path, {"redirect": "/new{path}"}) == []
    assert route_problems(tmp_path, {"redirect": "https://{host}{uri}"}) == []


@pytest.mark.parametrize("field", ["add_request_headers", "add_response_headers", "headers"])
def test_header_values_with_line_breaks_are_problems(tmp_path, field):
    found = route_problems(tmp_path, {"servers": ["127.0.0.1:9000"],
                                      field: {"X-A": "a\r\nX-B: b"}})
    assert found == [f"routes[0].{field}.X-A: is not a valid header name and value"]


def test_upgrade_lists_protocol_names(tmp_path):
    assert route_problems(tmp_path, {"servers": ["127.0.0.1:9000"],
                                     "upgrade": ["websocket", "h2c"]}) == []
    found = route_problems(tmp_path, {"servers": ["127.0.0.1:9000"], "upgrade": ["a b"]})
    assert len(found) == 1 and found[0].startswith("routes[0].upgrade: must be a list of "
                                                   "protocol names"), found
    config = config_from_data({"routes": [{"servers": ["127.0.0.1:9000"]},
                                          {"servers": ["127.0.0.1:9000"], "upgrade": ["H2C"]}]},
                              tmp_path / "wharf.toml")
    assert [r.upgrade for r in config.routes] == [("websocket",), ("h2c",)]


def test_underscores_in_headers_is_a_boolean(tmp_path):
    route = {"servers": ["127.0.0.1:9000"]}
    assert route_problems(tmp_path, route, {"underscores_in_headers": True}) == []
    assert len(route_problems(tmp_path, route, {"underscores_in_headers": "yes"})) == 1
