"""Loading wharf.toml: defaults, resolution, and every problem reported with its key path."""

import os
import textwrap
from pathlib import Path

import pytest

from wharf.config import load_config, state_dir_of
from wharf.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wharf.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_minimal_app_gets_defaults(tmp_path):
    config = load_config(write(tmp_path, """
        [apps.web]
        command = "python3 -m http.server {port}"
    """))
    web = config.apps["web"]
    assert web.name == "web"
    assert web.command == ("python3", "-m", "http.server", "{port}")
    assert web.instances == 1 and web.autorestart == "always"
    assert web.startsecs == 1.0 and web.startretries == 3 and web.stop_timeout == 10.0
    assert web.cwd == tmp_path
    assert web.stdout_log == tmp_path / ".wharf" / "logs" / "web.out.log"
    assert config.daemon.state_dir == tmp_path / ".wharf"


def test_human_values_are_converted(tmp_path):
    config = load_config(write(tmp_path, """
        [apps.w]
        command = ["w"]
        startsecs = "500ms"
        stop_timeout = "1m"
        stop_signal = "INT"
        max_memory = "512MB"
        log_max_size = "1MiB"
    """))
    w = config.apps["w"]
    assert (w.startsecs, w.stop_timeout, w.stop_signal) == (0.5, 60.0, 2)
    assert (w.max_memory, w.log_max_size) == (512_000_000, 1024 * 1024)


def test_every_problem_is_listed_with_its_key_path(tmp_path):
    found = problems_of(write(tmp_path, """
        [daemn]
        [apps.web]
        command = "x"
        instnces = 2
        instances = 0
        startsecs = "soon"
        autorestart = "sometimes"
        [apps.worker]
        cwd = "nowhere"
    """))
    assert found == [
        "daemn: unknown key (did you mean 'daemon'?)",
        "apps.web.instnces: unknown key (did you mean 'instances'?)",
        "apps.web.instances: must be >= 1, got 0",
        "apps.web.autorestart: must be one of \"always\", \"on-failure\", \"never\", "
        "got 'sometimes'",
        "apps.web.startsecs: must be a duration like \"10s\" or \"250ms\", got 'soon'",
        "apps.worker.command: missing required key",
        f"apps.worker.cwd: is not a directory: {tmp_path / 'nowhere'}",
    ]


def test_resolution_problems_are_reported_together(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps.a]
        command = "x"
        cwd = "missing-dir"
        env_file = "missing.env"
        user = "no-such-user-here"
        port = 9000
        instances = 2
        [apps.b]
        command = "y"
        port = 9001
    """))
    assert any(p.startswith("apps.a.cwd: is not a directory") for p in found)
    assert any(p.startswith("apps.a.env_file: cannot read") for p in found)
    assert "apps.a.user: no such user: 'no-such-user-here'" in found
    assert "apps.b.port: port 9001 is also used by app 'a'" in found


def test_tables_of_the_wrong_type(tmp_path):
    found = problems_of(write(tmp_path, """
        apps = 3
    """))
    assert found == ["apps: must be a table, got an integer (3)"]


def test_invalid_toml_says_where(tmp_path):
    found = problems_of(write(tmp_path, "[apps.web\ncommand = 1\n"))
    assert len(found) == 1 and "invalid TOML" in found[0] and "line 1" in found[0]


def test_missing_file(tmp_path):
    assert problems_of(tmp_path / "nope.toml") == ["file not found"]


def test_env_file_is_merged_under_env(tmp_path):
    (tmp_path / ".env").write_text(
        "# comment\nexport A=1\nB='two words'\nC=3 # trailing\nD=\"x#y\"\n")
    config = load_config(write(tmp_path, """
        [apps.w]
        command = "w"
        env_file = ".env"
        env = { C = "override", E = 5 }
    """))
    assert config.apps["w"].env == {"A": "1", "B": "two words", "C": "override", "D": "x#y",
                                    "E": "5"}


def test_bad_env_file_line_is_named(tmp_path):
    (tmp_path / ".env").write_text("GOOD=1\nnot a line\n")
    found = problems_of(write(tmp_path, """
        [apps.w]
        command = "w"
        env_file = ".env"
    """))
    assert len(found) == 1 and "line 2 is not KEY=value" in found[0]


def test_bad_app_name(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps."../etc"]
        command = "w"
    """))
    assert found[0].startswith('apps.../etc: app names use letters')


def test_state_dir_is_read_even_from_a_broken_file(tmp_path):
    path = write(tmp_path, """
        [daemon]
        state_dir = "/tmp/elsewhere"
        [apps.w]
        instances = "broken"
    """)
    assert state_dir_of(path) == Path("/tmp/elsewhere")
    assert state_dir_of(tmp_path / "missing.toml") == tmp_path / ".wharf" / "missing"


