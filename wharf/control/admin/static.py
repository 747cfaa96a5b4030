"""The web dashboard's files (wharf/dashboard/, shipped in the package), served as they are.

Only the files of the package directory are served, by exact name (no path is ever joined, so
`..` leads nowhere), and without the token: the page holds no data of its own; everything it
shows it asks of the API with the session cookie, as Traefik's webui does. Each answer forbids
any other origin (Content-Security-Policy `default-src 'self'`): the page can load nothing from
a CDN, nor be framed by another site.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

PREFIX = "/dashboard/"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS = [
    ("content-security-policy", "default-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer"),
]


@cache
def assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the dashboard by its name, with its content type."""
    found = {}
    for entry in files("wharf.dashboard").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            found[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return found


def lookup(path: str) -> tuple[bytes, str] | None:
    """The body and content type of a dashboard path (`/dashboard/` is its index.html), or
    None if there is no such file."""
    if not path.startswith(PREFIX):
        return None
    return assets().get(path[len(PREFIX):] or "index.html")
