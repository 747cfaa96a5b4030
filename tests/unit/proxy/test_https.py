"""Plain-HTTP answers before routing (HTTP-01, redirect to https) and the HSTS header."""

from dataclasses import dataclass

from wharf.proxy.https import Https
from wharf.registry.snapshot import Certificate, Snapshot, Tls


@dataclass
class Request:  # the fields of an Exchange that the decision reads
    path: str
    host: bytes = b"a.test"
    query: str = ""
    keep_alive: bool = True
    head_only: bool = False

    def fields(self) -> tuple[str, str, bytes, bool, bool]:
        return self.path, self.query, self.host, self.keep_alive, self.head_only


def https(port: int = 8443, redirect: bool = True, http01=(), hsts=None) -> Https:
    tls = Tls(certificates=(Certificate(("a.test", "*.wild.test"), "", ""),),
              redirect_http=redirect, redirect_port=port, http01=http01, hsts=hsts)
    return Https(Snapshot(listen_tls=(("127.0.0.1", port),), tls=tls))


def test_a_certified_name_is_redirected_with_its_path_and_query_to_the_tls_port():
    status, data = https().plain_answer(*Request("/p", b"A.test:8080", "x=1").fields())
    assert status == 308 and b"\r\nLocation: https://a.test:8443/p?x=1\r\n" in data
    _, data = https(443).plain_answer(*Request("/", b"b.wild.test").fields())
    assert b"Location: https://b.wild.test/\r\n" in data


def test_other_names_and_a_redirect_that_is_off_go_on_to_routing():
    assert https().plain_answer(*Request("/", b"c.b.wild.test").fields()) is None
    assert https().plain_answer(*Request("/", b"other.test").fields()) is None
    assert https(redirect=False).plain_answer(*Request("/").fields()) is None


def test_http01_tokens_are_answered_and_unknown_ones_are_404_not_redirected():
    h = https(http01=(("tok", "tok.thumb"),))
    status, data = h.plain_answer(*Request("/.well-known/acme-challenge/tok").fields())
    assert status == 200 and data.endswith(b"\r\n\r\ntok.thumb")
    status, _ = h.plain_answer(*Request("/.well-known/acme-challenge/other").fields())
    assert status == 404


def test_without_tls_nothing_is_looked_at():
    assert not Https(Snapshot()).plain and not Https().plain


def test_hsts_goes_after_the_status_line():
    h = https(hsts="max-age=60")
    assert h.with_hsts(b"HTTP/1.1 404 Not Found\r\nA: b\r\n\r\n") == \
        b"HTTP/1.1 404 Not Found\r\nStrict-Transport-Security: max-age=60\r\nA: b\r\n\r\n"
    assert https().hsts_line == b""
