"""`wharf import`, run for real: each format's result passes `wharf check`, and one file of
each is started with `wharf up -d` and answers (through the proxy where the source had one)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import APPS, PY, Wharf, pid_alive, wait_until

HTTPAPP = APPS / "httpapp.py"


def wharf_import(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `wharf import ARGS` in `cwd`."""
    return subprocess.run([PY, "-m", "wharf", "import", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def free_base(count: int, step: int = 1) -> int:
    """A port, a multiple of `step`, free with the `count - 1` after it."""
    for _ in range(100):
        base = random.randrange(30000 // step, (32768 - count) // step) * step
        with contextlib.ExitStack() as stack:
            try:
                for p in range(base, base + count):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return base
    raise AssertionError("no free ports")


def get(port: int, path: str = "/", host: str | None = None) -> str:
    """The body of GET http://127.0.0.1:PORT/PATH (with Host: `host`), once it answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Host": host} if host else {})

    def attempt() -> str | None:
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.read().decode()
        except OSError:
            return None
    return wait_until(attempt, timeout=20, message=f"an answer on {port}{path}")  # type: ignore


@contextlib.contextmanager
def running(root: Path, config: Path) -> Iterator[Wharf]:
    """`wharf up -d` on `config`; `wharf down` after, and no process left behind."""
    w = Wharf(root)
    w.config = config
    try:
        started = w.run("up", "-d")
        assert started.returncode == 0, started.stdout + started.stderr
        w.status()
        yield w
    finally:
        with contextlib.suppress(Exception):
            w.status()
        w.run("down")
        for pid in w.seen_pids:
            if pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def backends(count: int) -> Iterator[list[int]]:
    """`count` httpapp servers started by the test itself, as a proxy's upstreams."""
    base = free_base(count)
    procs = [subprocess.Popen([PY, str(HTTPAPP)], env={**os.environ, "PORT": str(base + i),
                                                        "WHARF_INSTANCE": f"b{i}"})
             for i in range(count)]
    try:
        for i in range(count):
            get(base + i)
        yield [base + i for i in range(count)]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def check(cwd: Path, config: Path) -> None:
    done = subprocess.run([PY, "-m", "wharf", "-c", str(config), "check"], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_output_goes_to_stdout_and_what_is_left_to_stderr(tmp_path):
    (tmp_path / "Procfile").write_text("web: python3 app.py\nweird line\n")
    done = wharf_import(tmp_path, "Procfile")
    assert done.returncode == 0
    assert '[apps.web]\ncommand = ["python3", "app.py"]' in done.stdout
    assert "wharf import: not carried over (1):\n  Procfile:2: weird line: not `type: " \
        "command`" in done.stderr


def test_an_existing_output_is_kept_without_force(tmp_path):
    (tmp_path / "Procfile").write_text("worker: python3 w.py\n")
    (tmp_path / "wharf.toml").write_text("# mine\n")
    refused = wharf_import(tmp_path, "Procfile", "-o", "wharf.toml")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (tmp_path / "wharf.toml").read_text() == "# mine\n"
    assert wharf_import(tmp_path, "Procfile", "-o", "wharf.toml", "--force").returncode == 0
    check(tmp_path, tmp_path / "wharf.toml")


@pytest.mark.skipif(shutil.which("echo_supervisord_conf") is None, reason="no supervisor")
def test_the_sample_supervisord_conf_passes_check(tmp_path):
    sample = subprocess.run(["echo_supervisord_conf"], capture_output=True, text=True,
                            check=True).stdout
    (tmp_path / "supervisord.conf").write_text(sample)
    done = wharf_import(tmp_path, "supervisord.conf", "-o", "wharf.toml")
    assert done.returncode == 0, done.stderr
    assert "[supervisord] (logfile," in done.stderr
    check(tmp_path, tmp_path / "wharf.toml")


def test_supervisord_numprocs_on_a_port_base_run_as_instances(tmp_path):
    base = free_base(2, step=100)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "supervisord.conf").write_text("[supervisord]\n[include]\nfiles=conf.d/*\n")
    (tmp_path / "conf.d" / "web.conf").write_text(textwrap.dedent(f"""\
        [program:web]
        command={PY} {HTTPAPP} --bind 127.0.0.1:{base // 100}%(process_num)02d
        process_name=%(program_name)s_%(process_num)02d
        numprocs=2
        directory=%(here)s
        stopwaitsecs=5
        """))
    assert wharf_import(tmp_path, "supervisord.conf", "-o", "wharf.toml").returncode == 0
    check(tmp_path, tmp_path / "wharf.toml")
    with running(tmp_path, tmp_path / "wharf.toml"):
        assert get(base).startswith(f"instance=0 port={base} ")
        assert get(base + 1).startswith(f"instance=1 port={base + 1} ")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_a_pm2_ecosystem_config_js_is_evaluated_by_node_and_runs(tmp_path):
    port = free_base(1)
    (tmp_path / "ecosystem.config.js").write_text(textwrap.dedent(f"""\
        const common = {{ interpreter: {json.dumps(PY)}, kill_timeout: 3000 }};
        module.exports = {{ apps: [{{ ...common, name: 'web', script: {json.dumps(str(HTTPAPP))},
          env: {{ PORT: {port} }}, env_production: {{ MODE: 'prod' }},
          watch: true, cron_restart: '0 4 * * *' }}] }};
        """))
    done = wharf_import(tmp_path, "ecosystem.config.js", "-o", "wharf.toml", "--env",
                        "production")
    assert done.returncode == 0, done.stderr
    assert "cron_restart" not in done.stderr and "watch" not in done.stderr, done.stderr
    written = (tmp_path / "wharf.toml").read_text()
    assert 'watch = ["."]' in written and 'cron_restart = "0 4 * * *"' in written
    check(tmp_path, tmp_path / "wharf.toml")
    with running(tmp_path, tmp_path / "wharf.toml"):
        assert get(port).startswith(f"instance=0 port={port} ")


def test_a_procfile_web_process_is_reached_through_the_proxy(tmp_path):
    (tmp_path / "Procfile").write_text(f"web: {PY} {HTTPAPP}\n")
    (tmp_path / ".env").write_text("GREETING=hi\n")
    assert wharf_import(tmp_path, "Procfile", "-o", "wharf.toml").returncode == 0
    config = tmp_path / "wharf.toml"
    listen = free_base(1)
    config.write_text(config.read_text().replace("127.0.0.1:5000", f"127.0.0.1:{listen}"))
    check(tmp_path, config)
    with running(tmp_path, config):
        assert get(listen, "/hello").startswith("instance=0 port=")


@pytest.mark.skipif(shutil.which("nginx") is None, reason="no nginx")
def test_an_nginx_site_with_an_upstream_and_static_files_runs(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.css").write_text("body {}\n")
    listen = free_base(1)
    with backends(2) as (a, b):
        conf = tmp_path / "nginx.conf"
        conf.write_text(textwrap.dedent(f"""\
            events {{ worker_connections 64; }}
            http {{
                upstream django {{ server 127.0.0.1:{a} weight=2; server 127.0.0.1:{b}; }}
                server {{
                    listen 127.0.0.1:{listen};
                    server_name shop.example.com;
                    client_max_body_size 5m;
                    location /static/ {{ alias {tmp_path}/static/; }}
                    location / {{ proxy_pass http://django; proxy_read_timeout 30s; }}
                }}
            }}
            """))
        valid = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(tmp_path), "-g",
                                f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/e.log;"],
                               capture_output=True, text=True, check=False)
        assert valid.returncode == 0, valid.stderr
        done = wharf_import(tmp_path, "nginx.conf", "-o", "wharf.toml")
        assert done.returncode == 0, done.stderr
        assert 'balance = "weighted"' in (tmp_path / "wharf.toml").read_text()
        check(tmp_path, tmp_path / "wharf.toml")
        with running(tmp_path, tmp_path / "wharf.toml"):
            host = "shop.example.com"
            assert get(listen, "/static/app.css", host) == "body {}\n"
            seen = {get(listen, "/x", host).split()[0] for _ in range(6)}
            assert seen == {"instance=b0", "instance=b1"}


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="no haproxy")
def test_a_haproxy_frontend_with_acls_and_checked_servers_runs(tmp_path):
    listen = free_base(1)
    with backends(2) as (a, b):
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(textwrap.dedent(f"""\
            defaults
                mode http
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend www
                bind 127.0.0.1:{listen}
                acl is_api path_beg /api
                use_backend api if is_api
                default_backend web
            backend web
                balance roundrobin
                option httpchk GET /health
                server w1 127.0.0.1:{a} check inter 1s rise 1 fall 2
            backend api
                balance leastconn
                server a1 127.0.0.1:{b} check
            """))
        valid = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                               text=True, check=False)
        assert valid.returncode == 0, valid.stdout + valid.stderr
        done = wharf_import(tmp_path, "haproxy.cfg", "-o", "wharf.toml")
        assert done.returncode == 0, done.stderr
        check(tmp_path, tmp_path / "wharf.toml")
        with running(tmp_path, tmp_path / "wharf.toml"):
            assert get(listen, "/api/users").startswith("instance=b1 ")
            assert get(listen, "/").startswith("instance=b0 ")


