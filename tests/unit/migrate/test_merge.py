"""Several imported files into one config: apps from the process managers, routes from the
proxies, upstreams that are an imported app's addresses turned into `app` routes."""

from __future__ import annotations

from pathlib import Path

from tests.unit.migrate.helpers import imported
from wharf.migrate import Result
from wharf.migrate.merge import app_addresses, merge

SUPERVISORD = """\
    [program:web]
    command=gunicorn app:app --bind 127.0.0.1:80%(process_num)02d
    process_name=%(program_name)s_%(process_num)02d
    numprocs=3
    numprocs_start=1
    [program:api]
    command=gunicorn api:app -b localhost:9000 -w 4
    """

NGINX = """\
    events {}
    http {
      upstream web { server 127.0.0.1:8001; server 127.0.0.1:8002; server localhost:8003; }
      server { listen 80; server_name shop.example.com;
        location / { proxy_pass http://web; }
        location /api/ { proxy_pass http://127.0.0.1:9000; }
        location /other/ { proxy_pass http://127.0.0.1:7000; }
      }
    }
    """


def stack(tmp_path: Path, *files: tuple[str, str]) -> Result:
    return merge([imported(tmp_path, name, text) for name, text in files], tmp_path)


def test_an_upstream_on_an_apps_ports_becomes_an_app_route(tmp_path):
    result = stack(tmp_path, ("supervisord.conf", SUPERVISORD), ("nginx.conf", NGINX))
    root = result.data["routes"][0]
    assert root == {"host": "shop.example.com", "path": "/", "app": "web"}
    assert any("upstream servers (127.0.0.1:8001-8003) are app `web`" in n
               for n in result.notes)


def test_a_literal_bind_in_the_command_becomes_wharfs_port(tmp_path):
    result = stack(tmp_path, ("supervisord.conf", SUPERVISORD), ("nginx.conf", NGINX))
    assert result.data["routes"][1]["app"] == "api"
    api = result.data["apps"]["api"]
    assert api["port"] == 9000
    assert api["command"] == "gunicorn api:app -b localhost:{port} -w 4"


def test_an_upstream_no_app_listens_on_keeps_its_servers(tmp_path):
    result = stack(tmp_path, ("supervisord.conf", SUPERVISORD), ("nginx.conf", NGINX))
    assert result.data["routes"][2]["servers"] == ["127.0.0.1:7000"]


def test_an_upstream_on_some_of_an_apps_ports_is_kept_and_said(tmp_path):
    nginx = NGINX.replace(" server localhost:8003;", "")
    result = stack(tmp_path, ("supervisord.conf", SUPERVISORD), ("nginx.conf", nginx))
    assert result.data["routes"][0]["servers"] == ["127.0.0.1:8001", "127.0.0.1:8002"]
    assert any("some but not all of app `web`" in n for n in result.notes)


def test_weights_lost_to_an_app_route_are_said(tmp_path):
    haproxy = """\
        frontend www
            bind 127.0.0.1:8080
            default_backend web
        backend web
            server w1 127.0.0.1:8001 weight 2
            server w2 127.0.0.1:8002
            server w3 127.0.0.1:8003
        """
    result = stack(tmp_path, ("supervisord.conf", SUPERVISORD), ("haproxy.cfg", haproxy))
    assert result.data["routes"][0] == {"app": "web"}
    assert any("weights are not kept" in n for n in result.notes)


def test_one_app_name_from_two_process_managers_is_reported_and_the_first_kept(tmp_path):
    result = stack(tmp_path, ("supervisord.conf", SUPERVISORD),
                   ("Procfile", "web: node server.js\n"))
    assert result.data["apps"]["web"]["instances"] == 3
    assert [d.setting for d in result.dropped] == ["app web"]
    assert "already defined by" in result.dropped[0].reason


def test_a_route_two_proxies_define_is_reported_and_the_first_kept(tmp_path):
    haproxy = """\
        frontend www
            bind 127.0.0.1:8080
            acl shop hdr(host) -i shop.example.com
            use_backend other if shop
        backend other
            server o1 127.0.0.1:7001
        """
    result = stack(tmp_path, ("nginx.conf", NGINX), ("haproxy.cfg", haproxy))
    hosts = [(r.get("host"), r.get("path", "/")) for r in result.data["routes"]]
    assert hosts.count(("shop.example.com", "/")) == 1
    assert any(d.setting == "route shop.example.com /" for d in result.dropped)
    assert result.data["proxy"]["listen"] == [":80", "127.0.0.1:8080"]


def test_a_proxy_wide_value_two_files_disagree_on_is_reported(tmp_path):
    one = NGINX.replace("listen 80;", "listen 80; client_max_body_size 5m;")
    two = NGINX.replace("listen 80;", "listen 81; client_max_body_size 9m;") \
        .replace("shop.", "blog.")
    result = stack(tmp_path, ("a/nginx.conf", one), ("b/nginx.conf", two))
    assert [d.setting for d in result.dropped] == ["proxy.max_body_size"]


def test_the_addresses_an_app_listens_on():
    assert app_addresses({"port": 8001, "instances": 2}) == {"127.0.0.1:8001",
                                                            "127.0.0.1:8002"}
    assert app_addresses({"socket": "tcp://0.0.0.0:8000"}) == {"127.0.0.1:8000"}
    assert app_addresses({"socket": "unix:/run/web.sock"}) == {"unix:/run/web.sock"}
    assert app_addresses({"command": ["gunicorn", "--bind=0.0.0.0:5000"]}) == \
        {"127.0.0.1:5000"}
    assert app_addresses({"command": "gunicorn --bind unix:/run/web.sock"}) == set()
    assert app_addresses({"command": "gunicorn --bind 10.0.0.5:5000"}) == set()
    assert app_addresses({"port": 8001, "instances": "auto"}) == set()
