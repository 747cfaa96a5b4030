"""The TLS part of a snapshot: file certificates first, then issued ones; the defaults."""

from pathlib import Path

from wharf.certs.material import build_tls
from wharf.config import config_from_data
from wharf.registry.build import build_snapshot
from wharf.registry.snapshot import Certificate, Snapshot
from wharf.testing.certs import TestCA

CA = TestCA()


def config(tmp_path: Path, listen_tls: list[str], **tls: object):
    CA.write(tmp_path, "a", ["a.example", "*.a.example"])
    CA.write(tmp_path, "b", ["b.example"])
    return config_from_data({
        "proxy": {"listen": ["127.0.0.1:8080"], "listen_tls": listen_tls},
        "tls": {"certificates": [{"cert": "a.pem", "key": "a.key"},
                                 {"cert": "b.pem", "key": "b.key"}], **tls},
        "routes": [{"path": "/", "servers": ["127.0.0.1:9000"]}]}, tmp_path / "wharf.toml")


def test_file_certificates_come_first_in_config_order_then_the_issued_ones(tmp_path):
    issued = Certificate(("c.example",), "CERT", "KEY")
    tls = build_tls(config(tmp_path, ["127.0.0.1:8443"]), issued=(issued,),
                    http01=(("tok", "tok.thumb"),), ticket_keys=("00" * 80,))
    assert [c.names for c in tls.certificates] == [("a.example", "*.a.example"),
                                                   ("b.example",), ("c.example",)]
    assert "PRIVATE KEY" in tls.certificates[0].key_pem
    assert tls.http01 == (("tok", "tok.thumb"),) and tls.ticket_keys == ("00" * 80,)


def test_redirect_is_on_once_a_tls_listener_exists_to_the_first_ones_port(tmp_path):
    tls = build_tls(config(tmp_path, ["127.0.0.1:8443", "127.0.0.1:9443"]))
    assert tls.redirect_http and tls.redirect_port == 8443
    assert not build_tls(config(tmp_path, ["127.0.0.1:8443"], redirect_http=False)).redirect_http
    assert not build_tls(config(tmp_path, [])).redirect_http


def test_settings_of_the_tls_table_reach_the_snapshot_and_survive_json(tmp_path):
    c = config(tmp_path, ["127.0.0.1:8443"], hsts="max-age=60", min_version="1.3")
    snap = build_snapshot(c, 1, {}, tls=build_tls(c, ticket_keys=("ab" * 80,)))
    assert snap.listen_tls == (("127.0.0.1", 8443),)
    assert (snap.tls.hsts, snap.tls.min_version) == ("max-age=60", "1.3")
    assert Snapshot.from_json(snap.to_json()) == snap
