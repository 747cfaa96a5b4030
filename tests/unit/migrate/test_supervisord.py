"""supervisord.conf -> wharf.toml: Supervisor's parsing, expansions and key mapping."""

import shutil
import subprocess

import pytest

from tests.unit.migrate.helpers import dropped, imported
from wharf.migrate.supervisord import env_pairs, expand


def test_a_program_maps_key_by_key(tmp_path):
    result = imported(tmp_path, "supervisord.conf", """\
        [program:web]
        command=/usr/bin/python3 -m http.server  ; inline comment
        directory=/srv/web
        environment=A="1,2",B=two
        autorestart=unexpected
        exitcodes=0,3
        startsecs=5
        startretries=7
        stopsignal=INT
        stopwaitsecs=90
        stdout_logfile=/var/log/web.log
        stdout_logfile_maxbytes=50MB
        stdout_logfile_backups=4
        stderr_logfile=/var/log/web.err
        user=www-data
        """)
    assert result.data["apps"]["web"] == {
        "command": "/usr/bin/python3 -m http.server", "cwd": "/srv/web", "user": "www-data",
        "env": {"A": "1,2", "B": "two"}, "autorestart": "on-failure", "exit_codes": [0, 3],
        "startsecs": 5, "startretries": 7, "stop_timeout": "90s", "stop_signal": "INT",
        "stdout_log": "/var/log/web.log", "stderr_log": "/var/log/web.err",
        "log_max_size": "50MiB", "log_backups": 4}
    assert result.dropped == []


@pytest.mark.parametrize(("value", "wharf"), [("true", "always"), ("false", "never"),
                                              ("unexpected", "on-failure")])
def test_autorestart_values(tmp_path, value, wharf):
    result = imported(tmp_path, "s.conf", f"[program:a]\ncommand=x\nautorestart={value}\n")
    assert result.data["apps"]["a"]["autorestart"] == wharf


def test_supervisors_default_autorestart_is_written_out(tmp_path):
    result = imported(tmp_path, "s.conf", "[program:a]\ncommand=x\n")
    assert result.data["apps"]["a"]["autorestart"] == "on-failure"


def test_numprocs_with_a_port_base_becomes_instances_and_port(tmp_path):
    result = imported(tmp_path, "s.conf", """\
        [program:web]
        command=gunicorn app --bind 127.0.0.1:80%(process_num)02d
        process_name=%(program_name)s_%(process_num)02d
        numprocs=4
        environment=PORT=80%(process_num)02d,X=1
        """)
    assert result.data["apps"]["web"] == {
        "command": "gunicorn app --bind 127.0.0.1:{port}", "port": 8000, "instances": 4,
        "env": {"X": "1"}, "autorestart": "on-failure"}


def test_numprocs_with_a_plain_process_num_is_the_instance(tmp_path):
    result = imported(tmp_path, "s.conf", """\
        [program:worker]
        command=celery worker -n w%(process_num)d
        numprocs=3
        stdout_logfile=/var/log/w-%(process_num)d.log
        """)
    app = result.data["apps"]["worker"]
    assert app["command"] == "celery worker -n w{instance}" and app["instances"] == 3
    assert "stdout_log" not in app
    assert dropped(result) == [(4, "stdout_logfile = /var/log/w-%(process_num)d.log")]


def test_process_num_that_wharf_cannot_write_splits_into_one_app_per_process(tmp_path):
    result = imported(tmp_path, "s.conf", """\
        [program:beat]
        command=beat --id %(process_num)02d
        process_name=beat-%(process_num)02d
        numprocs=2
        numprocs_start=1
        """)
    assert {n: a["command"] for n, a in result.data["apps"].items()} == {
        "beat-01": "beat --id 01", "beat-02": "beat --id 02"}
    assert any("became the apps beat-01, beat-02" in n for n in result.notes)


