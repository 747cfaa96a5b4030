"""The local provider: the supervised apps' instances that take traffic, as the backends of
the services over those apps (`app = "web"`, in a route or in `[services.NAME]`).

Unlike the other providers it is asked, not awaited: a drain publishes a pool without the
leaving instances and waits for the workers to serve that very version, so its changes are
published in the same turn of the loop (see `Registry.publish`), never throttled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from wharf.registry.build import Address, instance_address
from wharf.supervise.states import State

if TYPE_CHECKING:
    from wharf.registry.readiness import Readiness
    from wharf.supervise.instance import Instance
    from wharf.supervise.program import Program


def addresses(instances: Iterable[Instance]) -> list[Address]:
    """Where the proxy reaches these instances, each address once (in socket mode they share
    one)."""
    return list(dict.fromkeys(instance_address(i.app, i.port) for i in instances))


class LocalProvider:
    """Which instances of each app take traffic now."""

    name = "local"

    def __init__(self, programs: Callable[[], Mapping[str, Program]], draining: set[Instance],
                 routed: Callable[[str], bool], skip: str) -> None:
        self._programs = programs  # the daemon's programs, as they are at each call
        self._draining = draining  # out of the pool (the daemon adds and removes in place)
        self._routed = routed
        self._skip = skip  # the proxy workers' program: no route goes to them
        self.readiness: Readiness | None = None  # set once the loop runs

    def __repr__(self) -> str:
        return f"<LocalProvider draining={len(self._draining)}>"

    def takes_traffic(self, instance: Instance) -> bool:
        """RUNNING, ready (if a route sends to its app) and not being drained."""
        name = instance.app.name
        if instance.state != State.RUNNING or instance in self._draining:
            return False
        return not self._routed(name) or self.readiness is None or \
            self.readiness.is_ready(name, instance.index, instance.pid)

    def serving(self) -> dict[str, list[Instance]]:
        """The instances of each app that take traffic (a rolling reload's new ones too)."""
        return {name: [i for i in (*program.instances, *program.pending)
                       if self.takes_traffic(i)]
                for name, program in self._programs().items() if name != self._skip}

    def running(self) -> dict[str, list[Address]]:
        """The addresses of each app's RUNNING instances, ready or not (for `status`)."""
        return {name: addresses(i for i in p.instances if i.state == State.RUNNING)
                for name, p in self._programs().items()}
