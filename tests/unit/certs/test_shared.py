"""The cluster's certificate keys as the watch shows them: records, locks (and what a read
outside the watch may add), hosts, challenges and their acknowledgements."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from wharf.certs.local_ca import LocalCa
from wharf.certs.shared import Changed, Keys, View, decode_record, directory_hash, encode_record
from wharf.certs.store import Meta, describe

P = "/wharf"
KEYS = Keys(P)


def view() -> View:
    return View(KEYS)


def test_the_keys_sit_under_the_prefix_as_documented():
    assert KEYS.cert("a.example") == "/wharf/certs/a.example"
    assert KEYS.lock("a.example") == "/wharf/locks/certs/a.example"
    assert KEYS.account("https://ca/dir") == f"/wharf/acme/account/{directory_hash('https://ca/dir')}"
    assert KEYS.challenge("http01", "tok") == "/wharf/acme/http01/tok"
    assert KEYS.ack("alpn01", "a.example", "host-b") == "/wharf/acme/acks/alpn01/a.example/host-b"


def test_a_record_round_trips_and_takes_its_validity_from_the_certificate(tmp_path: Path):
    issued = LocalCa(tmp_path).issue("a.example")
    _, _, not_after, serial = describe(issued.cert_pem)
    raw = encode_record(issued.cert_pem, issued.key_pem, Meta("acme", serial=serial))
    stored, meta = decode_record("a.example", raw.encode())
    assert stored is not None and stored.key_pem == issued.key_pem
    assert meta is not None and meta.not_after == not_after


def test_a_record_with_a_foreign_key_or_serial_is_no_certificate_but_keeps_its_meta(
        tmp_path: Path):
    ca = LocalCa(tmp_path)
    one, other = ca.issue("a.example"), ca.issue("a.example")
    serial = describe(one.cert_pem)[3]
    meta = Meta("acme", serial=serial, failures=2)
    assert decode_record("a.example", encode_record(one.cert_pem, other.key_pem, meta)
                         .encode()) == (None, meta)
    stale = replace(meta, serial="0")
    assert decode_record("a.example", encode_record(one.cert_pem, one.key_pem, stale)
                         .encode())[0] is None


def test_a_record_of_failures_alone_has_a_meta_and_no_certificate():
    meta = Meta("acme", last_error="cannot reach the CA", failures=1)
    assert decode_record("a", encode_record("", "", meta).encode()) == (None, meta)
    assert decode_record("a", b"not json") == (None, None)


def test_puts_and_deletes_say_what_they_changed():
    v = view()
    assert v.apply("put", "/wharf/certs/a.example", b"{}", 0, 5) == Changed(cert="a.example")
    assert v.apply("put", "/wharf/locks/certs/a.example", b"host-a", 7, 6) == \
        Changed(lock="a.example")
    assert v.apply("put", "/wharf/acme/http01/tok", b"tok.x", 7, 7) == Changed(challenges=True)
    assert v.apply("put", "/wharf/acme/hosts/host-a", b"", 3, 8) == Changed(acks=True)
    assert v.apply("put", "/wharf/instances/web/1", b"{}", 3, 9) == Changed()  # not ours
    assert v.apply("put", "/wharfish/certs/a", b"", 0, 10) == Changed()
    assert v.http01() == [("tok", "tok.x")]
    v.apply("delete", "/wharf/acme/http01/tok", b"", 0, 11)
    v.apply("delete", "/wharf/certs/a.example", b"", 0, 12)
    assert v.http01() == [] and v.records == {}


def test_a_lock_on_another_lease_is_locked_and_one_of_ours_is_not():
    v = view()
    v.apply("put", "/wharf/locks/certs/a", b"host-a", 7, 6)
    assert v.locked("a", mine=set()) and not v.locked("a", mine={7})
    assert not v.locked("b", mine=set())
    v.apply("delete", "/wharf/locks/certs/a", b"", 0, 9)  # released, or its lease expired
    assert not v.locked("a", mine=set())


def test_a_lock_read_after_a_failed_claim_counts_until_the_watch_shows_it_go():
    v = view()
    assert v.learned("a", lease=7, revision=6)  # the watch has not shown it yet
    assert v.locked("a", mine=set())
    v.apply("put", "/wharf/locks/certs/a", b"host-a", 7, 6)
    v.apply("delete", "/wharf/locks/certs/a", b"", 0, 9)
    assert not v.locked("a", mine=set())


def test_a_late_read_never_brings_back_a_lock_the_watch_saw_go():
    v = view()
    v.apply("put", "/wharf/locks/certs/a", b"host-a", 7, 6)
    v.apply("delete", "/wharf/locks/certs/a", b"", 0, 9)
    assert not v.learned("a", lease=7, revision=6)
    assert not v.locked("a", mine=set())


def test_a_challenge_is_acked_once_every_present_host_acked_it():
    v = view()
    for host in ("host-a", "host-b"):
        v.apply("put", f"/wharf/acme/hosts/{host}", b"", 3, 1)
    v.apply("put", "/wharf/acme/http01/tok", b"tok.x", 7, 2)
    assert not v.acked_by_all("http01", "tok")
    v.apply("put", "/wharf/acme/acks/http01/tok/host-a", b"", 3, 3)
    assert not v.acked_by_all("http01", "tok")
    v.apply("put", "/wharf/acme/acks/http01/tok/host-b", b"", 4, 4)
    assert v.acked_by_all("http01", "tok")


def test_a_host_that_leaves_is_no_longer_waited_for():
    v = view()
    for host in ("host-a", "host-b"):
        v.apply("put", f"/wharf/acme/hosts/{host}", b"", 3, 1)
    v.apply("put", "/wharf/acme/acks/http01/tok/host-a", b"", 3, 3)
    v.apply("delete", "/wharf/acme/hosts/host-b", b"", 0, 5)  # its session lease ended
    assert v.acked_by_all("http01", "tok")
    v.apply("delete", "/wharf/acme/acks/http01/tok/host-a", b"", 0, 6)
    assert v.acked == {}


def test_an_alpn_challenge_gives_its_certificate_and_a_bad_one_is_skipped():
    v = view()
    v.apply("put", "/wharf/acme/alpn01/a.example", b'{"cert": "C", "key": "K"}', 7, 1)
    v.apply("put", "/wharf/acme/alpn01/b.example", b"garbage", 7, 2)
    assert v.alpn01() == [("a.example", "C", "K")]
