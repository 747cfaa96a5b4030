"""The reload planner: what runs now and what the file says in, the steps to get there out.

Theory of operation: the planner is pure. It compares, app by app, what runs (each program's
config, its instance count, and whether every instance runs that config) with the config file,
and returns the steps in the order the executor must take them. The file is the truth: an app
scaled by hand, or left half on each version by a failed roll, is brought back to the file.

Order, so that a reload fails no request that it need not fail:
1. removals of apps whose address (shared socket, fixed ports) an app of the new file takes
   over: an address cannot be held twice, so these go first;
2. additions: a renamed app's successor is up and ready before its predecessor leaves;
3. rolls (a restart in place for an app with fixed ports), scales, and the apps kept as they
   are, in the file's order;
4. the other removals, drained once the new routes are published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from wharf.config.model import AppConfig

Address = tuple[str, int]


class Kind(Enum):
    """What one step does to one app."""

    REMOVE = "remove"
    ADD = "add"
    ROLL = "roll"  # new processes beside the old ones, in batches of max_surge
    RESTART_IN_PLACE = "restart in place"  # fixed ports: one instance after another
    SCALE = "scale"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class Running:
    """What runs of one app now."""

    config: AppConfig  # the program's config (its `instances` aside)
    count: int  # instances now
    uniform: bool  # every instance runs `config` (a failed roll leaves some on another)


@dataclass(frozen=True, slots=True)
class Step:
    """One app's change; `config` is the file's, or for a removal the running one."""

    kind: Kind
    app: str
    config: AppConfig
    early: bool = False  # a removal before the additions: its address is taken over


def plan_reload(running: Mapping[str, Running], new: Mapping[str, AppConfig]) -> list[Step]:
    """The steps that turn `running` into `new`, in the order to take them."""
    changes: list[Step] = []
    for name, app in new.items():
        now = running.get(name)
        if now is None:
            changes.append(Step(Kind.ADD, name, app))
        elif now.uniform and now.config.same_except_instances(app):
            changes.append(Step(Kind.KEEP if now.count == app.instances else Kind.SCALE,
                                name, app))
        else:
            kind = Kind.RESTART_IN_PLACE if app.port is not None else Kind.ROLL
            changes.append(Step(kind, name, app))
    wanted = {a for step in changes if step.kind != Kind.KEEP for a in addresses(step.config)}
    first: list[Step] = []
    last: list[Step] = []
    for name, now in running.items():
        if name not in new:
            if wanted & addresses(now.config, now.count):
                first.append(Step(Kind.REMOVE, name, now.config, early=True))
            else:
                last.append(Step(Kind.REMOVE, name, now.config))
    adds = [s for s in changes if s.kind == Kind.ADD]
    return [*first, *adds, *(s for s in changes if s.kind != Kind.ADD), *last]


def addresses(app: AppConfig, count: int | None = None) -> frozenset[Address]:
    """The addresses an app holds for itself: its shared socket, or its fixed ports (on any
    host: an instance may bind a wildcard)."""
    if app.socket is not None:  # a Unix socket (port 0) is its path alone
        return frozenset({app.socket, ("*", app.socket[1])} if app.socket[1] else {app.socket})
    if app.port is None:
        return frozenset()
    n = app.instances if count is None else count
    return frozenset(("*", app.port + i) for i in range(n))
