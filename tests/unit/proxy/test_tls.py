"""The certificate a handshake gets: by SNI, exact then wildcard, else the first; swaps;
TLS-ALPN-01. Handshakes run in memory (ssl.MemoryBIO), no sockets."""

import ssl

import pytest

from wharf.proxy import openssl
from wharf.proxy.tls import TlsContexts
from wharf.registry.snapshot import Certificate, Tls
from wharf.testing.certs import TestCA

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
CA = TestCA()


def certificate(*names: str) -> Certificate:
    chain, key = CA.issue(list(names))
    return Certificate(names, chain, key)


A = certificate("a.test", "*.wild.test")
B = certificate("b.test")


def handshake(server: ssl.SSLContext, name: str | None, alpn: list[str] | None = None,
              versions: tuple[ssl.TLSVersion, ssl.TLSVersion] | None = None,
              session: ssl.SSLSession | None = None,
              client_ctx: ssl.SSLContext | None = None) -> ssl.SSLObject:
    """A client handshake against `server` in memory; returns the client's SSLObject."""
    client_ctx = client_ctx or client_context()
    client_ctx.check_hostname = name is not None
    if alpn:
        client_ctx.set_alpn_protocols(alpn)
    if versions:
        client_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client would refuse TLS 1.1 itself
        client_ctx.minimum_version, client_ctx.maximum_version = versions
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=name, session=session)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        done = 0
        for obj, out, peer_in in ((client, c_out, s_in), (srv, s_out, c_in)):
            try:
                obj.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
            peer_in.write(out.read())
        if done == 2:
            break
    # TLS 1.3 tickets come after the handshake: let the client read them.
    srv.write(b"x")
    c_in.write(s_out.read())
    assert client.read(1) == b"x"
    return client


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=CA.cert_pem)
    return ctx


def subject(obj: ssl.SSLObject) -> str:
    return dict(x[0] for x in obj.getpeercert()["subject"])["commonName"]


def contexts(*certs: Certificate, **kw: object) -> TlsContexts:
    tls = TlsContexts()
    tls.apply(Tls(certificates=certs, **kw))  # type: ignore[arg-type]
    return tls


def test_sni_picks_the_certificate_that_names_the_host():
    tls = contexts(A, B)
    assert subject(handshake(tls.listener, "b.test")) == "b.test"
    assert subject(handshake(tls.listener, "a.test")) == "a.test"


def test_a_wildcard_covers_one_label_only():
    tls = contexts(B, A)
    assert tls.choose("x.wild.test") is tls.choose("a.test")
    assert tls.choose("x.y.wild.test") is tls.choose("b.test")  # the default: first
    assert tls.choose("wild.test") is tls.choose("b.test")
    assert subject(handshake(tls.listener, "X.Wild.Test")) == "a.test"


def test_no_sni_or_an_unknown_name_gets_the_first_certificate():
    tls = contexts(B, A)
    assert tls.choose(None) is tls.choose("unknown.test") is tls.choose("b.test")
    assert subject(handshake(tls.listener, None)) == "b.test"


def test_alpn_is_http1_and_tls_below_1_2_is_refused():
    tls = contexts(A)
    assert handshake(tls.listener, "a.test", ["h2", "http/1.1"]).selected_alpn_protocol() \
        == "http/1.1"
    with pytest.raises(ssl.SSLError, match=r"UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION"):
        handshake(tls.listener, "a.test",
                  versions=(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1))


def test_min_version_1_3_refuses_1_2():
    tls = contexts(A, min_version="1.3")
    assert handshake(tls.listener, "a.test").version() == "TLSv1.3"
    with pytest.raises(ssl.SSLError, match=r"UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION"):
        handshake(tls.listener, "a.test", versions=(ssl.TLSVersion.TLSv1_2,) * 2)


def test_a_new_snapshot_serves_new_certificates_and_keeps_unchanged_contexts():
    tls = contexts(A, B)
    kept = tls.choose("a.test")
    b2 = certificate("b.test", "c.test")
    tls.apply(Tls(certificates=(A, b2)))
    assert tls.choose("a.test") is kept
    assert tls.choose("c.test") is tls.choose("b.test") is not kept
    assert subject(handshake(tls.listener, "c.test")) == "b.test"


def test_a_bad_certificate_is_skipped_and_the_rest_served():
    tls = contexts(Certificate(("bad.test",), "nope", "nope"), B)
    assert tls.choose("bad.test") is tls.choose("b.test") is tls.choose(None)
    assert subject(handshake(tls.listener, "b.test")) == "b.test"


@pytest.mark.skipif(not openssl.available(), reason="no libssl for ctypes")
def test_contexts_with_the_same_ticket_key_resume_each_others_sessions():
    key = "ab" * 80
    one, two = contexts(A, ticket_keys=(key,)), contexts(A, ticket_keys=(key,))
    client = client_context()
    first = handshake(one.listener, "a.test", client_ctx=client)
    assert not first.session_reused
    assert handshake(two.listener, "a.test", session=first.session,
                     client_ctx=client).session_reused
    other = contexts(A, ticket_keys=("cd" * 80,))
    assert not handshake(other.listener, "a.test", session=first.session,
                         client_ctx=client).session_reused


@pytest.mark.skipif(not openssl.available(), reason="no libssl for ctypes")
def test_tls_alpn_01_answers_only_clients_that_offer_acme_tls():
    challenge = certificate("a.test")
    tls = contexts(A, alpn01=(challenge,))
    acme = handshake(tls.listener, "a.test", ["acme-tls/1"])
    assert acme.selected_alpn_protocol() == "acme-tls/1"
    assert acme.getpeercert(binary_form=True) != handshake(
        tls.listener, "a.test").getpeercert(binary_form=True)
    normal = handshake(tls.listener, "a.test", ["http/1.1"])
    assert normal.selected_alpn_protocol() == "http/1.1"
    tls.apply(Tls(certificates=(A,)))
    assert handshake(tls.listener, "a.test", ["acme-tls/1"]).selected_alpn_protocol() is None


def test_one_certificate_is_served_from_the_listener_with_no_sni_callback_and_swaps():
    tls = contexts(B)
    assert tls.listener.sni_callback is None  # no Python call at each handshake
    assert subject(handshake(tls.listener, "b.test")) == "b.test"
    assert subject(handshake(tls.listener, None)) == "b.test"
    b2 = certificate("b.test", "c.test")
    tls.apply(Tls(certificates=(b2,)))  # a renewal: the next handshake gets the new one
    assert handshake(tls.listener, "c.test").getpeercert()["subjectAltName"] == (
        ("DNS", "b.test"), ("DNS", "c.test"))
    tls.apply(Tls(certificates=(A, b2)))  # two: the callback is back and picks by name
    assert tls.listener.sni_callback is not None
    assert subject(handshake(tls.listener, "c.test")) == "b.test"
    assert subject(handshake(tls.listener, "x.wild.test")) == "a.test"
    tls.apply(Tls(certificates=()))  # none (ACME has none yet): refused, as before
    with pytest.raises(ssl.SSLError):
        handshake(tls.listener, "a.test")
