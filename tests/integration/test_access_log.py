"""The access log: escaped fields, valid JSON, body bytes, reopening and rotation."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.integration.conftest import wait_until
from tests.integration.proxy_fixture import proxy_to_upstream
from tests.integration.proxyutil import exchange, get, parse_responses

# A client's attempt to end the quoted fields early, forge a line and smuggle raw bytes (llhttp
# refuses control characters anywhere, and bytes from 0x80 in the target).
FORGED = (b'GET /echo-forge?q="\\ HTTP/1.1\r\nHost: t\r\n'
          b'User-Agent: a" 200 0 "-" "b\\\xc3\xa9\xff\r\nReferer: r"x\r\n'
          b'X-Request-ID: id"1\xff\r\nConnection: close\r\n\r\n')


def _log(root: Path) -> Path:
    return root / ".wharf" / "logs" / "access.log"


def _lines(path: Path, marker: str) -> list[str]:
    return [x for x in path.read_text().splitlines() if marker in x] if path.exists() else []


def test_combined_log_escapes_what_the_client_sent(tmp_path: Path):
    with proxy_to_upstream(tmp_path, 'access_log = "combined"') as (_wharf, _, port):
        assert parse_responses(exchange(port, FORGED)[0])[0].status == 200
        log = _log(tmp_path)
        wait_until(lambda: _lines(log, "echo-forge"), message="the access log line")
        [line] = _lines(log, "echo-forge")
        assert '"GET /echo-forge?q=\\x22\\x5C HTTP/1.1" 200 ' in line
        assert line.endswith(' "r\\x22x" "a\\x22 200 0 \\x22-\\x22 \\x22b\\x5C\\xC3\\xA9\\xFF" '
                             'rid=id\\x221\\xFF')
        assert line.count('"') == 6  # the request, Referer and User-Agent, nothing more


def test_json_log_is_valid_json_for_any_input(tmp_path: Path):
    with proxy_to_upstream(tmp_path, 'access_log = "json"') as (_wharf, _, port):
        assert parse_responses(exchange(port, FORGED)[0])[0].status == 200
        assert get(port, "/echo-after").status == 200
        log = _log(tmp_path)
        wait_until(lambda: _lines(log, "echo-after"), message="the access log line")
        records = [json.loads(x) for x in log.read_text().splitlines()]
        forged = next(r for r in records if "echo-forge" in r["target"])
        assert forged["target"] == '/echo-forge?q="\\'
        assert forged["user_agent"] == 'a" 200 0 "-" "b\\é\\xff'
        assert forged["referer"] == 'r"x' and forged["request_id"] == 'id"1\\xff'


def test_bytes_is_the_body_sent_for_every_kind_of_answer(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "f.txt").write_bytes(b"x" * 1000)
    extra = '[[routes]]\npath = "/files"\nstatic = "site"\n'
    with proxy_to_upstream(tmp_path, 'access_log = "json"', route=f'path = "/big"\n{extra}') \
            as (_wharf, _, port):
        answers = {"/big/5000": 5000, "/files/f.txt": 1000, "/nowhere": 14, "/files": 0}
        for path, size in answers.items():
            r = get(port, path, headers=f"X-Request-ID: bytes{path}\r\n")
            assert len(r.body) == size, path
        log = _log(tmp_path)
        wait_until(lambda: len(_lines(log, '"bytes/')) == len(answers), message="4 lines")
        records = {json.loads(x)["request_id"]: json.loads(x) for x in _lines(log, '"bytes/')}
        assert {rid[5:]: r["bytes"] for rid, r in records.items()} == answers


def test_sigusr1_to_the_daemon_reopens_the_access_log(tmp_path: Path):
    with proxy_to_upstream(tmp_path, 'access_log = "combined"') as (wharf, _, port):
        log = _log(tmp_path)
        assert get(port, "/echo-before").status == 200
        wait_until(lambda: _lines(log, "echo-before"), message="the first line")
        rotated = log.with_name("access.log.old")
        log.rename(rotated)
        assert wharf.daemon is not None
        os.kill(wharf.daemon.pid, signal.SIGUSR1)
        sent = []

        def reopened() -> bool:
            sent.append(f"/echo-after-{len(sent)}")
            assert get(port, sent[-1]).status == 200
            return bool(_lines(log, "echo-after"))

        wait_until(reopened, message="a line in the reopened log")
        wait_until(lambda: sum(len(_lines(p, "echo-after")) for p in (log, rotated)) == len(sent),
                   message="every line written")
        assert wharf.daemon.poll() is None
        everything = rotated.read_text() + log.read_text()
        assert all(everything.count(f"{path} ") == 1 for path in sent)
        assert _lines(rotated, "echo-before") and not _lines(log, "echo-before")


def test_several_workers_rotate_one_log_by_size_without_losing_a_line(tmp_path: Path):
    settings = ('workers = 2\naccess_log = "combined"\naccess_log_max_size = "2KB"\n'
                'access_log_backups = 1000')
    with proxy_to_upstream(tmp_path, settings) as (wharf, _upstream, port):
        wait_until(lambda: [r["state"] for r in wharf.instances("wharf-proxy")] == ["RUNNING"] * 2,
                   message="two workers")
        count = 120
        for i in range(count):
            assert get(port, f"/echo-rot{i}").status == 200
        log = _log(tmp_path)

        def logged() -> list[str]:
            return [x for p in log.parent.glob("access.log*") for x in _lines(p, "/echo-rot")]

        wait_until(lambda: len(logged()) >= count, message=f"{count} lines")
        targets = sorted(x.split('"')[1] for x in logged())
        assert targets == sorted(f"GET /echo-rot{i} HTTP/1.1" for i in range(count))
        assert len({x.split("rid=")[1][:16] for x in logged()}) == 2  # both workers wrote
        files = list(log.parent.glob("access.log*"))
        assert len(files) >= 2  # rotated (how often depends on how the lines were batched)
        assert all(p.stat().st_size < 2000 + 64 * 1024 for p in files)


def test_a_rotated_log_keeps_its_number_of_backups(tmp_path: Path):
    settings = 'access_log = "combined"\naccess_log_max_size = 500\naccess_log_backups = 2'
    with proxy_to_upstream(tmp_path, settings) as (_wharf, _upstream, port):
        log = _log(tmp_path)
        wait_until(lambda: get(port, "/echo-many").status == 200 and
                   log.with_name("access.log.2").exists() and
                   log.with_name("access.log.1").exists(), message="two backups")
        assert get(port, "/echo-more").status == 200
        wait_until(lambda: _lines(log, "echo-more") or
                   _lines(log.with_name("access.log.1"), "echo-more"), message="another line")
        assert sorted(p.name for p in log.parent.glob("access.log*")) == [
            "access.log", "access.log.1", "access.log.2"]
