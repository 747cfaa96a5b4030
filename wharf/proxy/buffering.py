"""A response's bytes that its client has not taken yet: memory first, then a temp file.

As nginx's `proxy_buffering`: a backend's answer is read as fast as the backend sends it, so
that its connection goes back to the pool (and its `max_conns` slot to the next request) as
soon as the whole answer is in, however slowly the client reads. Up to MEMORY_LIMIT bytes wait
in memory; beyond that they go to an unlinked temp file, up to the route's
`max_temp_file_size`; past both, the buffer says it is full and the exchange stops reading
from the backend (back-pressure, as without buffering).

MEMORY_LIMIT is 64 KiB: nginx's default `proxy_buffers 8 4k|8k` is 32 or 64 KiB, and 64 KiB is
also the client transport's own high-water mark, so a slow reader holds at most about twice
that in memory whatever the answer's size (one read from the backend, up to 256 KiB with
uvloop, can overshoot it once). The file is read back in FILE_CHUNK pieces.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from typing import Final

MEMORY_LIMIT: Final = 64 * 1024
FILE_CHUNK: Final = 64 * 1024


class ResponseBuffer:
    """A FIFO of bytes: memory, then (once memory is full) a temp file, in order."""

    __slots__ = ("_fd", "_file_read", "_file_written", "_memory", "_memory_size", "max_file")

    def __init__(self, max_file: int) -> None:
        self.max_file = max_file  # 0: memory only
        self._memory: deque[bytes] = deque()
        self._memory_size = 0
        self._fd = -1
        self._file_written = 0
        self._file_read = 0

    def __repr__(self) -> str:
        return (f"<ResponseBuffer memory={self._memory_size} "
                f"file={self._file_written - self._file_read}>")

    def __len__(self) -> int:
        return self._memory_size + self._file_written - self._file_read

    def full(self) -> bool:
        """True when the backend must wait: memory and the temp file allowance are used up."""
        if self._file_written:
            return self._file_written >= self.max_file
        return self._memory_size >= MEMORY_LIMIT and not self._file_usable()

    def _file_usable(self) -> bool:
        return self.max_file > 0 and self._fd != -2

    def add(self, data: bytes | memoryview) -> None:
        """Keep `data` after everything already kept (a memoryview is copied if kept in
        memory, so that the bytes it views can be freed)."""
        if not self._file_written and (
                self._memory_size + len(data) <= MEMORY_LIMIT or not self._file_usable()):
            self._memory.append(bytes(data))  # over MEMORY_LIMIT only without a file to use
            self._memory_size += len(data)
            return
        if self._fd == -1:
            try:
                fd, path = tempfile.mkstemp(prefix="wharf-response-")
            except OSError:
                self._fd = -2  # no temp space: memory, then back-pressure
                self._memory.append(bytes(data))
                self._memory_size += len(data)
                return
            os.unlink(path)  # gone from the directory: closing it frees the space
            self._fd = fd
        offset = self._file_written
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            offset += written
            view = view[written:]
        self._file_written = offset

    def take(self) -> bytes:
        """The next bytes to send (b"" when empty)."""
        if self._memory:
            data = self._memory.popleft()
            self._memory_size -= len(data)
            return data
        if self._file_read == self._file_written:
            return b""
        data = os.pread(self._fd, min(FILE_CHUNK, self._file_written - self._file_read),
                        self._file_read)
        self._file_read += len(data)
        if self._file_read == self._file_written:
            self._file_read = self._file_written = 0  # drained: the next spill starts over
            os.ftruncate(self._fd, 0)
        return data

    def close(self) -> None:
        """Let go of the memory and the temp file."""
        self._memory.clear()
        self._memory_size = 0
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
