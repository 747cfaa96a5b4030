"""The admin HTTP API of a real daemon: the token, and the same commands as the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading

from tests.integration.admin_fixture import Admin
from tests.integration.conftest import Wharf, wait_until

# Fields of a status row that move between two reads.
VOLATILE = ("uptime_s", "cpu_percent", "rss_bytes", "next_try_in_s", "inflight")


def steady(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def test_without_a_token_or_with_a_wrong_one_every_answer_is_401(admin: Admin):
    for token in (None, "wrong", admin.token + "x"):
        for method, path in (("GET", "/api/status"), ("POST", "/api/apps/web/restart"),
                             ("GET", "/api/openapi.json"), ("GET", "/api/events")):
            answer = admin.request(method, path, token=token)
            assert answer.status == 401, (method, path, token)
            assert answer.json() == {"error": "unauthorized"}
            assert answer.headers["www-authenticate"].startswith("Bearer")


def test_metrics_needs_no_token_by_default(admin: Admin):
    answer = admin.request("GET", "/metrics", token=None)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")


def test_the_token_file_is_created_for_the_owner_only(admin: Admin):
    path = admin.wharf.root / ".wharf" / "admin.token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(admin.token) >= 40
    assert admin.token not in (admin.wharf.root / "daemon-foreground.log").read_text()


def test_status_over_http_is_what_the_cli_prints(admin: Admin):
    wait_until(lambda: all(r["health"] == "up" for r in admin.wharf.backends()),
               message="the backends to be up")
    cli = admin.wharf.status_json()
    answer = admin.request("GET", "/api/status")
    assert answer.status == 200
    assert steady(answer.json()) == steady(cli)
    assert {r["kind"] for r in cli} == {"instance", "backend"}


def test_an_unknown_app_is_404_and_a_bad_parameter_400(admin: Admin):
    assert admin.request("POST", "/api/apps/nope/restart").status == 404
    answer = admin.request("POST", "/api/apps/web/scale?count=many")
    assert answer.status == 400 and "count" in answer.json()["error"]
    assert admin.request("POST", "/api/apps/all/scale?count=2").status == 400


def test_restart_over_http_replaces_the_processes(admin: Admin):
    before = {r["pid"] for r in admin.wharf.instances("web")}
    answer = admin.request("POST", "/api/apps/web/restart")
    assert answer.status == 200, answer.body
    after = {r["pid"] for r in answer.json() if r["app"] == "web"}
    assert len(after) == 2 and not after & before
    assert {r["pid"] for r in admin.wharf.instances("web")} == after


def test_a_restart_streams_its_progress_then_the_result(admin: Admin):
    answer = admin.stream("POST", "/api/apps/hup/restart", "application/x-ndjson")
    try:
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in answer.lines]
    finally:
        answer.close()
    kinds = [line["progress"]["kind"] for line in lines[:-1]]
    assert "instance.stopped" in kinds and "instance.started" in kinds
    assert all(line["progress"]["app"] == "hup" for line in lines[:-1])
    final = lines[-1]
    assert final["ok"] and final["result"][0]["app"] == "hup"


def test_signal_over_http_names_each_process(admin: Admin):
    answer = admin.request("POST", "/api/apps/web/signal?signal=CONT")
    assert answer.status == 200
    assert {r["pid"] for r in answer.json()} == {r["pid"] for r in admin.wharf.instances("web")}


def test_log_follow_over_sse_gets_a_new_line(admin: Admin):
    answer = admin.stream("GET", "/api/apps/hup/logs?lines=0", "text/event-stream")
    got: list[dict] = []

    def read() -> None:
        with contextlib.suppress(OSError, ValueError):  # closed under it at the end
            for raw in answer.lines:
                if raw.startswith(b"data: "):
                    got.append(json.loads(raw[6:]))

    threading.Thread(target=read, daemon=True).start()
    try:
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        # A new process prints "ready" (a signal could come before its handler is set).
        assert admin.request("POST", "/api/apps/hup/restart").status == 200
        wait_until(lambda: any(g["data"].endswith("| ready\n") for g in list(got)),
                   message="the new log line in the stream")
        assert all(g["stream"] == "out" for g in got)
    finally:
        answer.close()


def test_events_over_sse_follow_with_ids(admin: Admin):
    answer = admin.stream("GET", "/api/events?lines=0", "text/event-stream")
    ids: list[int] = []
    events: list[dict] = []

    def read() -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in answer.lines:
                if raw.startswith(b"id: "):
                    ids.append(int(raw[4:]))
                elif raw.startswith(b"data: "):
                    events.append(json.loads(raw[6:]))

    threading.Thread(target=read, daemon=True).start()
    try:
        assert admin.request("POST", "/api/apps/hup/stop").status == 200
        wait_until(lambda: any(e["kind"] == "instance.stopped" for e in list(events)),
                   message="the stop in the event stream")
        assert ids == [e["seq"] for e in events[:len(ids)]]
    finally:
        answer.close()
        admin.request("POST", "/api/apps/hup/start")


def test_events_as_json_are_what_the_cli_prints(admin: Admin):
    answer = admin.request("GET", "/api/events?lines=5")
    assert answer.status == 200
    events = answer.json()
    cli = admin.wharf.run("events", "--json", "-n", "1000")
    printed = {e["seq"]: e for e in map(json.loads, cli.stdout.splitlines())}
    assert events and all(printed[e["seq"]] == e for e in events)


def test_a_browser_logs_in_with_a_cookie_that_other_sites_cannot_use(admin: Admin):
    wrong = admin.request("POST", "/api/session", token=None, body=b"token=nope",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong.status == 401 and "set-cookie" not in wrong.headers
    login = admin.request("POST", "/api/session", token=None,
                          body=f"token={admin.token}".encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert login.status == 204
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and admin.token not in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert admin.request("GET", "/api/status", token=None, headers=session).status == 200
    host = f"127.0.0.1:{admin.port}"
    assert admin.request("POST", "/api/apps/web/wait", token=None, headers={
        **session, "Origin": "http://evil.example"}).status == 401
    assert admin.request("POST", "/api/apps/web/wait", token=None, headers={
        **session, "Origin": f"http://{host}"}).status == 200


def test_a_listener_others_can_reach_needs_a_token_file(wharf: Wharf):
    wharf.write_config("""
        [admin]
        listen = "0.0.0.0:9180"
        [apps.a]
        command = "sleep 100"
    """)
    for command in ("check", "up"):
        result = wharf.run(command, timeout=30)
        assert result.returncode == 2, result.stdout
        assert "admin.token_file: must be set" in result.stderr
    assert not (wharf.root / ".wharf" / "admin.token").exists()


def test_a_token_file_others_can_read_is_refused(wharf: Wharf):
    token = wharf.root / "token"
    token.write_text("s3cret-s3cret-s3cret\n")
    token.chmod(0o644)
    wharf.write_config(f"""
        [admin]
        listen = "0.0.0.0:9180"
        token_file = "{token}"
        [apps.a]
        command = "sleep 100"
    """)
    result = wharf.run("check")
    assert result.returncode == 2 and "chmod 600" in result.stderr
