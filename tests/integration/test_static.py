"""Static files through the proxy: bodies, types, validators, ranges, precompression, safety."""

from __future__ import annotations

import gzip
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import (
    assert_current_date,
    exchange,
    get,
    parse_responses,
    probe,
    request,
)


class Site:
    def __init__(self, root: Path, port: int, outside: Path) -> None:
        self.root, self.port, self.outside = root, port, outside


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("static")
    root = base / "www"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>\n")
    (root / "app.js").write_text("console.log('x');\n" * 100)
    (root / "app.js.gz").write_bytes(gzip.compress((root / "app.js").read_bytes()))
    (root / "app.js.br").write_bytes(b"pretend-brotli")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (root / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    outside = base / "secret.txt"
    outside.write_text("secret\n")
    (root / "escape").symlink_to(outside)
    (root / "inside-link").symlink_to(root / "index.html")
    wharf = Wharf(base)
    port = free_port()
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [[routes]]
        path = "/"
        static = "www"
        [[routes]]
        path = "/assets"
        static = "www"
    """)
    try:
        wharf.up()
        wait_until(lambda: probe(port), message="the proxy")
        yield Site(root, port, outside)
    finally:
        wharf.close()


def test_file_with_type_length_and_validators(site: Site):
    r = get(site.port, "/app.js")
    assert r.status == 200 and r.body == (site.root / "app.js").read_bytes()
    assert r.header("Content-Type") == "text/javascript; charset=utf-8"
    assert r.header("Content-Length") == str(len(r.body))
    assert r.header("ETag") and r.header("Last-Modified")


def test_route_prefix_is_the_root(site: Site):
    assert get(site.port, "/assets/app.js").body == (site.root / "app.js").read_bytes()


def test_large_file_is_sent_whole(site: Site):
    r = get(site.port, "/big.bin")
    assert r.body == (site.root / "big.bin").read_bytes()


def test_keep_alive_serves_files_one_after_another(site: Site):
    data, _ = exchange(site.port, b"GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                  b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"
                                  b"GET /app.js HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    bodies = [r.body for r in parse_responses(data)]
    assert bodies == [(site.root / n).read_bytes() for n in ("data.bin", "index.html", "app.js")]


def test_if_none_match_gives_304(site: Site):
    etag = get(site.port, "/index.html").header("ETag")
    r = get(site.port, "/index.html", headers=f"If-None-Match: {etag}\r\n")
    assert r.status == 304 and r.body == b""
    assert get(site.port, "/index.html", headers='If-None-Match: "other"\r\n').status == 200


def test_if_modified_since_gives_304(site: Site):
    modified = get(site.port, "/index.html").header("Last-Modified")
    r = get(site.port, "/index.html", headers=f"If-Modified-Since: {modified}\r\n")
    assert r.status == 304
    r = get(site.port, "/index.html",
            headers="If-Modified-Since: Mon, 01 Jan 1990 00:00:00 GMT\r\n")
    assert r.status == 200


@pytest.mark.parametrize(("spec", "first", "last"), [
    ("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 1048575), ("bytes=-10", 1048566, 1048575),
    ("bytes=1048000-9999999", 1048000, 1048575),
])
def test_single_range_gives_206(site: Site, spec: str, first: int, last: int):
    r = get(site.port, "/data.bin", headers=f"Range: {spec}\r\n")
    data = (site.root / "data.bin").read_bytes()
    assert r.status == 206 and r.body == data[first:last + 1]
    assert r.header("Content-Range") == f"bytes {first}-{last}/{len(data)}"


def test_unsatisfiable_range_gives_416(site: Site):
    r = get(site.port, "/data.bin", headers="Range: bytes=2000000-\r\n")
    assert r.status == 416 and r.header("Content-Range") == "bytes */1048576"


def test_multiple_ranges_get_the_whole_file(site: Site):
    r = get(site.port, "/data.bin", headers="Range: bytes=0-1,5-6\r\n")
    assert r.status == 200 and len(r.body) == 1048576


def test_directory_serves_index_and_redirects_without_slash(site: Site):
    assert get(site.port, "/").body == b"<h1>home</h1>\n"
    assert get(site.port, "/docs/").body == b"<h1>docs</h1>\n"
    r = get(site.port, "/docs?x=1")
    assert r.status == 301 and r.header("Location") == "/docs/?x=1"


def test_precompressed_siblings_follow_accept_encoding(site: Site):
    br = get(site.port, "/app.js", headers="Accept-Encoding: gzip, br\r\n")
    assert br.header("Content-Encoding") == "br" and br.body == b"pretend-brotli"
    gz = get(site.port, "/app.js", headers="Accept-Encoding: gzip\r\n")
    assert gz.header("Content-Encoding") == "gzip"
    assert gzip.decompress(gz.body) == (site.root / "app.js").read_bytes()
    plain = get(site.port, "/app.js")
    assert plain.header("Content-Encoding") is None and plain.header("Vary") == "Accept-Encoding"
    assert gz.header("ETag") != plain.header("ETag")


def test_head_has_headers_and_no_body(site: Site):
    data, _ = exchange(site.port, b"HEAD /data.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                  b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close"
                                  b"\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 1048576" in head
    assert rest.startswith(b"HTTP/1.1 200")  # no body bytes between the two responses


def test_methods_other_than_get_and_head_are_405(site: Site):
    r = request(site.port, b"DELETE /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                           b"\r\n")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"


def test_missing_file_is_404(site: Site):
    assert get(site.port, "/nope.txt").status == 404


@pytest.mark.parametrize(("path", "status"), [
    ("/../secret.txt", 400), ("/%2e%2e/secret.txt", 400), ("/docs/%2E%2E/%2e%2e/secret.txt", 400),
    ("/..%2fsecret.txt", 400), ("/escape", 404), ("/index.html%00.js", 400),
])
def test_no_path_escapes_the_root(site: Site, path: str, status: int):
    r = request(site.port, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                .encode())
    assert r.status == status
    assert b"secret" not in r.body


def test_a_symlink_inside_the_root_is_followed(site: Site):
    assert get(site.port, "/inside-link").body == b"<h1>home</h1>\n"


def test_a_slow_reader_gets_the_whole_file(site: Site):
    """The reader waits first, so the socket fills and sendfile must wait for room."""
    data = _slow_read(site.port, b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert data.partition(b"\r\n\r\n")[2] == (site.root / "big.bin").read_bytes()


def _slow_read(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        time.sleep(0.5)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_a_path_that_is_not_utf8_is_400_and_the_connection_goes_on(site: Site):
    data, _ = exchange(site.port, b"GET /%ff HTTP/1.1\r\nHost: t\r\n\r\n"
                                  b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close"
                                  b"\r\n\r\n")
    assert [r.status for r in parse_responses(data)] == [400, 200]


def test_a_range_in_other_digits_than_ascii_is_ignored(site: Site):
    data, _ = exchange(site.port, b"GET /index.html HTTP/1.1\r\nHost: t\r\n"
                                  b"Range: bytes=\xb2-\r\n\r\n"
                                  b"GET /app.js HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert [(r.status, r.body) for r in parse_responses(data)] == [
        (200, b"<h1>home</h1>\n"), (200, (site.root / "app.js").read_bytes())]


@pytest.mark.parametrize(("accept", "encoding"), [
    ("gzip;q=0", None), ("br;q=0, gzip;q=0", None), ("*;q=0", None), ("br;Q=0, *", "gzip"),
    ("br;q=0.5, gzip;q=1", "gzip"), ("gzip;q=0.9, br;q=0.8", "gzip"), ("gzip, br", "br"),
    ("*", "br"), ("GZIP", "gzip"), ("x-gzip", "gzip"), ("gzip;q=0.5, identity", None),
    ("gzip;q=0.5, identity;q=0.2", "gzip"), ("gzip;q=oops", None), ("", None),
])
def test_accept_encoding_q_values_choose_the_sibling(site: Site, accept: str, encoding: str):
    r = get(site.port, "/app.js", headers=f"Accept-Encoding: {accept}\r\n")
    assert r.status == 200 and r.header("Content-Encoding") == encoding
    assert r.body == (site.root / ("app.js" + {None: "", "br": ".br", "gzip": ".gz"}[encoding])
                      ).read_bytes()


def test_if_match_and_if_unmodified_since_give_412(site: Site):
    plain = get(site.port, "/index.html")
    etag, modified = plain.header("ETag"), plain.header("Last-Modified")
    assert get(site.port, "/index.html", headers='If-Match: "other"\r\n').status == 412
    assert get(site.port, "/index.html", headers=f"If-Match: W/{etag}\r\n").status == 412
    assert get(site.port, "/index.html", headers=f'If-Match: "x", {etag}\r\n').status == 200
    assert get(site.port, "/index.html", headers="If-Match: *\r\n").status == 200
    assert get(site.port, "/index.html",
               headers="If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT\r\n").status == 412
    assert get(site.port, "/index.html", headers=f"If-Unmodified-Since: {modified}\r\n"
               ).status == 200
    assert get(site.port, "/index.html", headers="If-Unmodified-Since: not a date\r\n"
               ).status == 200
    # If-Match decides when both are there (RFC 9110 13.2.2)
    assert get(site.port, "/index.html", headers=f"If-Match: {etag}\r\nIf-Unmodified-Since: "
               "Mon, 01 Jan 1990 00:00:00 GMT\r\n").status == 200


def test_a_compressed_file_asked_for_by_name_is_that_archive(site: Site):
    r = get(site.port, "/app.js.gz", headers="Accept-Encoding: gzip\r\n")
    assert r.status == 200 and r.body == (site.root / "app.js.gz").read_bytes()
    assert r.header("Content-Type") == "application/gzip"
    assert r.header("Content-Encoding") is None


def test_a_file_asked_for_as_a_directory_is_404(site: Site):
    assert get(site.port, "/index.html/").status == 404
    assert get(site.port, "/assets/app.js/").status == 404
    assert get(site.port, "/docs/").status == 200


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/index.html", "", 200), ("/nope", "", 404), ("/docs", "", 301),
    ("/index.html", "If-Match: \"x\"\r\n", 412), ("/data.bin", "Range: bytes=5000000-\r\n", 416),
])
def test_every_static_answer_has_a_date(site: Site, path: str, headers: str, status: int):
    before = time.time()
    r = get(site.port, path, headers=headers)
    assert r.status == status
    assert_current_date(r.header("Date"), before)


def test_a_304_has_a_date(site: Site):
    etag = get(site.port, "/index.html").header("ETag")
    before = time.time()
    r = get(site.port, "/index.html", headers=f"If-None-Match: {etag}\r\n")
    assert r.status == 304
    assert_current_date(r.header("Date"), before)
