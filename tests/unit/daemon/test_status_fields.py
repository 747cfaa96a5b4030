"""Which instances `status` shows a port for, and the addresses it shows for the proxy."""

from wharf.config.model import AppConfig, ProxyConfig
from wharf.daemon.status_fields import format_address, listen_addresses, uses_port


def app(**fields):
    return AppConfig(**{"command": ("python3", "worker.py"), "name": "w", **fields})


def test_an_app_uses_its_port_if_something_says_so():
    assert not uses_port(app(), routed=False)
    assert uses_port(app(), routed=True)
    assert uses_port(app(port=9000), routed=False)
    assert uses_port(app(socket=("127.0.0.1", 9000)), routed=False)
    assert uses_port(app(command=("gunicorn", "--bind", "127.0.0.1:{port}")), routed=False)


def test_listen_addresses_are_the_proxy_s_for_a_worker_and_the_socket_in_socket_mode():
    proxy = ProxyConfig(listen=(("127.0.0.1", 8080), ("::1", 8080)))
    assert listen_addresses(app(), proxy, is_proxy=True) == ["127.0.0.1:8080", "[::1]:8080"]
    assert listen_addresses(app(), proxy, is_proxy=False) == []
    assert listen_addresses(app(socket=("0.0.0.0", 9000)), proxy, is_proxy=False) == \
        ["0.0.0.0:9000"]
    assert format_address("::", 80) == "[::]:80"


def test_a_proxy_worker_lists_its_tls_listeners_after_the_plain_ones():
    proxy = ProxyConfig(listen=(("127.0.0.1", 8080),), listen_tls=(("127.0.0.1", 8443),))
    assert listen_addresses(app(), proxy, is_proxy=True) == ["127.0.0.1:8080", "127.0.0.1:8443"]


def test_an_app_on_a_unix_socket_has_no_port_and_listens_on_its_path():
    unix = app(socket=("unix:/run/web.sock", 0))
    assert not uses_port(unix, routed=True)
    assert listen_addresses(unix, None, is_proxy=False) == ["unix:/run/web.sock"]
