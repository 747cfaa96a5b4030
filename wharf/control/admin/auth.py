"""The admin API's token: created once, read at start, compared in constant time.

A request proves it knows the token in one of two ways:
- `Authorization: Bearer TOKEN` (curl, scripts, Prometheus with `metrics_auth`);
- the session cookie a browser gets from `POST /api/session` with the token (a login form):
  EventSource cannot set headers, and a token in the URL (`?token=`) would end up in the
  browser's history, in Referer headers and in any log of URLs. The cookie holds an HMAC of
  the token, not the token; it is HttpOnly (no script reads it) and SameSite=Strict (no other
  site's page sends it), and a cookie-authenticated request that changes something must not
  come from another origin. Changing the token file ends every session at the next `up`.

The token never appears in a log line or an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from wharf.errors import ControlError

COOKIE = "wharf_session"
_SESSION_LABEL = b"wharf admin session v1"


def ensure_token(path: Path) -> str:
    """The token in `path`; if there is no such file, create it (mode 0600) with a random
    token of 256 bits."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ControlError(f"cannot create the admin token file {path}: {exc.strerror}",
                           hint="set admin.token_file to a file you can write") from None
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ControlError(f"cannot read the admin token file {path}: {exc.strerror}") from None
    if not token:
        raise ControlError(f"the admin token file {path} is empty",
                           hint="write a token in it, or remove it to have one created")
    return token


class Authenticator:
    """Checks a request's credentials against the token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.session = hmac.new(self._token, _SESSION_LABEL, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "<Authenticator>"  # never the token

    def check_token(self, given: str) -> bool:
        """True if `given` is the token."""
        return hmac.compare_digest(given.encode(errors="replace"), self._token)

    def check_bearer(self, header: str | None) -> bool:
        """True if an Authorization header carries the token."""
        if header is None:
            return False
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.check_token(value.strip())

    def check_cookie(self, header: str | None) -> bool:
        """True if a Cookie header carries the session cookie of this token."""
        for part in (header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(errors="replace"),
                                                      self.session.encode()):
                return True
        return False

    def session_cookie(self) -> str:
        """The Set-Cookie value that logs a browser in."""
        return f"{COOKIE}={self.session}; HttpOnly; SameSite=Strict; Path=/"


def logout_cookie() -> str:
    """The Set-Cookie value that ends a browser's session."""
    return f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
