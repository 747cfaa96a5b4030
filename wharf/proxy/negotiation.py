"""What a static answer should be, decided from the file name and the request's headers.

Sans-IO: the content type, the precompressed sibling (Accept-Encoding's q-values), the byte
range, and the preconditions in RFC 9110 13.2.2's order: If-Match, else If-Unmodified-Since
(false: 412, as nginx), then If-None-Match, else If-Modified-Since (false: 304).
"""

from __future__ import annotations

import mimetypes
from email.utils import parsedate_to_datetime

_TEXT = ("text/", "application/javascript", "application/json", "image/svg+xml")
# A compressed file asked for by its own name is that archive, not its content (`a.css.gz` is
# application/gzip, and has no Content-Encoding), as nginx serves it.
_ARCHIVES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
             "xz": "application/x-xz"}


def content_type(path: str) -> bytes:
    """The Content-Type of a file name (UTF-8 for text)."""
    kind, compressed = mimetypes.guess_type(path, strict=False)
    if compressed is not None:
        return _ARCHIVES.get(compressed, "application/octet-stream").encode()
    if kind is None:
        return b"application/octet-stream"
    if kind.startswith(_TEXT):
        kind += "; charset=utf-8"
    return kind.encode()


def _qvalues(header: str) -> dict[str, float]:
    """The q-value of each coding named in an Accept-Encoding header (lower case)."""
    found: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # not a q-value: the coding is not known to be acceptable
        coding = "gzip" if coding == "x-gzip" else coding  # RFC 9110 8.4.1.3
        found[coding] = max(q, found.get(coding, 0.0))
    return found


def preferred_encoding(header: str, offered: tuple[str, ...]) -> str:
    """The coding of `offered` (ours, in our order of preference) that the client's
    Accept-Encoding prefers, or "" for none: q=0 refuses, a higher q wins, a tie goes to the
    earlier coding; `*` stands for the codings not named. Identity wins only when named
    with a higher q (`gzip;q=0.5, identity` gets identity), and is the fallback, even if
    refused (nginx never answers 406)."""
    if not header or not offered:
        return ""
    q = _qvalues(header)
    others = q.get("*", 0.0)  # the q of a coding the header does not name
    best, best_q = "", 0.0
    for coding in offered:
        value = q.get(coding, others)
        if value > best_q:
            best, best_q = coding, value
    return best if best and best_q >= q.get("identity", 0.0) else ""


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(first, last) of a single byte range; None to ignore it; False if unsatisfiable."""
    if not header.startswith("bytes=") or "," in header or not header.isascii():
        return None  # (not ASCII: "²".isdigit() is true, and int() refuses it)
    first_s, sep, last_s = header[6:].strip().partition("-")
    if not sep or not (first_s.isdigit() or last_s.isdigit()):
        return None
    if not first_s:
        length = int(last_s)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    if last_s and not last_s.isdigit():
        return None
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s else size - 1
    if first >= size or (last_s and int(last_s) < first):
        return False
    return first, last


def _date(value: str) -> float | None:
    """An HTTP date as a timestamp; None if it is not one."""
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


def precondition_failed(headers: dict[bytes, str], etag: str, mtime: float) -> bool:
    """If-Match (strong comparison; `*` matches any file), else If-Unmodified-Since."""
    match = headers.get(b"if-match")
    if match is not None:
        tags = [t.strip() for t in match.split(",")]
        return "*" not in tags and etag not in tags
    since = headers.get(b"if-unmodified-since")
    when = _date(since) if since else None
    return when is not None and int(mtime) > when


def not_modified(headers: dict[bytes, str], etag: str, mtime: float) -> bool:
    """If-None-Match (weak comparison), else If-Modified-Since."""
    match = headers.get(b"if-none-match")
    if match is not None:
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        return "*" in tags or etag in tags
    since = headers.get(b"if-modified-since")
    when = _date(since) if since else None
    return when is not None and int(mtime) <= when
