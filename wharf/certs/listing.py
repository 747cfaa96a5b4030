"""The rows of `wharf certs --json` (a stable interface).

One row per name: its source (`file`, `acme`, `local`), issuer, validity, serial, next renewal
and last error. A file certificate gives a row per name in its SANs (file certificates are
the user's to renew: no next renewal); the loader has read them (`Config.tls_files`).
"""

from __future__ import annotations

from typing import Any

from wharf.certs.store import Meta, describe
from wharf.config.model import Config


def file_rows(config: Config) -> list[dict[str, Any]]:
    """A row per name of each file certificate of `config`."""
    rows = []
    for c in config.tls_files:
        issuer, not_before, not_after, serial = describe(c.cert_pem)
        rows += [{"name": name, "source": "file", "issuer": issuer, "not_before": not_before,
                  "not_after": not_after, "serial": serial, "next_renewal": None,
                  "last_error": "", "last_error_at": None, "path": str(c.cert_path)}
                 for name in c.names]
    return rows


def managed_row(name: str, meta: Meta, next_renewal: float | None) -> dict[str, Any]:
    """The row of a name the daemon gets certificates for."""
    return {"name": name, "source": meta.source, "issuer": meta.issuer,
            "not_before": meta.not_before, "not_after": meta.not_after, "serial": meta.serial,
            "next_renewal": next_renewal, "last_error": meta.last_error,
            "last_error_at": meta.last_error_at, "order_url": meta.order_url}