def test_overlong_state_dir_is_refused(tmp_path):
    long = "d" * 120
    found = problems_of(write(tmp_path, f"""
        [daemon]
        state_dir = "{long}"
    """))
    assert found[0].startswith("daemon.state_dir: too long for a Unix socket path")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can switch users")
def test_existing_user_is_accepted_as_root(tmp_path):
    config = load_config(write(tmp_path, """
        [apps.w]
        command = "w"
        user = "nobody"
    """))
    assert config.apps["w"].user == "nobody"


def test_same_except_instances(tmp_path):
    config = load_config(write(tmp_path, """
        [apps.w]
        command = "w"
    """))
    from dataclasses import replace

    w = config.apps["w"]
    assert w.same_except_instances(replace(w, instances=4))
    assert not w.same_except_instances(replace(w, instances=4, startsecs=2.0))


def test_instances_auto_is_one_per_core(tmp_path):
    import os

    config = load_config(write(tmp_path, """
        [apps.w]
        command = "w"
        instances = "auto"
    """))
    assert config.apps["w"].instances == len(os.sched_getaffinity(0))


def test_instances_must_be_a_count_or_auto(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps.w]
        command = "w"
        instances = "many"
    """))
    assert found == ["apps.w.instances: must be a number of instances or \"auto\", got 'many'"]


def test_route_values_out_of_range_are_problems(tmp_path):
    found = problems_of(write(tmp_path, """
        [[routes]]
        servers = ["127.0.0.1:9000"]
        retry_budget = 2
        cookie = "a b"
        health = { interval = "0s", timeout = 0 }
    """))
    assert "routes[0].retry_budget: must be between 0 and 1, got 2" in found
    assert "routes[0].cookie: must be a cookie name (letters, digits, !#$%&'*+-.^_`|~), " \
        "got 'a b'" in found
    assert "routes[0].health.interval: must be more than zero, got '0s'" in found
    assert "routes[0].health.timeout: must be more than zero, got 0" in found


def test_a_header_value_with_a_line_break_is_a_problem(tmp_path):
    found = problems_of(write(tmp_path, """
        [[routes]]
        servers = ["127.0.0.1:9000"]
        add_request_headers = { X-A = "ends in a line break\\n" }
    """))
    assert len(found) == 1 and found[0].startswith("routes[0].add_request_headers"), found


def test_app_sockets_ports_and_proxy_listeners_may_not_share_a_port(tmp_path):
    found = problems_of(write(tmp_path, """
        [proxy]
        listen = ["127.0.0.1:9100", "127.0.0.1:9300"]
        [apps.a]
        command = "x"
        socket = "tcp://127.0.0.1:9100"
        [apps.b]
        command = "x"
        socket = "tcp://0.0.0.0:9200"
        [apps.c]
        command = "x"
        socket = "tcp://127.0.0.2:9200"
        [apps.d]
        command = "x"
        port = 9300
        [apps.e]
        command = "x"
        socket = "tcp://127.0.0.2:9400"
        [apps.f]
        command = "x"
        socket = "tcp://127.0.0.3:9400"
    """))
    assert sorted(found) == [
        "apps.c.socket: port 9200 is also used by apps.b.socket",
        "proxy.listen[0]: port 9100 is also used by apps.a.socket",
        "proxy.listen[1]: port 9300 is also used by app 'd'",
    ]


def test_an_app_name_comes_from_its_table_key_only(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps.web]
        command = "x"
        name = "api"
    """))
    assert found == ["apps.web.name: unknown key"]


# One file with mistakes of every kind: the decoder's (types, ranges, unknown and missing
# keys) and the checks after it (names, directories, routes, ports) are all reported together.
MANY_MISTAKES = """
    [daemon]
    port_range = "9-1"
    [apps.web]
    command = "x"
    instances = "max"
    exec_mode = "cluster"
    max_memory_restart = "300M"
    startsecs = "soon"
    [apps.worker]
    port = 9000
    script = "worker.js"
    cwd = "nowhere"
    stopwaitsecs = 10
    [apps."bad name"]
    command = "y"
    [proxy]
    listen = ["127.0.0.1:9000"]
    workers = "max"
    [[routes]]
    app = "ghost"
    [[routes]]
    path = "/files"
    static = "no-such-dir"
    [[routes]]
    path = "/none"
    strip_prefix = true
    [[routes]]
    path = "/h"
    app = "web"
    health = { interval = "often", rise = 0 }
    balance = "random"
"""


