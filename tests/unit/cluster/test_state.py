"""The sans-IO core of [cluster]: keys, the writer's plan, the view, the session."""

from __future__ import annotations

from wharf.cluster.state import (
    HostRecord,
    InstanceRecord,
    Registrations,
    Session,
    View,
    Write,
    lease_gone,
    parse,
)

P = "/wharf"


def rec(host: str, ident: str = "0-100", port: int = 8001, app: str = "web",
        address: str = "") -> InstanceRecord:
    return InstanceRecord(app, host, ident, address or f"10.0.0.{ord(host[-1]) - 96}", port)


def kv(record: InstanceRecord | HostRecord) -> tuple[str, bytes]:
    return record.key(P), record.value().encode()


def put(record: InstanceRecord | HostRecord, revision: int) -> tuple[str, str, bytes, int]:
    return ("put", *kv(record), revision)


def delete(record: InstanceRecord | HostRecord, revision: int) -> tuple[str, str, bytes, int]:
    return ("delete", record.key(P), b"", revision)


def test_an_instance_key_names_app_host_and_instance_and_its_value_is_json():
    record = rec("a", "1-4242", 8002)
    assert record.key(P) == "/wharf/cluster/instances/web/a/1-4242"
    assert parse(P, *kv(record)) == record
    host = HostRecord("a", "10.0.0.1", applied=7, pid=9)
    assert host.key(P) == "/wharf/cluster/hosts/a"
    assert parse(P, *kv(host)) == host


def test_values_written_by_hand_that_are_not_records_are_ignored():
    base = "/wharf/cluster/instances/web/a/0-1"
    for value in (b"nope", b"[]", b'{"address": "x"}', b'{"address": "x", "port": 0}',
                  b'{"address": "x", "port": "http"}'):
        assert parse(P, base, value) is None
    assert parse(P, "/wharf/cluster/instances/web/a", b'{"address": "x", "port": 1}') is None
    assert parse(P, "/wharf/routes/x", b"{}") is None


def test_the_writer_puts_new_instances_then_deletes_then_the_host_key():
    regs = Registrations(P)
    host = HostRecord("a", "10.0.0.1")
    old, new = rec("a", "0-1"), rec("a", "0-2", 8003)
    regs.want(host, [old])
    for write in regs.plan():
        regs.done(write, 10)
    assert regs.plan() == []
    regs.want(host, [new])
    assert regs.plan() == [Write(new.key(P), new.value()), Write(old.key(P), None)]
    regs.done(Write(old.key(P), None), 12)
    assert regs.deleted_at == 12 and regs.gone([old.key(P)])


def test_a_write_under_way_or_done_is_not_gone_until_etcd_answers_its_delete():
    regs = Registrations(P)
    one = rec("a")
    regs.want(HostRecord("a", "x"), [one])
    write = next(w for w in regs.plan() if w.key == one.key(P))
    regs.started(write)
    assert not regs.gone([one.key(P)])  # a put on its way may land after the deregistration
    regs.want(HostRecord("a", "x"), [])
    assert not regs.current(write)  # no longer wanted: the writer skips it if not sent
    regs.done(write, 5)
    assert not regs.gone([one.key(P)])
    assert regs.plan()[0] == Write(one.key(P), None)


def test_a_failed_put_is_tried_again_and_a_lost_lease_writes_everything_again():
    regs = Registrations(P)
    regs.want(HostRecord("a", "x"), [rec("a")])
    writes = regs.plan()
    regs.started(writes[0])
    regs.failed(writes[0])
    assert regs.plan() == writes
    for write in writes:
        regs.done(write, 3)
    regs.lease_lost()
    assert regs.plan() == writes


def test_the_view_lists_the_other_hosts_instances_only():
    view = View(P, "a")
    change = view.reset(10, [kv(rec("a")), kv(rec("b")), kv(rec("c", app="api")),
                             kv(HostRecord("b", "10.0.0.2"))])
    assert change.apps == {"web", "api"}
    assert view.remote("web") == (rec("b"),)
    assert view.remote("api") == (rec("c", app="api"),)
    assert view.changed_at == 10


def test_a_delete_reports_the_address_that_no_remote_instance_serves_any_more():
    view = View(P, "a")
    view.reset(10, [kv(rec("b", "0-1")), kv(rec("b", "1-2", 8002))])
    change = view.apply([delete(rec("b", "0-1"), 11)])
    assert change.apps == {"web"} and change.gone == (("10.0.0.2", 8001),)
    assert view.changed_at == 11 and view.revision == 11


def test_changes_of_this_hosts_own_instances_or_of_host_keys_need_no_acknowledgement():
    view = View(P, "a")
    view.reset(10, [])
    change = view.apply([put(rec("a"), 11), put(HostRecord("b", "x", applied=10), 12)])
    assert change.apps == frozenset() and change.hosts
    assert view.changed_at == 10 and view.revision == 12


def test_a_leaving_host_waits_for_every_other_host_that_has_not_caught_up():
    view = View(P, "a")
    view.reset(10, [kv(HostRecord("a", "x", applied=1)), kv(HostRecord("b", "y", applied=20)),
                    kv(HostRecord("c", "z", applied=15))])
    assert view.waiting_for(18) == ["c"]
    view.apply([put(HostRecord("c", "z", applied=18), 21)])
    assert view.waiting_for(18) == []
    view.apply([put(HostRecord("c", "z", applied=18), 22)])
    assert view.waiting_for(30) == ["b", "c"]
    view.apply([delete(HostRecord("c", "z"), 23)])  # its lease expired: nobody to wait for
    assert view.waiting_for(30) == ["b"]


def test_an_expired_host_leaves_with_all_its_instances():
    view = View(P, "a")
    view.reset(5, [kv(rec("b", "0-1")), kv(rec("b", "1-2", 8002)), kv(HostRecord("b", "y"))])
    change = view.apply([delete(rec("b", "0-1"), 6), delete(rec("b", "1-2", 8002), 6),
                         delete(HostRecord("b", "y"), 6)])
    assert view.remote("web") == () and view.hosts == {}
    assert set(change.gone) == {("10.0.0.2", 8001), ("10.0.0.2", 8002)}
    assert view.counts() == {}


def test_a_new_range_after_an_outage_reports_what_went_meanwhile():
    view = View(P, "a")
    view.reset(5, [kv(rec("b")), kv(rec("c"))])
    change = view.reset(40, [kv(rec("c"))])
    assert change.gone == (("10.0.0.2", 8001),) and view.changed_at == 40


def test_the_session_knows_since_when_etcd_is_unreachable_and_when_the_lease_is_lost():
    session = Session()
    session.granted(7, 2)
    session.unreachable(100.0, "cannot connect")
    session.unreachable(101.0, "cannot connect again")
    assert session.unreachable_since == 100.0 and session.error == "cannot connect again"
    assert session.renewed(0) is False and session.lease == 0
    assert session.unreachable_since is None
    session.granted(8, 2)
    assert session.reachable() is False and session.grants == 2
    assert lease_gone("etcdserver: requested lease not found")
