"""What a proxy worker tells the daemon of its backends, and how the daemon adds it up.

A worker knows things the daemon does not: requests in flight to each backend, passive
ejections, the last error it saw. It reports them about once a second, but only the backends
with something to say (a request in flight, ejected, an error), and of those only what changed
since its last report on this connection: a report at 10,000 idle backends is a few bytes, and
the daemon keeps the sum. Both sides start from "nothing to say" on each connection, and an
entry that goes back to nothing is sent once as (0, False, "") so that the daemon forgets it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, int]  # (service, host, port); service "" for a backend that is leaving
State = tuple[int, bool, str]  # (requests in flight, ejected, last error)
QUIET: State = (0, False, "")


@dataclass(slots=True)
class ReportWriter:
    """The worker's side: what it last told the daemon, to send only changes."""

    sent: dict[Key, State] = field(default_factory=dict)

    def encode(self, pid: int, version: int, states: dict[Key, State],
               traffic: dict[str, Any] | None = None) -> bytes:
        """A report of the changes from the last one to `states` (the backends that are not
        quiet now), and the traffic counters that changed (see wharf/proxy/counters.py), in
        JSON."""
        changes = [[*key, *state] for key, state in states.items() if self.sent.get(key) != state]
        changes += [[*key, *QUIET] for key in self.sent if key not in states]
        self.sent = states
        report: dict[str, Any] = {"pid": pid, "version": version, "backends": changes}
        if traffic is not None:
            report["traffic"] = traffic
        return json.dumps(report, separators=(",", ":")).encode()


@dataclass(slots=True)
class WorkerReport:
    """The daemon's side: one worker's snapshot version and every backend it had news of."""

    version: int = -1
    backends: dict[Key, State] = field(default_factory=dict)
    traffic: dict[str, Any] | None = None  # the last report's counters, if it had any

    def apply(self, payload: bytes) -> bool:
        """Take in one report; False if it is not one."""
        try:
            data: Any = json.loads(payload)
            version = int(data["version"])
            changes = [((str(s), str(h), int(p)), (int(n), bool(e), str(err)))
                       for s, h, p, n, e, err in data["backends"]]
        except (ValueError, TypeError, KeyError):
            return False
        self.version = version
        self.traffic = data.get("traffic")
        for key, state in changes:
            if state == QUIET:
                self.backends.pop(key, None)
            else:
                self.backends[key] = state
        return True
