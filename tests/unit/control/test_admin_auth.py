"""The admin token: created once for the owner alone, checked in constant time, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wharf.control.admin.auth import COOKIE, Authenticator, ensure_token
from wharf.errors import ControlError


def test_a_missing_token_file_is_created_mode_0600_with_a_random_token(tmp_path: Path):
    path = tmp_path / "admin.token"
    token = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40 and ensure_token(path) == token
    assert ensure_token(tmp_path / "other") != token


def test_an_existing_token_file_is_read_not_replaced(tmp_path: Path):
    path = tmp_path / "t"
    path.write_text("  my-own-token \n")
    assert ensure_token(path) == "my-own-token"


def test_an_empty_token_file_is_refused(tmp_path: Path):
    path = tmp_path / "t"
    path.write_text("\n")
    with pytest.raises(ControlError, match="empty"):
        ensure_token(path)


def test_the_bearer_header_must_carry_the_token():
    auth = Authenticator("s3cret")
    assert auth.check_bearer("Bearer s3cret") and auth.check_bearer("bearer s3cret")
    for header in (None, "", "Bearer", "Bearer s3cre", "Bearer s3cretx", "Basic s3cret",
                   "s3cret", "Bearer s3crét"):
        assert not auth.check_bearer(header), header


def test_the_session_cookie_is_not_the_token_and_is_checked():
    auth = Authenticator("s3cret")
    cookie = auth.session_cookie()
    assert "s3cret" not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0]
    assert auth.check_cookie(f"theme=dark; {value}")
    assert not auth.check_cookie(f"{COOKIE}=0123")
    assert not auth.check_cookie(None)
    assert not Authenticator("other").check_cookie(value)


def test_the_repr_never_shows_the_token():
    assert "s3cret" not in repr(Authenticator("s3cret"))
