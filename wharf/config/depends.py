"""`depends_on`: the names must be apps of the file, and the graph must have no cycle.

`find_cycle` is shared with the runtime order (`wharf.supervise.order`), which trusts a graph
the loader has checked.
"""

from __future__ import annotations

from collections.abc import Mapping

from wharf.errors import Problem


def dependency_names(value: object) -> tuple[str, ...]:
    """A converter: a list of app names, each once."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of app names like [\"db-migrate\", \"redis\"], "
                         f"got {value!r}")
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise ValueError(f"names {', '.join(twice)} more than once")
    return tuple(value)


def find_cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str]:
    """A cycle of `graph` (app -> the apps it depends on) as [a, b, ..., a], or [] if none.
    Names that are not keys of `graph` are leaves."""
    done: set[str] = set()
    for root in graph:
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, child = stack.pop()
            if child == 0:
                if node in on_path:
                    return [*path[path.index(node):], node]
                if node in done:
                    continue
                path.append(node)
                on_path.add(node)
            deps = graph.get(node, ())
            if child < len(deps):
                stack.append((node, child + 1))
                stack.append((deps[child], 0))
            else:
                done.add(node)
                on_path.discard(path.pop())
    return []


def check_depends(graph: Mapping[str, tuple[str, ...]], reserved: str,
                  problems: list[Problem]) -> None:
    """Report unknown names (and the proxy's, which is no app of the file) and one cycle."""
    for app, deps in graph.items():
        for dep in deps:
            key = f"apps.{app}.depends_on"
            if dep == app:
                problems.append(Problem(key, f"{app!r} cannot depend on itself"))
            elif dep == reserved or dep not in graph:
                known = ", ".join(sorted(n for n in graph if n != app)) or "none"
                problems.append(Problem(key, f"no app named {dep!r} (apps: {known})"))
    known_only = {a: tuple(d for d in deps if d in graph and d != a) for a, deps in graph.items()}
    cycle = find_cycle(known_only)
    if cycle:
        problems.append(Problem(f"apps.{cycle[0]}.depends_on",
                                f"dependency cycle: {' -> '.join(cycle)}"))
