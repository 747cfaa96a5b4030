"""The daemon's part in a `[cluster]`: this host's ready instances registered in etcd, every
host's balanced over by the cluster services, and taken out of the other hosts' pools before
they leave this one (see wharf/cluster/). The etcd client is imported only with `[cluster]`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from wharf.registry.build import instance_address
from wharf.registry.registry import Registry
from wharf.registry.snapshot import Backend
from wharf.supervise.instance import Instance

if TYPE_CHECKING:
    from wharf.cluster.member import Cluster, Settle
    from wharf.cluster.state import InstanceRecord
    from wharf.config.cluster import ClusterConfig


class ClusterLink:
    """This host's membership, if the config has `[cluster]` (otherwise every call is a no-op)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.cluster: Cluster | None = None

    def __repr__(self) -> str:
        return f"<ClusterLink {'joined' if self.cluster is not None else 'off'}>"

    def join(self, config: ClusterConfig | None, on_change: Callable[[], None],
             settle: Settle) -> None:
        """With `[cluster]`: register this host's ready instances in etcd and balance the
        cluster services over every host's."""
        if config is None:
            return
        from wharf.cluster.member import Cluster

        self.cluster = cluster = Cluster(config, on_change, settle)
        self._registry.remote = lambda app: tuple(
            Backend(r.address, r.port, r.weight) for r in cluster.remote(app))
        cluster.start()

    def _records(self, instances: Iterable[Instance]) -> list[InstanceRecord]:
        """The etcd records of these instances (the ones of apps no cluster service uses
        left out)."""
        cluster, apps = self.cluster, self._registry.cluster_apps()
        assert cluster is not None
        return [cluster.record(i.app.name, f"{i.index}-{i.pid}",
                               instance_address(i.app, i.port)[1], i.app.weight)
                for i in instances if i.app.name in apps and i.pid is not None]

    def want(self, serving: Iterable[Instance]) -> None:
        """At each publish: the instances in this host's pool are the ones registered."""
        if self.cluster is not None:
            self.cluster.want(self._records(serving))

    async def deregister(self, instances: Iterable[Instance]) -> None:
        """Take instances out of the other hosts' pools before they are drained and stopped:
        a rolling reload here fails no request there. Bounded by the lease's TTL: a host that
        does not answer by then has lost its lease and left."""
        if self.cluster is not None:
            self._registry.publish()  # what is ready now is registered before they leave
            await self.cluster.deregister(self._records(instances),
                                          self.cluster.config.ttl + 2.0)

    async def leave(self) -> None:
        """At shutdown, before any app stops: the other hosts stop sending here first."""
        if self.cluster is not None:
            await self.cluster.leave(self.cluster.config.ttl + 2.0)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()

    def status_rows(self) -> list[dict[str, Any]]:
        return self.cluster.status_rows() if self.cluster is not None else []
