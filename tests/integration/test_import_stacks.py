"""`wharf import` of a whole stack, run for real: a process manager's file and a proxy's file
become one wharf.toml that passes `wharf check`, starts with `wharf up -d`, and answers through
its proxy from the imported app (the upstream became `app = "NAME"`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from tests.integration.conftest import PY
from tests.integration.test_import import HTTPAPP, check, free_base, get, running, wharf_import


@pytest.mark.skipif(shutil.which("nginx") is None, reason="no nginx")
def test_supervisor_and_nginx_become_one_config_whose_route_is_the_app(tmp_path):
    base, listen = free_base(2, step=100), free_base(1)
    (tmp_path / "supervisord.conf").write_text(textwrap.dedent(f"""\
        [program:web]
        command={PY} {HTTPAPP} --bind 127.0.0.1:{base // 100}%(process_num)02d
        process_name=%(program_name)s_%(process_num)02d
        numprocs=2
        directory=%(here)s
        """))
    conf = tmp_path / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""\
        events {{ worker_connections 64; }}
        http {{
            upstream web {{ server 127.0.0.1:{base}; server localhost:{base + 1}; }}
            server {{
                listen 127.0.0.1:{listen};
                server_name shop.example.com;
                location / {{ proxy_pass http://web; }}
            }}
        }}
        """))
    valid = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp_path), "-g",
                            f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/e.log;"],
                           capture_output=True, text=True, check=False)
    assert valid.returncode == 0, valid.stderr
    done = wharf_import(tmp_path, "supervisord.conf", "nginx.conf", "-o", "wharf.toml")
    assert done.returncode == 0, done.stderr
    assert f"(127.0.0.1:{base}-{base + 1}) are app `web`" in done.stderr
    assert 'app = "web"' in (tmp_path / "wharf.toml").read_text()
    check(tmp_path, tmp_path / "wharf.toml")
    with running(tmp_path, tmp_path / "wharf.toml"):
        seen = {get(listen, "/x", "shop.example.com").split()[0] for _ in range(6)}
        assert seen == {"instance=0", "instance=1"}


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="no haproxy")
def test_supervisor_and_haproxy_become_one_config_with_the_bind_as_wharfs_port(tmp_path):
    port, listen = free_base(1), free_base(1)
    (tmp_path / "supervisord.conf").write_text(textwrap.dedent(f"""\
        [program:api]
        command={PY} {HTTPAPP} --bind 127.0.0.1:{port}
        stopwaitsecs=5
        """))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(textwrap.dedent(f"""\
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 30s
        frontend www
            bind 127.0.0.1:{listen}
            default_backend api
        backend api
            option httpchk GET /health
            server a1 127.0.0.1:{port} check inter 1s rise 1 fall 2
        """))
    valid = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                           text=True, check=False)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    done = wharf_import(tmp_path, "supervisord.conf", "haproxy.cfg", "-o", "wharf.toml")
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "wharf.toml").read_text()
    assert f"port = {port}" in written and "--bind 127.0.0.1:{port}" in written
    check(tmp_path, tmp_path / "wharf.toml")
    with running(tmp_path, tmp_path / "wharf.toml"):
        assert get(listen, "/users").startswith(f"instance=0 port={port} ")


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("nginx") is None,
                    reason="no node or nginx")
def test_a_pm2_cluster_behind_nginx_becomes_one_config(tmp_path):
    port, listen = free_base(2), free_base(1)
    (tmp_path / "ecosystem.config.js").write_text(textwrap.dedent(f"""\
        module.exports = {{ apps: [{{ name: 'web', script: {json.dumps(str(HTTPAPP))},
          interpreter: {json.dumps(PY)}, instances: 2, exec_mode: 'fork',
          increment_var: 'PORT', env: {{ PORT: {port} }} }}] }};
        """))
    (tmp_path / "nginx.conf").write_text(textwrap.dedent(f"""\
        events {{}}
        http {{
            upstream node {{ server 127.0.0.1:{port}; server 127.0.0.1:{port + 1}; }}
            server {{ listen 127.0.0.1:{listen}; location / {{ proxy_pass http://node; }} }}
        }}
        """))
    done = wharf_import(tmp_path, "ecosystem.config.js", "nginx.conf", "-o", "wharf.toml")
    assert done.returncode == 0, done.stderr
    assert 'app = "web"' in (tmp_path / "wharf.toml").read_text(), done.stderr
    check(tmp_path, tmp_path / "wharf.toml")
    with running(tmp_path, tmp_path / "wharf.toml"):
        seen = {get(listen, "/").split()[0] for _ in range(6)}
        assert seen == {"instance=0", "instance=1"}
