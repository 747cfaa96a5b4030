"""File certificates: names from the certificate, and every problem with its key path."""

import datetime
import textwrap
from pathlib import Path

import pytest

from wharf.config import load_config
from wharf.errors import ConfigError
from wharf.testing.certs import DAY, TestCA

CA = TestCA()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wharf.toml"
    path.write_text(textwrap.dedent(text))
    return path


def tls_config(tmp_path: Path, certificates: str, listen_tls: str = '["127.0.0.1:8443"]',
               extra: str = "") -> Path:
    return write(tmp_path, f"""
        [proxy]
        listen = ["127.0.0.1:8080"]
        listen_tls = {listen_tls}
        [tls]
        certificates = {certificates}
        {extra}
    """)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_names_come_from_the_sans_exact_and_wildcard_and_paths_from_the_config_dir(tmp_path):
    (tmp_path / "certs").mkdir()
    CA.write(tmp_path / "certs", "site", ["Example.com", "*.example.com", "127.0.0.1"])
    config = load_config(tls_config(
        tmp_path, '[{ cert = "certs/site.pem", key = "certs/site.key" }]'))
    [cert] = config.tls_files
    assert cert.names == ("example.com", "*.example.com", "127.0.0.1")
    assert cert.cert_path == tmp_path / "certs" / "site.pem"
    assert config.tls is not None and config.tls.certificates[0].key.is_absolute()
    assert cert.cert_pem.count("BEGIN CERTIFICATE") == 2  # the chain, as in the file
    assert "key_pem" not in repr(cert)
    assert config.warnings == ()


def test_the_common_name_counts_only_without_a_san(tmp_path):
    chain, key = CA.issue([], common_name="legacy.example", san=False)
    (tmp_path / "c.pem").write_text(chain)
    (tmp_path / "c.key").write_text(key)
    config = load_config(tls_config(tmp_path, '[{ cert = "c.pem", key = "c.key" }]'))
    assert config.tls_files[0].names == ("legacy.example",)


def test_missing_and_unreadable_files_are_named_by_key_path(tmp_path):
    (tmp_path / "dir.pem").mkdir()
    found = problems_of(tls_config(
        tmp_path, '[{ cert = "nope.pem", key = "nope.key" }, { cert = "dir.pem", key = "k" }]'))
    assert f"tls.certificates[0].cert: no such file: {tmp_path / 'nope.pem'}" in found
    assert f"tls.certificates[0].key: no such file: {tmp_path / 'nope.key'}" in found
    assert any(p.startswith("tls.certificates[1].cert: is a directory") for p in found)


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path):
    CA.write(tmp_path, "a", ["a.example"])
    CA.write(tmp_path, "b", ["b.example"])
    found = problems_of(tls_config(tmp_path, '[{ cert = "a.pem", key = "b.key" }]'))
    assert found == [f"tls.certificates[0].key: {tmp_path / 'b.key'} is not the key of the "
                     f"certificate in {tmp_path / 'a.pem'}"]


def test_files_that_hold_no_pem_are_refused(tmp_path):
    (tmp_path / "junk.pem").write_text("hello\n")
    CA.write(tmp_path, "a", ["a.example"])
    found = problems_of(tls_config(tmp_path, '[{ cert = "junk.pem", key = "a.key" }, '
                                             '{ cert = "a.pem", key = "junk.pem" }]'))
    assert any(p.startswith("tls.certificates[0].cert:") and "no PEM certificate" in p
               for p in found)
    assert any(p.startswith("tls.certificates[1].key:") and "no PEM private key" in p
               for p in found)


def test_an_expired_certificate_is_an_error(tmp_path):
    CA.write(tmp_path, "old", ["old.example"], valid_for=-DAY)
    [problem] = problems_of(tls_config(tmp_path, '[{ cert = "old.pem", key = "old.key" }]'))
    assert problem.startswith("tls.certificates[0].cert:") and "expired on" in problem


def test_a_certificate_that_expires_within_a_week_is_a_warning(tmp_path):
    CA.write(tmp_path, "soon", ["soon.example"], valid_for=datetime.timedelta(days=3))
    config = load_config(tls_config(tmp_path, '[{ cert = "soon.pem", key = "soon.key" }]'))
    [warning] = config.warnings
    assert warning.path == "tls.certificates[0].cert" and "expires in 3.0 days" in warning.message


def test_listen_tls_needs_a_certificate_source(tmp_path):
    found = problems_of(tls_config(tmp_path, "[]"))
    assert found == ["proxy.listen_tls: needs a certificate source: add [tls] certificates, "
                     "acme or local_ca"]
    assert load_config(tls_config(tmp_path, "[]", extra="local_ca = true")).tls_files == ()


def test_listen_tls_without_a_tls_table_needs_a_source_too(tmp_path):
    found = problems_of(write(tmp_path, """
        [proxy]
        listen_tls = ["127.0.0.1:8443"]
    """))
    assert found == ["proxy.listen_tls: needs a certificate source: add [tls] certificates, "
                     "acme or local_ca"]


def test_certificates_without_a_tls_listener_are_a_warning(tmp_path):
    CA.write(tmp_path, "a", ["a.example"])
    config = load_config(tls_config(tmp_path, '[{ cert = "a.pem", key = "a.key" }]',
                                    listen_tls="[]"))
    assert [w.path for w in config.warnings] == ["tls.certificates"]


def test_tls_problems_come_with_the_other_problems(tmp_path):
    found = problems_of(write(tmp_path, """
        [proxy]
        listen_tls = ["127.0.0.1:8443"]
        workers = 0
        [tls]
        certificates = [{ cert = "x.pem", key = "x.key" }]
        min_version = "1.1"
    """))
    assert {p.split(":")[0] for p in found} >= {
        "proxy.workers", "tls.min_version", "tls.certificates[0].cert"}


def test_a_certificate_entry_without_its_key_reports_only_the_missing_key(tmp_path):
    problems = problems_of(tls_config(tmp_path, '[{ cert = "a.pem" }]'))
    assert any(p.startswith("tls.certificates[0].key: missing required key") for p in problems)
    assert not any("directory" in p for p in problems), problems
