"""The daemon's side of `depends_on`: holds the apps that wait, starts them when they may.

The decisions are `wharf.supervise.order`'s; this module describes the programs to it, starts
what it allows, and waits for it on behalf of `start` and `up`. `poke` is called on every state
or readiness change; the look happens once per loop turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from wharf.supervise import order
from wharf.supervise.instance import Instance
from wharf.supervise.program import Notifier, Program
from wharf.supervise.states import State


def _exited_ok(instance: Instance) -> bool:
    last = instance.machine.last_exit
    return instance.state == State.EXITED and last is not None and last.signal is None \
        and last.code in instance.app.exit_codes


class StartOrder:
    """The wanted apps of one daemon, started once their dependencies are up."""

    def __init__(self, programs: Callable[[], Mapping[str, Program]],
                 is_ready: Callable[[Instance], bool], notifier: Notifier) -> None:
        self._programs = programs
        self._is_ready = is_ready
        self._notifier = notifier
        self.wanted: dict[str, None] = {}  # in the order they were asked for
        self._scheduled = False

    def __repr__(self) -> str:
        return f"<StartOrder wanted={list(self.wanted)}>"

    def graph(self) -> dict[str, tuple[str, ...]]:
        """Each program's dependencies, as its running config says."""
        return {name: p.app.depends_on for name, p in self._programs().items()}

    def standings(self) -> dict[str, order.Standing]:
        """How every program stands, for the decisions."""
        return {name: order.standing(
                    (order.InstanceView(i.state, self._is_ready(i), _exited_ok(i),
                                       job=i.app.autorestart != "always")
                     for i in p.instances), name in self.wanted)
                for name, p in self._programs().items()}

    def request(self, names: Iterable[str], with_dependencies: bool = False) -> list[str]:
        """Start `names` as soon as their dependencies are up (now, for those without any);
        with `with_dependencies`, also the stopped or failed apps they need. Returns every
        app asked for."""
        names = list(names)
        if with_dependencies:
            names = order.with_dependencies(names, self.graph(), self.standings())
        for name in names:
            self.wanted[name] = None
        self.step()
        return names

    def cancel(self, names: Iterable[str]) -> None:
        """No longer start these (they are being stopped, or removed)."""
        for name in names:
            self.wanted.pop(name, None)

    def poke(self) -> None:
        """Something changed: look again once this loop turn is over."""
        if self.wanted and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.step)

    def step(self) -> None:
        """Start every wanted app whose dependencies are up."""
        self._scheduled = False
        programs = self._programs()
        for name in [n for n in self.wanted if n not in programs]:
            del self.wanted[name]  # removed by a reload
        standings = self.standings()
        ready = order.startable(self.wanted, self.graph(), standings)
        for name in ready:
            del self.wanted[name]
        for name in ready:
            programs[name].start()
        if ready:
            self._notifier.notify()

    def reason(self, app: str) -> str:
        """Why a wanted app has not started ("" if it is not waiting)."""
        if app not in self.wanted:
            return ""
        return order.reason(app, self.graph(), self.standings())

    def stuck(self, names: Iterable[str]) -> dict[str, str]:
        """The wanted apps of `names` whose wait cannot end by itself, with the reason."""
        graph, standings = self.graph(), self.standings()
        return {n: order.reason(n, graph, standings) for n in names
                if n in self.wanted and order.stuck(n, graph, standings)}

    async def settled(self, names: list[str], timeout: float) -> dict[str, str]:
        """Wait until every app of `names` has started or waits for something that will not
        come by itself; the apps still waiting, with the reason."""
        def settled() -> bool:
            stuck = self.stuck(names)
            return all(n not in self.wanted or n in stuck for n in names)

        await self._notifier.wait_for(settled, timeout)
        return {n: self.reason(n) for n in names if n in self.wanted}

    def stop_waves(self, names: Iterable[str]) -> list[list[str]]:
        """`names` in the waves to stop them in: dependents first."""
        return order.stop_waves(names, self.graph())
