"""The daemon's side of the certificate manager: made when a config first asks for ACME or
the local CA (its libraries cost the daemon 10 to 20 MiB: a config without them pays nothing),
told of every reload, asked for what the snapshot carries, and closed at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from wharf.config.model import Config
from wharf.errors import UsageError
from wharf.observability.events import EventStream
from wharf.registry.snapshot import Certificate

if TYPE_CHECKING:
    from wharf.certs.manager import CertManager

log = logging.getLogger("wharf.certs")

# How long a challenge waits for the workers to listen and serve the snapshot that carries it
# before the CA is told to look: workers take about a second to start with the daemon, and a
# worker that is restarting must not hold back every order for long.
CHALLENGE_WAIT = 10.0

Material = tuple[tuple[Certificate, ...], tuple[tuple[str, str], ...], tuple[Certificate, ...]]


class DaemonCerts:
    """The certificate manager, if the config wants one."""

    def __init__(self, publish: Callable[[], int],
                 served: Callable[[int, float], Awaitable[bool]],
                 events: EventStream | None = None) -> None:
        self._publish = publish  # publish a snapshot now; returns its version
        self._events = events
        self._served = served  # wait (bounded) until every worker serves a version
        self._manager: CertManager | None = None
        self._config: Config | None = None

    def __repr__(self) -> str:
        return f"<DaemonCerts {self._manager!r}>"

    def sync(self, config: Config) -> None:
        """Take `config` (at start and after a reload): start the manager if it is the first
        to want one, else hand it the new names."""
        self._config = config
        tls = config.tls
        if self._manager is None and tls is not None and (tls.acme or tls.local_ca):
            from wharf.certs.manager import CertManager

            self._manager = CertManager(config, self._publish_and_wait, self._events)
            self._manager.start()
        elif self._manager is not None:
            self._manager.configure(config)

    async def close(self) -> None:
        """Stop the manager (an order under way is abandoned)."""
        if self._manager is not None:
            await self._manager.close()

    async def _publish_and_wait(self, wait: bool) -> None:
        version = self._publish()
        if wait and not await self._served(version, CHALLENGE_WAIT):
            log.warning("wharf: not every proxy worker took the snapshot with the ACME "
                        "challenge within %.0fs; asking the CA to validate anyway",
                        CHALLENGE_WAIT)

    def material(self) -> Material:
        """(issued certificates, HTTP-01 answers, TLS-ALPN-01 certificates) for a snapshot."""
        m = self._manager
        return (m.issued(), m.http01(), m.alpn01()) if m is not None else ((), (), ())

    def rows(self) -> list[dict[str, Any]]:
        """`wharf certs` rows: every name with a certificate source."""
        if self._manager is not None:
            return self._manager.rows()
        if self._config is None or self._config.tls is None:
            return []
        from wharf.certs.listing import file_rows

        return file_rows(self._config)

    def status_rows(self) -> list[dict[str, Any]]:
        """The rows as `wharf status --json` carries them (kind `certificate`)."""
        return [{"kind": "certificate", **row} for row in self.rows()]

    def ca_pem(self) -> str:
        """The local CA's certificate."""
        if self._manager is None:
            raise UsageError("there is no local CA: local_ca is off in [tls]",
                             hint="set `local_ca = true` in [tls] and `wharf reload`")
        return self._manager.ca_pem()

    async def renew(self, name: str, timeout: float) -> dict[str, Any]:
        """Renew one managed name now and wait for the result."""
        if self._manager is None:
            raise UsageError(f"{name!r} is not a managed name: there is no [tls] acme or "
                             "local_ca", hint="file certificates are renewed by replacing "
                             "their files and `wharf reload`")
        return await self._manager.renew(name, timeout)
