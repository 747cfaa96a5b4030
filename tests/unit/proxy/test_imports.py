"""The request path's modules depend on each other one way: server -> reader -> exchange ->
relay -> forward -> request, -> upstream, and all of them -> downstream (issue 11)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import wharf.proxy

PACKAGE = Path(wharf.proxy.__file__).parent
# Each in no import cycle, counting the imports made only for type checking.
ONE_WAY = ("server", "reader", "exchange", "relay", "forward", "upstream", "downstream")


def _imports() -> dict[str, set[str]]:
    """Module -> the modules of wharf.proxy it imports (anywhere in it, TYPE_CHECKING too)."""
    names = {".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix("__init__")
             .rstrip(".") or "__init__": p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {f.removeprefix("wharf.proxy.") for f in found
                            if f.startswith("wharf.proxy.")} & (names.keys() - {name})
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            todo += graph[name]
    return False


@pytest.mark.parametrize("module", ONE_WAY)
def test_a_request_path_module_is_in_no_import_cycle(module: str):
    graph = _imports()
    assert module in graph
    assert not _reaches(graph, module, module), f"wharf.proxy.{module} imports itself back"


def test_the_lower_layers_know_nothing_of_the_client_connection():
    graph = _imports()
    for module in ("exchange", "relay", "forward", "request", "upstream", "downstream", "static"):
        assert not _reaches(graph, module, "server"), module
    assert not graph["upstream"] & {"exchange", "relay", "forward", "request"}
    assert graph["downstream"] == set()


@pytest.mark.parametrize("module", ONE_WAY)
def test_each_module_imports_first_in_a_fresh_interpreter(module: str):
    subprocess.run([sys.executable, "-c", f"import wharf.proxy.{module}"], check=True,
                   timeout=60)
