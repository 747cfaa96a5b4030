"""The control protocol: one JSON object per line over a Unix stream socket.

Client → daemon: {"command": NAME, "args": {...}}
Daemon → client: zero or more {"stream": ...} messages, then {"ok": true, "result": ...} or
{"ok": false, "error": TEXT, "hint": TEXT, "exit_code": N}.
"""

from __future__ import annotations

import json
from typing import Any

# A request is a few hundred bytes; anything this large is not a Wharf client.
MAX_MESSAGE = 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of JSON."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line; raise ValueError if it is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message
