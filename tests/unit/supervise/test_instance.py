"""What an instance is started with: its argv placeholders and environment."""

import os
from pathlib import Path

from wharf.config.model import AppConfig
from wharf.supervise.instance import spawn_spec


def app(**fields) -> AppConfig:
    return AppConfig(name="web", command=("serve", "--bind", "{socket}", "-n", "{instance}"),
                     cwd=Path("/"), **fields)


def test_socket_is_host_and_port_for_a_tcp_socket():
    spec = spawn_spec(app(socket=("127.0.0.1", 8000)), 1, 8000)
    assert spec.argv == ("serve", "--bind", "127.0.0.1:8000", "-n", "1")
    assert spec.env["PORT"] == "8000"
    assert spawn_spec(app(socket=("::1", 8000)), 0, 8000).argv[2] == "[::1]:8000"


def test_socket_is_the_path_of_a_unix_socket_which_has_no_port():
    spec = spawn_spec(app(socket=("unix:/run/web.sock", 0)), 0, 0)
    assert spec.argv[2] == "/run/web.sock"  # gunicorn --bind unix:{socket}, uvicorn --uds
    assert spec.env.get("PORT") == os.environ.get("PORT")  # none of Wharf's
