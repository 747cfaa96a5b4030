"""Length-prefixed frames: how snapshots and worker reports travel over the proxy socket.

Each frame is a 4-byte big-endian length, then that many bytes of JSON. Lines were used before
and asyncio's line reader caps a line at its buffer limit (64 KiB by default: a worker report
over about 650 backends made the daemon drop the worker). A frame's size is known before it is
read, so the only cap is MAX_FRAME, there to refuse a corrupt length rather than allocate it.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Final

from wharf.errors import WharfError

HEADER: Final = struct.Struct("!I")
# 256 MiB: a snapshot takes about 50 bytes per backend, so this is some 5 million backends.
MAX_FRAME: Final = 256 * 1024 * 1024


class FrameError(WharfError):
    """The other end sent something that is not a frame (or one over MAX_FRAME)."""


def frame(payload: bytes) -> bytes:
    """`payload` as one frame."""
    if len(payload) > MAX_FRAME:
        raise FrameError(f"a frame of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    return HEADER.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame's payload; None when the other end closed between frames."""
    try:
        head = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("the connection closed inside a frame header") from None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise FrameError(f"a frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise FrameError("the connection closed inside a frame") from None