def test_includes_here_and_env_expansions(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_HOME", "/opt/app")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text(
        "[program:a]\ncommand=%(ENV_APP_HOME)s/run --conf %(here)s/a.ini\n")
    (tmp_path / "conf.d" / "b.conf").write_text("[program:b]\ncommand=b\n[include]\nfiles=x\n")
    result = imported(tmp_path, "supervisord.conf", "[include]\nfiles = conf.d/*.conf\n")
    assert result.data["apps"]["a"]["command"] == \
        f"/opt/app/run --conf {tmp_path}/conf.d/a.ini"
    assert result.data["apps"]["b"]["command"] == "b"
    assert [d.setting for d in result.dropped] == ["[include]"]
    assert str(result.dropped[0].where.file).endswith("b.conf")


def test_priority_orders_the_apps_and_is_reported(tmp_path):
    result = imported(tmp_path, "s.conf", """\
        [program:late]
        command=late
        priority=900
        [program:early]
        command=early
        priority=10
        """)
    assert list(result.data["apps"]) == ["early", "late"]
    assert dropped(result) == [(3, "priority = 900"), (6, "priority = 10")]


def test_settings_without_a_wharf_key_are_listed_with_their_line(tmp_path):
    result = imported(tmp_path, "s.conf", """\
        [supervisord]
        logfile=/tmp/s.log
        [group:g]
        programs=a
        [program:a]
        command=a
        umask=022
        autostart=false
        redirect_stderr=true
        stopasgroup=false
        stdout_logfile=NONE
        stdout_logfile_maxbytes=0
        """)
    assert dropped(result) == [
        (1, "[supervisord] (logfile)"), (3, "[group:g] programs = a"),
        (7, "umask = 022"), (8, "autostart = false"), (9, "redirect_stderr = true"),
        (10, "stopasgroup = false"), (11, "stdout_logfile = NONE"),
        (12, "stdout_logfile_maxbytes = 0")]


def test_environment_is_read_as_supervisor_reads_it():
    assert env_pairs('A="x,y",B=2,C=\'q\'') == {"A": "x,y", "B": "2", "C": "q"}
    with pytest.raises(ValueError):
        env_pairs("A=1,B")


def test_expansions_follow_python_percent_formatting():
    assert expand("%(n)s-%(p)03d %%", {"n": "web", "p": 7}) == "web-007 %"
    with pytest.raises(ValueError, match="cannot be expanded"):
        expand("%(nope)s", {"n": "x"})
    with pytest.raises(ValueError, match="%%"):
        expand("100%", {})


@pytest.mark.skipif(shutil.which("echo_supervisord_conf") is None,
                    reason="Debian's supervisor package is not installed (.ci/run installs it)")
def test_the_sample_of_echo_supervisord_conf_with_its_program_enabled(tmp_path):
    sample = subprocess.run(["echo_supervisord_conf"], capture_output=True, text=True,
                            check=True).stdout
    lines, on = [], False
    for line in sample.splitlines():  # uncomment the [program:theprogramname] block
        on = on or line.startswith(";[program:")
        on = on and line.strip() != ""
        lines.append(line[1:] if on else line)
    result = imported(tmp_path, "supervisord.conf", "\n".join(lines) + "\n")
    assert result.data["apps"]["theprogramname"] == {
        "command": "/bin/cat", "cwd": "/tmp", "user": "chrism", "env": {"A": "1", "B": "2"},
        "autorestart": "on-failure", "exit_codes": [0], "startsecs": 1, "startretries": 3,
        "stop_timeout": "10s", "stop_signal": "QUIT", "stdout_log": "/a/path",
        "log_max_size": "1MiB", "log_backups": 10}
    settings = [d.setting.split(" ")[0] for d in result.dropped]
    assert settings == ["[unix_http_server]", "[supervisord]", "[rpcinterface:supervisor]",
                        "[supervisorctl]", "umask", "stopasgroup", "killasgroup",
                        "redirect_stderr", "stdout_capture_maxbytes", "stderr_logfile",
                        "stderr_capture_maxbytes", "serverurl"]
