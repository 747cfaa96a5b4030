"""Which addresses a config may bind, at `up` and at a reload (by owner)."""

import socket
from pathlib import Path

from wharf.config import config_from_data
from wharf.config.proxy_checks import bound_by, listen_problems


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
