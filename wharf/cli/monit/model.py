"""What `wharf monit` shows and how its keys change it: plain synchronous code, no terminal, no
socket, no clock (the I/O shell in `run.py` feeds it status rows, log data and key bytes).

Theory of operation: the monitor holds the last status rows the daemon sent, which app is
selected, and the tail of that app's logs. Keys move the selection between apps (an app's
instances are listed together and selected together, since restart and logs act on an app),
ask for a restart, or quit. Screen space is shared by `plan`: the process list first (it is the
point of the view), then the backends, then the logs; in a small terminal each part shrinks to
a window around what matters (the selected app, the newest lines) rather than breaking.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Any

# Lines of an app's logs kept for the log pane: more than any terminal is tall.
LOG_LINES_KEPT = 500
# A partial line longer than this is shown as it is rather than held for its end.
PARTIAL_LINE_LIMIT = 4096


class Key(enum.Enum):
    """What a key press asks for."""

    UP = "up"
    DOWN = "down"
    HOME = "home"
    END = "end"
    RESTART = "restart"
    QUIT = "quit"


_SEQUENCES = {
    b"\x1b[A": Key.UP, b"\x1bOA": Key.UP, b"\x1b[B": Key.DOWN, b"\x1bOB": Key.DOWN,
    b"\x1b[H": Key.HOME, b"\x1bOH": Key.HOME, b"\x1b[1~": Key.HOME,
    b"\x1b[F": Key.END, b"\x1bOF": Key.END, b"\x1b[4~": Key.END,
}
_LETTERS = {b"k": Key.UP, b"j": Key.DOWN, b"g": Key.HOME, b"G": Key.END,
            b"r": Key.RESTART, b"q": Key.QUIT, b"Q": Key.QUIT, b"\x03": Key.QUIT}


def decode_keys(data: bytes) -> list[Key]:
    """The keys in a chunk read from the terminal; unknown keys and sequences are skipped."""
    keys = []
    i = 0
    while i < len(data):
        if data[i:i + 1] == b"\x1b":
            seq = next((s for s in _SEQUENCES if data.startswith(s, i)), None)
            if seq is not None:
                keys.append(_SEQUENCES[seq])
                i += len(seq)
                continue
            i += _unknown_sequence_length(data, i)
            continue
        key = _LETTERS.get(data[i:i + 1])
        if key is not None:
            keys.append(key)
        i += 1
    return keys


def _unknown_sequence_length(data: bytes, i: int) -> int:
    """The length of an escape sequence we do not use (`ESC [ 5 ~`, `ESC O P`), so that its
    letters are not taken for keys; a lone ESC is one byte."""
    if data[i + 1:i + 2] not in (b"[", b"O"):
        return 1
    j = i + 2
    while j < len(data) and not (0x40 <= data[j] <= 0x7E):
        j += 1
    return j + 1 - i


@dataclass(frozen=True, slots=True)
class Heights:
    """Rows of the terminal given to each pane (each pane's border and header included)."""

    processes: int
    backends: int
    logs: int


# A pane's frame: two border lines and a header line.
FRAME = 3
FOOTER = 1


def plan(height: int, processes: int, backends: int) -> Heights:
    """Share `height` rows: the footer, then the process list (whole if it fits, else what is
    left after a minimal log pane), then the backends (at most a third of what remains), then
    the logs. A pane with no room gets 0 and is not drawn."""
    room = max(height - FOOTER, 0)
    min_logs = FRAME + 2 if room >= 2 * FRAME + 4 else 0
    procs = min(FRAME + max(processes, 1), room - min_logs)
    procs = max(procs, min(room, FRAME + 1))
    room -= procs
    back = 0
    if room - min_logs >= FRAME + 1:
        back = min(FRAME + max(backends, 1), max((room - min_logs) // 3, FRAME + 1))
    room -= back
    return Heights(procs, back, room if room >= FRAME else 0)


def window(count: int, focus: range, capacity: int) -> range:
    """The rows of a list of `count` rows to show in `capacity` rows, keeping `focus` (the
    selected rows) in view: the start of the list if it all fits or focus is near it."""
    if capacity <= 0:
        return range(0)
    if count <= capacity:
        return range(count)
    start = min(max(focus.stop - capacity, 0), focus.start)
    start = min(start, count - capacity)
    return range(start, start + capacity)


class LogTail:
    """The last lines of an app's output, from a stream of chunks that may split lines."""

    def __init__(self, keep: int = LOG_LINES_KEPT) -> None:
        self.lines: deque[tuple[str, str]] = deque(maxlen=keep)  # (stream, line)
        self._partial: dict[str, str] = {}

    def add(self, stream: str, data: str) -> None:
        """Add a chunk of `stream` ("out" or "err"); a line is kept once it ends."""
        text = self._partial.pop(stream, "") + data
        *complete, rest = text.split("\n")
        for line in complete:
            self.lines.append((stream, line.rstrip("\r")))
        if len(rest) > PARTIAL_LINE_LIMIT:
            self.lines.append((stream, rest))
        elif rest:
            self._partial[stream] = rest

    def note(self, text: str) -> None:
        """A line of Wharf's own (the stream ended, the app has no output)."""
        for line in text.splitlines() or [""]:
            self.lines.append(("note", line))

    def last(self, count: int) -> list[tuple[str, str]]:
        """The newest `count` lines, oldest first, with a line still being written last."""
        pending = [(s, p) for s, p in self._partial.items()]
        lines = [*self.lines, *pending]
        return lines[-count:] if count > 0 else []


# Requests per second are measured over this many seconds of totals (the dashboard's window).
RATE_WINDOW = 5.0


class Rates:
    """Requests per second and 5xx share per backend, from the traffic totals of the last
    RATE_WINDOW seconds (totals: a rate is a difference of two of them)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, dict[tuple[str, str], tuple[int, int]]]] = deque()

    def take(self, traffic: dict[str, Any] | None, at: float) -> None:
        """A new reading of the totals (None: the daemon counts no traffic)."""
        if traffic is None:
            return
        totals = {(b["service"], b["backend"]): (sum(b["requests"]), b["requests"][5])
                  for b in traffic.get("backends", ())}
        self._samples.append((at, totals))
        while len(self._samples) > 2 and at - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()

    def of(self, service: str, backend: str) -> tuple[float, float, int] | None:
        """(requests/s, share of 5xx, total requests) of one backend; None before two
        readings (or when the daemon counts nothing)."""
        if len(self._samples) < 2:
            return None
        (t0, first), (t1, last) = self._samples[0], self._samples[-1]
        now = last.get((service, backend))
        if now is None or t1 <= t0:
            return None
        then = first.get((service, backend), (0, 0))
        count, errors = max(now[0] - then[0], 0), max(now[1] - then[1], 0)
        return count / (t1 - t0), errors / count if count else 0.0, now[0]


class Monitor:
    """The monitor's state: the daemon's last status, the selection, the selected app's logs,
    and the line of news in the footer."""

    def __init__(self) -> None:
        self.instances: list[dict[str, Any]] = []
        self.backends: list[dict[str, Any]] = []
        self.selected: str | None = None
        self.logs = LogTail()
        self.message = ""
        self.restarting: str | None = None
        self.rates = Rates()

    @property
    def apps(self) -> list[str]:
        """The apps, in the daemon's order."""
        return list(dict.fromkeys(r["app"] for r in self.instances))

    def set_status(self, rows: list[dict[str, Any]]) -> bool:
        """Take a status answer (rows with backends); True if the selected app changed (the
        first app at the start; a neighbour if the selected one went away)."""
        before = self.apps
        self.instances = [r for r in rows if r.get("kind", "instance") == "instance"]
        self.backends = [r for r in rows if r.get("kind") == "backend"]
        apps = self.apps
        if self.selected in apps:
            return False
        old = before.index(self.selected) if self.selected in before else 0
        self.selected = apps[min(old, len(apps) - 1)] if apps else None
        self.logs = LogTail()
        return self.selected is not None

    def move(self, key: Key) -> bool:
        """Move the selection; True if it changed (its logs must then be followed anew)."""
        apps = self.apps
        if not apps:
            return False
        at = apps.index(self.selected) if self.selected in apps else 0
        target = {Key.UP: at - 1, Key.DOWN: at + 1, Key.HOME: 0, Key.END: len(apps) - 1}[key]
        target = min(max(target, 0), len(apps) - 1)
        if apps[target] == self.selected:
            return False
        self.selected = apps[target]
        self.logs = LogTail()
        return True

    def selected_rows(self) -> range:
        """Where the selected app's instances are in the process list."""
        found = [i for i, r in enumerate(self.instances) if r["app"] == self.selected]
        return range(found[0], found[-1] + 1) if found else range(0)

    def selected_backends(self) -> list[dict[str, Any]]:
        """The backends of the routes that send to the selected app."""
        return [r for r in self.backends if r.get("app") == self.selected]
