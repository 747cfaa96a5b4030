"""Wharf's apps as Supervisor names, states and log ranges."""

from __future__ import annotations

import pytest

from wharf.control.supervisor_rpc.names import (
    Faults,
    RpcFault,
    Target,
    namespec,
    process_info,
    read_range,
    resolve,
    tail_range,
)

COUNTS = {"web": 3, "job": 1}


def test_one_instance_is_a_process_of_the_groups_name_several_are_numbered():
    assert namespec("job", 0, 1) == "job"
    assert [namespec("web", i, 3) for i in range(3)] == ["web:web_00", "web:web_01",
                                                         "web:web_02"]


@pytest.mark.parametrize(("name", "target"), [
    ("job", Target("job", 0)), ("job:job", Target("job", 0)), ("web:web_02", Target("web", 2)),
    ("web:*", Target("web", None)), ("web:", Target("web", None)), ("job:*", Target("job", None)),
])
def test_names_resolve_to_an_instance_or_a_whole_app(name: str, target: Target):
    assert resolve(name, COUNTS) == target


@pytest.mark.parametrize("name", ["nope", "web", "web:web_03", "web:web_1", "nope:*"])
def test_unknown_names_are_bad_name_faults(name: str):
    with pytest.raises(RpcFault) as caught:
        resolve(name, COUNTS)
    assert caught.value.code == Faults.BAD_NAME and caught.value.text == f"BAD_NAME: {name}"


def test_a_running_instance_is_described_as_supervisord_does():
    row = {"app": "web", "instance": 1, "state": "RUNNING", "pid": 42, "uptime_s": 3725.4}
    info = process_info(row, 3, ("/l/out", "/l/err"), now=10_000.0)
    assert info["name"] == "web_01" and info["group"] == "web"
    assert info["state"] == 20 and info["statename"] == "RUNNING"
    assert info["description"] == "pid 42, uptime 1:02:05"
    assert info["start"] == int(10_000 - 3725.4) and info["pid"] == 42


def test_a_failed_instance_shows_its_reason():
    row = {"app": "job", "instance": 0, "state": "FATAL", "pid": None,
           "reason": "spawn error: no such file"}
    info = process_info(row, 1, ("", ""), now=0.0)
    assert info["state"] == 200 and info["pid"] == 0
    assert info["description"] == info["spawnerr"] == "spawn error: no such file"


def test_read_range_follows_supervisords_read_file():
    assert read_range(5000, -1600, 0) == (3400, 5000)  # `tail`: the last 1600 bytes
    assert read_range(100, -1600, 0) == (0, 100)
    assert read_range(5000, 10, 20) == (10, 30)
    assert read_range(5000, 4990, 0) == (4990, 5000)
    with pytest.raises(RpcFault):
        read_range(5000, -10, 5)


def test_tail_range_follows_supervisords_tail_file():
    assert tail_range(100, 0, 1024) == (0, 1024, False)  # reads what there is
    assert tail_range(5000, 0, 1024) == (3976, 1024, True)  # grew past: catch up to the end
    assert tail_range(100, 100, 1024) == (100, 0, False)  # nothing new
