"""Procfile (+ .env) -> wharf.toml."""

from tests.unit.migrate.helpers import dropped, imported
from wharf.migrate.procfile import WEB_LISTEN, shell_command


def test_one_app_per_process_type_and_a_route_to_web(tmp_path):
    (tmp_path / ".env").write_text("SECRET=x\n")
    result = imported(tmp_path, "Procfile", """\
        web: gunicorn app:app --bind 0.0.0.0:$PORT
        worker: celery -A app worker --concurrency ${CONCURRENCY:-2}
        # a comment
        release: ./manage.py migrate && ./manage.py collectstatic
        nonsense
        """)
    assert result.data == {
        "apps": {"web": {"command": ["gunicorn", "app:app", "--bind", "0.0.0.0:{port}"],
                         "env_file": ".env", "depends_on": ["release"]},
                 "worker": {"command": ["/bin/sh", "-c", "exec celery -A app worker "
                                        "--concurrency ${CONCURRENCY:-2}"], "env_file": ".env",
                            "depends_on": ["release"]},
                 "release": {"command": ["/bin/sh", "-c", "./manage.py migrate && "
                                         "./manage.py collectstatic"], "env_file": ".env",
                             "autorestart": "never"}},
        "proxy": {"listen": [WEB_LISTEN]},
        "routes": [{"path": "/", "app": "web"}]}
    assert dropped(result) == [(5, "nonsense")]


def test_no_web_means_no_proxy(tmp_path):
    result = imported(tmp_path, "Procfile", "worker: python worker.py\n")
    assert "proxy" not in result.data and "routes" not in result.data
    assert "env_file" not in result.data["apps"]["worker"]


def test_shell_syntax_needs_a_shell():
    assert shell_command("python -m http.server ${PORT}") == \
        ["python", "-m", "http.server", "{port}"]
    assert shell_command("bin/run > out.log")[:2] == ["/bin/sh", "-c"]
