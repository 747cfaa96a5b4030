"""Start and stop order from `depends_on`: which apps may start now, which must stop first.

Theory of operation: the daemon keeps a set of *wanted* apps - asked to start, not started yet
because a dependency is not up. Each time something changes it describes every app by its
instances (`InstanceView`) and asks `startable` which wanted apps may start now. A dependency
whose autorestart is "always" (the default) is a *service*: it is *up* when every instance is
ready (RUNNING, and past its readiness check if it has one). One with "on-failure" or "never"
is a *job* (a migration, a cache warm-up): it is up once every instance is *done*, EXITED with
an expected code - while it runs, its dependents wait, as docker compose's
`service_completed_successfully`. A dependency that failed (FATAL, or exited with an
unexpected code) or that nobody asked to run (STOPPED) holds its dependents back until
someone starts it: they wait, and `reason` says for what ("waiting for db-migrate
(FATAL)"); `stuck` says that waiting cannot end by itself, so that a command waiting on it
can return.

At shutdown `stop_waves` gives the reverse: dependents stop before what they depend on.

Pure: no asyncio, no processes. The graph has been checked by the loader (`config.depends`):
names are known and there is no cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from wharf.supervise.states import State

Graph = Mapping[str, tuple[str, ...]]  # app -> the apps it depends on


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What the order needs to know of one instance."""

    state: State
    ready: bool = False  # RUNNING and past its readiness check, if it has one
    exited_ok: bool = False  # EXITED with a code in exit_codes (a one-shot job that is done)
    job: bool = False  # autorestart is not "always": it counts once done, not once running

    def counts(self) -> bool:
        """Whether this instance lets its app's dependents start."""
        return self.exited_ok if self.job else self.ready or self.exited_ok


class Stand(Enum):
    """Where an app stands, as seen by the apps that depend on it."""

    UP = "up"  # every instance ready, or done
    GOING = "going"  # on its way: starting, backing off, not ready yet
    WAITING = "waiting"  # wanted: it starts once its own dependencies are up
    STOPPED = "stopped"  # not asked to run: only a start makes it go
    FAILED = "failed"  # FATAL, or exited badly: only a start makes it go


@dataclass(frozen=True, slots=True)
class Standing:
    """An app's Stand and the word that tells a user why it is not up ("FATAL")."""

    stand: Stand
    label: str


ABSENT = Standing(Stand.STOPPED, "not running")  # an app with no program (a reload adds it)


def standing(instances: Iterable[InstanceView], wanted: bool = False) -> Standing:
    """How an app stands, from its instances; `wanted`: it waits for its own dependencies."""
    if wanted:
        return Standing(Stand.WAITING, "itself waiting")
    views = list(instances)
    for view in views:
        if view.state == State.FATAL:
            return Standing(Stand.FAILED, "FATAL")
    for view in views:
        if view.state == State.EXITED and not view.exited_ok:
            return Standing(Stand.FAILED, "EXITED")
    pending = [v for v in views if not v.counts()]
    if not pending:
        done = bool(views) and all(v.state == State.EXITED for v in views)
        return Standing(Stand.UP, "EXITED" if done else "RUNNING")
    for view in pending:
        if view.state in (State.STARTING, State.BACKOFF, State.STOPPING):
            return Standing(Stand.GOING, view.state.value)
    if any(v.state == State.RUNNING and v.job for v in pending):
        return Standing(Stand.GOING, "RUNNING, a job: counts once it exits")
    if any(v.state == State.RUNNING for v in pending):
        return Standing(Stand.GOING, "not ready")
    return Standing(Stand.STOPPED, "STOPPED")


def blockers(app: str, graph: Graph, standings: Mapping[str, Standing]
             ) -> list[tuple[str, Standing]]:
    """The dependencies of `app` that are not up, in the order the file names them."""
    return [(dep, standings.get(dep, ABSENT)) for dep in graph.get(app, ())
            if standings.get(dep, ABSENT).stand != Stand.UP]


def startable(wanted: Iterable[str], graph: Graph, standings: Mapping[str, Standing]
              ) -> list[str]:
    """The wanted apps whose every dependency is up: start them now."""
    return [app for app in wanted if not blockers(app, graph, standings)]


def reason(app: str, graph: Graph, standings: Mapping[str, Standing]) -> str:
    """Why a wanted app has not started: "waiting for db-migrate (FATAL), redis (STARTING)"."""
    waiting = blockers(app, graph, standings)
    if not waiting:
        return ""
    return "waiting for " + ", ".join(f"{dep} ({s.label})" for dep, s in waiting)


def stuck(app: str, graph: Graph, standings: Mapping[str, Standing]) -> bool:
    """True if `app` waits for a dependency that will not come up by itself: one that failed
    or is stopped, or a wanted one that is stuck in turn."""
    for dep, stands in blockers(app, graph, standings):
        if stands.stand in (Stand.FAILED, Stand.STOPPED):
            return True
        if stands.stand == Stand.WAITING and stuck(dep, graph, standings):
            return True
    return False


def with_dependencies(apps: Iterable[str], graph: Graph, standings: Mapping[str, Standing]
                      ) -> list[str]:
    """`apps` and every dependency they need that is stopped or failed, each once,
    dependencies first: what `wharf start APP` starts (systemd's Requires= with After=)."""
    chosen: list[str] = []

    def visit(app: str, needed: bool) -> None:
        for dep in graph.get(app, ()):
            if standings.get(dep, ABSENT).stand in (Stand.STOPPED, Stand.FAILED):
                visit(dep, True)
        if needed and app not in chosen:
            chosen.append(app)

    for app in apps:
        visit(app, True)
    return chosen


def stop_waves(apps: Iterable[str], graph: Graph) -> list[list[str]]:
    """`apps` in waves to stop one after the other: an app stops in a wave after every app
    (of `apps`) that depends on it. Apps unrelated to each other share a wave."""
    names = list(apps)
    dependents: dict[str, set[str]] = {n: set() for n in names}
    for app in names:
        for dep in graph.get(app, ()):
            if dep in dependents:
                dependents[dep].add(app)
    waves: list[list[str]] = []
    stopped: set[str] = set()
    while len(stopped) < len(names):
        wave = [n for n in names if n not in stopped and dependents[n] <= stopped]
        if not wave:  # a cycle, which the loader refuses: stop the rest together
            wave = [n for n in names if n not in stopped]
        waves.append(wave)
        stopped.update(wave)
    return waves