def test_every_mistake_of_every_kind_is_reported_at_once(tmp_path):
    found = problems_of(write(tmp_path, MANY_MISTAKES))
    cpus = len(os.sched_getaffinity(0))
    expected = [
        "daemon.port_range: ",
        "apps.web.exec_mode: unknown key (Wharf has no exec_mode: every app runs `instances` "
        "processes; for one listening socket shared by all of them, set `socket`)",
        "apps.web.max_memory_restart: unknown key (PM2's name; Wharf's is 'max_memory')",
        f"apps.web.instances: \"max\" is PM2's spelling: give a number, or \"auto\" for one per "
        f"CPU ({cpus} here)",
        "apps.web.startsecs: must be a duration",
        "apps.worker.script: unknown key (PM2's name; Wharf's is 'command')",
        "apps.worker.stopwaitsecs: unknown key (Supervisor's name; Wharf's is 'stop_timeout')",
        "apps.worker.command: missing required key",
        "proxy.workers: \"max\" is PM2's spelling: give a number, or \"auto\"",
        "routes[3].balance: must be one of",
        "routes[3].health.interval: must be a duration",
        "routes[3].health.rise: must be >= 1, got 0",
        "apps.bad name: app names use letters",
        "apps.worker.cwd: is not a directory",
        "routes[0].app: no app named 'ghost'",
        "routes[1].static: is not a readable directory",
        "routes[2]: needs exactly one of service, app, servers, static or redirect",
        "proxy.listen[0]: port 9000 is also used by app 'worker'",
    ]
    assert len(found) == len(expected), "\n".join(found)
    for problem, start in zip(sorted(found), sorted(expected), strict=True):
        assert problem.startswith(start), (problem, start)


def test_a_value_reported_wrong_is_not_checked_again(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps.a]
        command = "x"
        backoff = "5m"
        backoff_max = "never"
        [[routes]]
        static = 3
    """))
    assert [p.split(":")[0] for p in found] == ["apps.a.backoff_max", "routes[0].static"]


def test_a_route_to_an_app_whose_table_is_broken_is_not_called_unknown(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps]
        web = 3
        "bad/name" = 4
        [[routes]]
        app = "web"
    """))
    assert found == ["apps.web: must be a table, got an integer (3)",
                     "apps.bad/name: must be a table, got an integer (4)",
                     "apps.bad/name: app names use letters, digits, '.', '_' and '-' (at most 64), "
                     "starting with a letter or digit"]


@pytest.mark.parametrize(("key", "value", "wharf_key"), [
    ("numprocs", "2", "instances"), ("stopsignal", '"INT"', "stop_signal"),
    ("exitcodes", "[0]", "exit_codes"), ("environment", "{}", "env"),
    ("directory", '"."', "cwd"), ("stdout_logfile", '"o.log"', "stdout_log"),
])
def test_supervisor_spellings_name_wharf_key(tmp_path, key, value, wharf_key):
    found = problems_of(write(tmp_path, f"""
        [apps.a]
        command = "x"
        {key} = {value}
    """))
    assert found == [f"apps.a.{key}: unknown key (Supervisor's name; Wharf's is '{wharf_key}')"]


def test_each_config_file_gets_its_own_state_dir(tmp_path):
    app = '[apps.w]\ncommand = "w"\n'
    (tmp_path / "wharf.toml").write_text(app)
    (tmp_path / "b.toml").write_text(app)
    assert load_config(tmp_path / "wharf.toml").daemon.state_dir == tmp_path / ".wharf"
    b = load_config(tmp_path / "b.toml")
    assert b.daemon.state_dir == tmp_path / ".wharf" / "b"
    assert b.apps["w"].stdout_log == tmp_path / ".wharf" / "b" / "logs" / "w.out.log"
    assert state_dir_of(tmp_path / "b.toml") == tmp_path / ".wharf" / "b"
    assert state_dir_of(tmp_path / "gone.toml") == tmp_path / ".wharf" / "gone"


def test_an_explicit_state_dir_is_relative_to_the_config(tmp_path):
    (tmp_path / "b.toml").write_text('[daemon]\nstate_dir = "run"\n')
    assert load_config(tmp_path / "b.toml").daemon.state_dir == tmp_path / "run"
    assert state_dir_of(tmp_path / "b.toml") == tmp_path / "run"


@pytest.mark.parametrize(("value", "meant"), [
    ("true", "always"), ('"unexpected"', "on-failure"), ("false", "never")])
