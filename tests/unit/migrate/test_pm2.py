"""PM2 ecosystem files (JSON, YAML) -> wharf.toml. The JavaScript form, run by node, is
tested in tests/integration/test_import.py."""

import json

import pytest

from tests.unit.migrate.helpers import imported
from wharf.errors import UsageError

API = {"name": "api", "script": "server.js", "instances": "max", "exec_mode": "cluster",
       "node_args": "--max-old-space-size=512", "args": "--color",
       "env": {"NODE_ENV": "development", "PORT": 3000, "DEBUG": True},
       "env_production": {"NODE_ENV": "production"}, "env_staging": {"NODE_ENV": "staging"},
       "max_memory_restart": "300M", "max_restarts": 10, "min_uptime": "10s",
       "kill_timeout": 5000, "listen_timeout": 8000, "wait_ready": True,
       "cron_restart": "0 4 * * *", "watch": ["src"], "ignore_watch": ["node_modules"],
       "out_file": "logs/out.log", "error_file": "logs/err.log", "log_file": "logs/all.log",
       "merge_logs": True}


def test_every_key_of_an_app(tmp_path):
    text = json.dumps({"apps": [API]})
    result = imported(tmp_path, "ecosystem.json", text, env="production")
    assert result.data["apps"]["api"] == {
        "command": ["node", "--max-old-space-size=512", "server.js", "--color"],
        "instances": "auto", "port": 3000, "env": {"NODE_ENV": "production", "DEBUG": "true"},
        "startretries": 10, "startsecs": 10, "stop_timeout": "5s", "ready_timeout": "8s",
        "max_memory": "300MiB", "stdout_log": "logs/out.log", "stderr_log": "logs/err.log",
        "cron_restart": "0 4 * * *"}
    assert sorted(d.setting.split(" ")[0] for d in result.dropped) == [
        "env_staging", "ignore_watch", "log_file", "wait_ready", "watch"]
    assert "not found in the app's directory: src" in \
        next(d.reason for d in result.dropped if d.setting.startswith("watch"))
    assert all(d.where.key == "apps[0] (api)" for d in result.dropped)


def test_without_env_name_only_env_is_used(tmp_path):
    result = imported(tmp_path, "ecosystem.json", json.dumps({"apps": [API]}))
    assert result.data["apps"]["api"]["env"]["NODE_ENV"] == "development"
    assert {"env_production = {\"NODE_ENV\": \"production\"}", "env_staging = {\"NODE_ENV\": "
            "\"staging\"}"} <= {d.setting for d in result.dropped}


def test_yaml_with_an_interpreter_and_restart_settings(tmp_path):
    result = imported(tmp_path, "ecosystem.yaml", """\
        apps:
          - name: worker
            script: worker.py
            interpreter: /usr/bin/python3
            args: [--queue, default]
            cwd: app
            autorestart: false
            restart_delay: 3000
            stop_exit_codes: [0, 3]
          - script: bin/server
            instances: 2
        """)
    assert result.data["apps"] == {
        "worker": {"command": ["/usr/bin/python3", "worker.py", "--queue", "default"],
                   "cwd": "app", "autorestart": "never", "exit_codes": [0, 3],
                   "backoff": "3s", "backoff_max": "3s"},
        "server": {"command": ["bin/server"], "instances": 2}}
    assert result.dropped == []


def test_the_interpreter_follows_the_extension(tmp_path):
    apps = [{"name": n, "script": s} for n, s in (("a", "a.py"), ("b", "b.sh"), ("c", "c"))]
    result = imported(tmp_path, "pm2.json", json.dumps(apps))
    assert [a["command"] for a in result.data["apps"].values()] == [
        ["python3", "a.py"], ["bash", "b.sh"], ["c"]]


def test_deploy_and_unknown_keys_are_reported(tmp_path):
    text = json.dumps({"apps": [{"name": "a", "script": "a.js", "colour": 1}],
                       "deploy": {"production": {}}})
    result = imported(tmp_path, "ecosystem.json", text)
    assert [d.setting for d in result.dropped] == ["deploy", "colour = 1"]


def test_a_file_without_apps_is_refused(tmp_path):
    with pytest.raises(UsageError, match="apps"):
        imported(tmp_path, "ecosystem.json", '{"name": 1}', fmt="pm2")


def test_watch_ignore_watch_and_watch_delay_are_carried_over(tmp_path):
    (tmp_path / "src").mkdir()
    app = {"name": "api", "script": "server.js", "watch": ["src"], "watch_delay": 1000,
           "ignore_watch": ["node_modules", "./src/*.log"], "cron_restart": "*/5 * * * *"}
    result = imported(tmp_path, "ecosystem.json", json.dumps({"apps": [app]}))
    assert result.data["apps"]["api"] == {
        "command": ["node", "server.js"], "watch": ["src"], "watch_delay": "1000ms",
        "watch_ignore": ["node_modules", "src/*.log"], "cron_restart": "*/5 * * * *"}
    assert result.dropped == []


def test_watch_true_watches_the_app_directory(tmp_path):
    app = {"name": "api", "script": "server.js", "watch": True}
    assert imported(tmp_path, "ecosystem.json", json.dumps({"apps": [app]})
                    ).data["apps"]["api"]["watch"] == ["."]


def test_a_six_field_cron_is_reported_not_carried(tmp_path):
    app = {"name": "api", "script": "server.js", "cron_restart": "0 0 4 * * *"}
    result = imported(tmp_path, "ecosystem.json", json.dumps({"apps": [app]}))
    assert "cron_restart" not in result.data["apps"]["api"]
    assert "5-field" in result.dropped[0].reason
