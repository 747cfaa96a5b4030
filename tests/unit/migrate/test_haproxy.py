"""haproxy.cfg -> [proxy], [tls] and [[routes]]."""

from tests.unit.migrate.helpers import dropped, imported
from wharf.migrate.haproxy import parse

CFG = """\
    global
        maxconn 4096
    defaults
        mode http
        option forwardfor
        timeout connect 5s
        timeout client 30s
        timeout server 30000
        default-server inter 3s fall 3 rise 2
    frontend www
        bind *:80
        bind *:443 ssl crt /etc/haproxy/site.pem alpn h2
        http-request redirect scheme https unless { ssl_fc }
        acl is_api path_beg /api
        acl is_admin hdr(host) -i admin.example.com
        use_backend api if is_api
        use_backend admin if is_admin || { hdr(host) -i staff.example.com }
        use_backend api if !is_admin
        default_backend web
    backend web
        balance roundrobin
        option httpchk GET /health
        http-check expect status 200
        server web1 127.0.0.1:8001 weight 3 check maxconn 100
        server web2 127.0.0.1:8002 check
        server web3 127.0.0.1:8003 backup
    backend api
        balance leastconn
        timeout queue 10s
        retries 1
        server api1 127.0.0.1:9001 check inter 1s
    backend admin
        balance uri
        cookie SRV insert indirect nocache
        server a1 127.0.0.1:9101 cookie a1
    """


def test_frontends_acls_and_backends_become_routes(tmp_path):
    result = imported(tmp_path, "haproxy.cfg", CFG)
    assert result.data["proxy"] == {
        "listen": [":80"], "listen_tls": [":443"],
        "timeouts": {"connect": "5s", "idle": "30s", "upstream": "30s"}}
    assert result.data["tls"] == {"redirect_http": True, "certificates": [
        {"cert": "/etc/haproxy/site.pem", "key": "/etc/haproxy/site.pem"}]}
    admin = {"servers": ["127.0.0.1:9101"], "balance": "cookie", "cookie": "SRV"}
    assert result.data["routes"] == [
        {"path": "/api", "servers": ["127.0.0.1:9001"], "balance": "least_conn",
         "queue_timeout": "10s", "retries": 1,
         "health": {"interval": "1s", "fall": 3, "rise": 2}},
        {"host": "admin.example.com", **admin},
        {"host": "staff.example.com", **admin},
        {"servers": [{"address": "127.0.0.1:8001", "weight": 3}, "127.0.0.1:8002"],
         "balance": "weighted", "max_conns": 100, "health": {
             "interval": "3s", "fall": 3, "rise": 2, "path": "/health", "status": "200"}}]
    assert dropped(result) == [
        (2, "maxconn 4096"), (12, "bind *:443 ssl crt /etc/haproxy/site.pem alpn h2"),
        (18, "use_backend api if !is_admin"), (26, "server web3 127.0.0.1:8003 backup")]


def test_a_listen_section_is_a_frontend_and_a_backend(tmp_path):
    result = imported(tmp_path, "haproxy.cfg", """\
        listen app
            bind 127.0.0.1:8080
            mode http
            server s1 127.0.0.1:9000
        listen db
            bind :5432
            mode tcp
            server pg 127.0.0.1:5433
        """)
    assert result.data["routes"] == [{"servers": ["127.0.0.1:9000"]}]
    assert (7, "mode tcp") in dropped(result)


def test_lines_are_split_as_haproxy_splits_them(tmp_path):
    sections = parse(tmp_path / "h.cfg", 'backend b # comment\n  http-request set-header '
                     'X-A "a b"\n')
    assert [(s.kind, s.name, [ln.words for ln in s.lines]) for s in sections] == [
        ("backend", "b", [["http-request", "set-header", "X-A", "a b"]])]
