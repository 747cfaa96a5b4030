"""The rows of `wharf status --json` (a stable interface), which the admin API, the
dashboard, `/metrics`, supervisorctl and systemd's STATUS= read too: one per instance, then,
if asked, one per backend of each route, per certificate and per cluster member.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wharf.config import Config
from wharf.config.load import PROXY_APP
from wharf.daemon.certs import DaemonCerts
from wharf.daemon.cluster_link import ClusterLink
from wharf.daemon.commands import select
from wharf.daemon.pool import Pool
from wharf.daemon.start_order import StartOrder
from wharf.daemon.status_fields import listen_addresses, uses_port
from wharf.observability.process_stats import ProcessSampler
from wharf.registry.registry import Registry
from wharf.supervise.program import Program
from wharf.supervise.states import State


class StatusRows:
    """Assembles the status rows from the parts of the daemon that know each field."""

    def __init__(self, programs: dict[str, Program], config: Callable[[], Config],
                 pool: Pool, order: StartOrder, sampler: ProcessSampler, registry: Registry,
                 certs: DaemonCerts, cluster: ClusterLink) -> None:
        self._programs = programs  # the daemon's, shared
        self._config = config  # the config in force
        self._pool = pool
        self._order = order
        self._sampler = sampler
        self._registry = registry
        self._certs = certs
        self._cluster = cluster

    def __repr__(self) -> str:
        return f"<StatusRows apps={len(self._programs)}>"

    def rows(self, app: str | None, backends: bool = False) -> list[dict[str, Any]]:
        """Status rows for `status --json` (a stable interface): one per instance, then, with
        `backends`, one per backend of each route."""
        config, rows = self._config(), []
        for program in select(self._programs, app):
            is_proxy = program.name == PROXY_APP
            routed = self._pool.routed(program.name)
            # What the file asks for: it differs after `wharf scale`, until a reload.
            configured = config.apps[program.name].instances \
                if program.name in config.apps else len(program.instances)
            for instance in program.instances:
                stats = instance.statistics()
                sample = self._sampler.samples.get(stats.pid) if stats.pid else None
                ready = self._pool.is_ready(instance)
                not_ready = self._pool.why_not_ready(instance, fallback="") \
                    if instance.state == State.RUNNING and not ready else ""
                rows.append({
                    "kind": "instance", "ready": ready,
                    "app": stats.app, "instance": stats.instance, "pid": stats.pid,
                    "state": stats.state, "port": stats.port,
                    "uptime_s": round(stats.uptime_s, 3) if stats.uptime_s is not None else None,
                    "restarts": stats.restarts, "exit_code": stats.exit_code,
                    "exit_signal": stats.exit_signal,
                    "reason": stats.reason or not_ready or self._order.reason(program.name),
                    "last_restart": stats.last_restart,
                    "cpu_percent": sample.cpu_percent if sample else None,
                    "cpu_seconds": round(sample.cpu_seconds, 3) if sample else None,
                    "rss_bytes": sample.rss_bytes if sample else None,
                    "listen": listen_addresses(instance.app, config.proxy, is_proxy),
                    "uses_port": not is_proxy and uses_port(instance.app, routed),
                    "next_try_in_s": round(stats.next_try_in_s, 3)
                    if stats.next_try_in_s is not None else None,
                    "configured_instances": configured,
                })
        if backends:
            rows += self._backend_rows(app)
            rows += self._certs.status_rows() if app is None else []
            rows += self._cluster.status_rows() if app is None else []
        return rows

    def _backend_rows(self, app: str | None) -> list[dict[str, Any]]:
        rows = self._registry.backend_rows(app)
        return rows + (self._registry.provider_rows() if app is None else [])
