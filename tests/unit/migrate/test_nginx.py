"""nginx.conf (read by crossplane) -> [proxy], [tls] and [[routes]]."""

from tests.unit.migrate.helpers import dropped, imported

DJANGO = """\
    user www-data;
    worker_processes auto;
    events { worker_connections 768; }
    http {
        include conf.d/*.conf;
        client_max_body_size 1m;
        upstream django {
            least_conn;
            server 127.0.0.1:8000 weight=2 max_fails=3 fail_timeout=20s;
            server 127.0.0.1:8001;
            server 127.0.0.1:8002 backup;
            keepalive 16;
        }
        server {
            listen 80;
            listen [::]:80;
            server_name shop.example.com;
            return 301 https://$host$request_uri;
        }
        server {
            listen 443 ssl http2;
            server_name shop.example.com;
            ssl_certificate certs/shop.pem;
            ssl_certificate_key certs/shop.key;
            ssl_protocols TLSv1.2 TLSv1.3;
            add_header Strict-Transport-Security "max-age=31536000" always;
            client_max_body_size 20m;
            location /static/ { alias /srv/shop/static/; }
            location /media/ { root /srv/shop; }
            location /old/ { return 302 /new/; }
            location ~ \\.php$ { deny all; }
            location / {
                proxy_pass http://django;
                proxy_set_header Host $host;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Real-IP $remote_addr;
                proxy_read_timeout 300s;
                proxy_buffering off;
                gzip on;
            }
        }
    }
    """


def test_a_django_site_with_tls_static_files_and_an_upstream(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "api.conf").write_text(
        "server { listen 8080; location /api/ { proxy_pass http://127.0.0.1:9000/; } }\n")
    result = imported(tmp_path, "nginx.conf", DJANGO)
    assert result.data["proxy"] == {
        "workers": "auto", "listen": [":8080", ":80"], "listen_tls": [":443"],
        "max_body_size": "20MiB", "pool_max_idle": 16, "timeouts": {"upstream": "5m"}}
    assert result.data["tls"] == {
        "redirect_http": True, "min_version": "1.2", "hsts": "max-age=31536000",
        "certificates": [{"cert": "certs/shop.pem", "key": "certs/shop.key"}]}
    host = "shop.example.com"
    assert result.data["routes"] == [
        {"path": "/api/", "servers": ["127.0.0.1:9000"], "strip_prefix": True},
        {"host": host, "path": "/static/", "static": "/srv/shop/static"},
        {"host": host, "path": "/media/", "static": "/srv/shop/media"},
        {"host": host, "path": "/old/", "redirect": "/new/", "redirect_code": 302},
        {"host": host, "path": "/", "buffering": False, "servers": [
            {"address": "127.0.0.1:8000", "weight": 2}, "127.0.0.1:8001"],
         "balance": "least_conn", "eject_after": 3, "ejection": "20s"}]
    assert [s for _, s in dropped(result)] == [
        "user www-data", "worker_connections 768", "server 127.0.0.1:8002 backup",
        "listen [::]:80", "listen 443 ssl http2", "location ~ \\.php$ { ... }",
        "proxy_set_header X-Real-IP $remote_addr", "gzip on"]
    assert any("the largest, 20MiB" in n for n in result.notes)


def test_two_servers_routing_one_host_and_path_keep_the_first(tmp_path):
    result = imported(tmp_path, "nginx.conf", """\
        events {}
        http {
            server { listen 80; location / { proxy_pass http://127.0.0.1:1; } }
            server { listen 81; location / { proxy_pass http://127.0.0.1:2; } }
        }
        """)
    assert [r["servers"] for r in result.data["routes"]] == [["127.0.0.1:1"]]
    assert dropped(result) == [(4, "any host /")]


def test_weights_make_the_balance_weighted_and_hash_keys_carry(tmp_path):
    result = imported(tmp_path, "nginx.conf", """\
        events {}
        http {
            upstream a { server 10.0.0.1:80 weight=5; server 10.0.0.2; }
            upstream b { hash $cookie_session consistent; server 10.0.0.3:81; }
            server {
                server_name .example.org;
                location /a { proxy_pass http://a; }
                location /b { proxy_pass http://b/v2/; }
            }
        }
        """)
    routes = result.data["routes"]
    assert [(r["host"], r["path"], r.get("balance")) for r in routes] == [
        ("example.org", "/a", "weighted"), ("*.example.org", "/a", "weighted"),
        ("example.org", "/b", "hash"), ("*.example.org", "/b", "hash")]
    assert routes[2]["hash_key"] == "cookie:session"
    assert (8, "proxy_pass http://b/v2/") in dropped(result)


def test_unix_socket_upstreams_carry_over(tmp_path):
    result = imported(tmp_path, "nginx.conf", """\
        events {}
        http {
            upstream app { server unix:/run/gunicorn.sock weight=2; server 127.0.0.1:8000; }
            server {
                listen 80;
                location /a { proxy_pass http://app; }
                location / { proxy_pass http://unix:/run/other.sock:; }
            }
        }
        """)
    assert [r["servers"] for r in result.data["routes"]] == [
        [{"address": "unix:/run/gunicorn.sock", "weight": 2}, "127.0.0.1:8000"],
        ["unix:/run/other.sock"]]
    assert dropped(result) == []
