"""The certificate store: modes, atomic files, and what counts as a whole certificate."""

from __future__ import annotations

import stat
from pathlib import Path

from wharf.certs.local_ca import LocalCa
from wharf.certs.store import CertStore, Meta, describe, key_matches, storable


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leaf(tmp_path: Path, name: str = "a.example") -> tuple[str, str]:
    issued = LocalCa(tmp_path / "ca").issue(name)
    return issued.cert_pem, issued.key_pem


def test_a_saved_certificate_loads_back_with_its_validity_and_serial(tmp_path: Path):
    store = CertStore(tmp_path)
    cert, key = _leaf(tmp_path)
    store.save("a.example", cert, key, Meta("local", order_url="u"))
    loaded = store.load("a.example")
    assert loaded is not None and loaded.cert_pem == cert and loaded.key_pem == key
    issuer, _, not_after, serial = describe(cert)
    assert (loaded.meta.serial, loaded.meta.not_after, loaded.meta.issuer) == \
        (serial, not_after, issuer)
    assert loaded.meta.order_url == "u"


def test_keys_are_0600_in_0700_directories(tmp_path: Path):
    store = CertStore(tmp_path)
    store.save("a.example", *_leaf(tmp_path), Meta("local"))
    assert _mode(store.root) == 0o700
    assert _mode(store.path("a.example")) == 0o700
    assert _mode(store.path("a.example") / "key.pem") == 0o600


def test_no_temporary_file_is_left_behind(tmp_path: Path):
    store = CertStore(tmp_path)
    store.save("a.example", *_leaf(tmp_path), Meta("local"))
    assert sorted(p.name for p in store.path("a.example").iterdir()) == \
        ["cert.pem", "key.pem", "meta.json"]


def test_saving_clears_the_failures_of_a_name(tmp_path: Path):
    store = CertStore(tmp_path)
    failed = Meta("acme", last_error="down", last_error_at=5.0, failures=3)
    store.save_meta("a.example", failed)
    assert store.load_meta("a.example") == failed
    stored = store.save("a.example", *_leaf(tmp_path), failed)
    assert (stored.meta.failures, stored.meta.last_error, stored.meta.last_error_at) == \
        (0, "", None)


def test_a_meta_alone_is_no_certificate(tmp_path: Path):
    store = CertStore(tmp_path)
    store.save_meta("a.example", Meta("acme", failures=1))
    assert store.load("a.example") is None and store.names() == ["a.example"]


def test_a_key_that_does_not_match_its_certificate_is_no_certificate(tmp_path: Path):
    store = CertStore(tmp_path)
    cert, _ = _leaf(tmp_path)
    _, other_key = _leaf(tmp_path)
    store.save("a.example", cert, other_key, Meta("local"))
    assert store.load("a.example") is None


def test_a_meta_of_another_serial_is_no_certificate(tmp_path: Path):
    store = CertStore(tmp_path)
    store.save("a.example", *_leaf(tmp_path), Meta("local"))
    newer_cert, newer_key = _leaf(tmp_path)
    (store.path("a.example") / "cert.pem").write_text(newer_cert)  # a write cut short
    (store.path("a.example") / "key.pem").write_text(newer_key)
    assert store.load("a.example") is None


def test_a_broken_meta_is_ignored(tmp_path: Path):
    store = CertStore(tmp_path)
    store.path("a.example").mkdir(parents=True)
    (store.path("a.example") / "meta.json").write_text("{not json")
    assert store.load_meta("a.example") is None


def test_unknown_meta_keys_are_ignored(tmp_path: Path):
    assert Meta.from_json('{"source": "acme", "from_the_future": 1}') == Meta("acme")


def test_key_matches_rejects_garbage():
    assert not key_matches("nope", "nope")


def test_names_skip_the_managers_own_directories(tmp_path: Path):
    store = CertStore(tmp_path)
    LocalCa(store.root).load_or_create()
    store.save_meta("b.example", Meta("acme"))
    assert store.names() == ["b.example"]


def test_storable_names_are_host_names_only():
    assert storable("a.example") and storable("localhost") and storable("x_y.test")
    for bad in ("", ".local-ca", "../etc", "a/b", "a..b", "-", "UPPER", "a.", "*.example"):
        assert not storable(bad), bad