def test_supervisor_autorestart_values_name_wharf_value(tmp_path, value, meant):
    found = problems_of(write(tmp_path, f"""
        [apps.a]
        command = "x"
        autorestart = {value}
    """))
    assert len(found) == 1 and found[0].startswith("apps.a.autorestart: must be one of")
    assert found[0].endswith(f"is Wharf's \"{meant}\")")


def test_access_log_rotation_keys(tmp_path):
    config = load_config(write(tmp_path, """
        [proxy]
        access_log = "combined"
        access_log_max_size = "100MB"
        access_log_backups = 3
    """))
    assert config.proxy is not None
    assert (config.proxy.access_log_max_size, config.proxy.access_log_backups) == (10**8, 3)
    default = load_config(write(tmp_path, "[proxy]\n")).proxy
    assert default is not None and default.access_log_max_size == 0
    assert problems_of(write(tmp_path, "[proxy]\naccess_log_backups = -1\n")) == [
        "proxy.access_log_backups: must be >= 0, got -1"]


# -- Unix sockets ---------------------------------------------------------------------------

def test_unix_servers_and_sockets_resolve_relative_to_the_config(tmp_path):
    config = load_config(write(tmp_path, """
        [apps.web]
        command = "gunicorn --bind unix:{socket} app:app"
        socket = "unix:run/web.sock"
        [[routes]]
        path = "/api"
        servers = ["unix:/run/api.sock", { address = "unix:api2.sock", weight = 2 }]
        [[routes]]
        app = "web"
        [services.api]
        servers = ["unix:run/api.sock"]
    """))
    web = config.apps["web"]
    assert web.socket == (f"unix:{tmp_path}/run/web.sock", 0)
    assert config.services["api"].servers[0].host == f"unix:{tmp_path}/run/api.sock"
    assert web.socket_mode == 0o660 and web.socket_group is None
    servers = config.routes[0].servers
    assert [(s.host, s.port, s.weight) for s in servers] == [
        ("unix:/run/api.sock", 0, 1), (f"unix:{tmp_path}/api2.sock", 0, 2)]


def test_a_unix_socket_path_longer_than_sun_path_is_an_error(tmp_path):
    long = "/tmp/" + "d" * 100 + "/web.sock"
    found = problems_of(write(tmp_path, f"""
        [apps.web]
        command = "x"
        socket = "unix:{long}"
        [[routes]]
        servers = ["unix:{long}"]
    """))
    assert found == [
        f"apps.web.socket: the socket path is 114 bytes long ({long}): a Unix socket's path "
        "may have at most 107; choose a shorter one",
        f"routes[0].servers[0]: the socket path is 114 bytes long ({long}): a Unix socket's "
        "path may have at most 107; choose a shorter one"]


def test_bad_unix_socket_settings_are_reported_with_their_key_paths(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps.a]
        command = "x --port {port}"
        socket = "unix:/run/a.sock"
        socket_mode = 660
        [apps.b]
        command = "x --bind {socket}"
        socket_group = "no-such-group-here"
        [apps.c]
        command = "x"
        socket = "tcp://127.0.0.1:9100"
        socket_mode = "0600"
        [apps.d]
        command = "x"
        socket = "unix:@abstract"
        [apps.e]
        command = "x"
        socket = "unix:"
        [[routes]]
        servers = ["unix:"]
    """))
    assert sorted(found) == sorted([
        "apps.a.socket_mode: must be an octal mode string like \"0660\", got 660",
        "apps.a.command: {port} has no value with a unix: socket (there is no port): use "
        "{socket}, its path",
        "apps.b.socket_group: no such group: 'no-such-group-here'",
        "apps.b.command: {socket} has no value: the app has no socket (set socket = "
        "\"unix:/path\" or \"tcp://host:port\")",
        "apps.c.socket_mode: is for a Unix socket: set it with socket = \"unix:/path/to.sock\"",
        "apps.d.socket: abstract Unix sockets are not supported, got 'unix:@abstract': name a "
        "file",
        "apps.e.socket: must be \"unix:/path/to.sock\", got 'unix:'",
        "routes[0].servers[0]: must be \"unix:/path/to.sock\", got 'unix:'",
    ])


def test_two_apps_cannot_share_a_unix_socket_nor_take_the_daemons_own(tmp_path):
    found = problems_of(write(tmp_path, """
        [apps.a]
        command = "x"
        socket = "unix:/run/one.sock"
        [apps.b]
        command = "x"
        socket = "unix:/run/one.sock"
        [apps.c]
        command = "x"
        socket = "unix:.wharf/wharf.sock"
    """))
    assert sorted(found) == [
        "apps.b.socket: unix:/run/one.sock is also used by apps.a.socket",
        "apps.c.socket: is one of the daemon's own sockets in state_dir: choose another path"]
