"""systemd's notify protocol (sd_notify(3)): tell the service manager when the daemon is ready,
reloading or stopping, what it is doing, and that its loop is alive.

Written here rather than taken from a library: the protocol is one datagram of `KEY=value`
lines to the AF_UNIX socket named in `NOTIFY_SOCKET` (a path, or `@name` in the abstract
namespace), about 40 lines; the PyPI clients (`sdnotify`, `systemd-python`) are either
unmaintained or need libsystemd and a C build.

The variables are taken out of the environment once read, as `sd_notify(unset_environment=1)`
does: the apps must not inherit them (an app that speaks sd_notify would be talking for Wharf,
and systemd would ignore it anyway: `NotifyAccess=main`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import MutableMapping

ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends notify messages to systemd, or does nothing when not run by it."""

    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec  # None: no watchdog asked for
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def __repr__(self) -> str:
        return f"<sd_notify {self.address or 'off'} watchdog_usec={self.watchdog_usec}>"

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """Read (and remove) NOTIFY_SOCKET and WATCHDOG_USEC; the watchdog is ours only if
        WATCHDOG_PID is unset or names this process."""
        env = os.environ if environ is None else environ
        address, usec, pid = (env.pop(key, None) for key in ENV_KEYS)
        watchdog = int(usec) if usec and usec.isdigit() and int(usec) > 0 else None
        if pid is not None and pid != str(os.getpid()):
            watchdog = None
        return cls(address or None, watchdog)

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return self._socket is not None

    def send(self, **fields: str | int) -> bool:
        """Send one message (`READY=1`, `STATUS=...`); False if it could not be sent. Never
        raises: systemd going away must not take the daemon down."""
        if self._socket is None or self.address is None:
            return False
        text = "\n".join(f"{key}={value}" for key, value in fields.items()) + "\n"
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._socket.sendto(text.encode(), target)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> None:
        """The daemon is up (or done reloading)."""
        self.send(READY=1, STATUS=status)

    def reloading(self) -> None:
        """A reload begins; systemd wants the monotonic clock with it (systemd 253+)."""
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                  // 1000, STATUS="reloading the config file")

    def stopping(self) -> None:
        """The daemon has begun to stop its apps."""
        self.send(STOPPING=1, STATUS="stopping every app")

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half the watchdog timeout, as sd_watchdog_enabled(3) says."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec and self.enabled else None

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
