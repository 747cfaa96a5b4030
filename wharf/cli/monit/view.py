"""How `wharf monit` draws a Monitor with rich: the process list, the selected app's backends,
its logs, and a footer with the keys and the latest news. Every row is one terminal line
(cells are cut, never wrapped), so that the heights `model.plan` gives are the heights drawn."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wharf.cli.monit.model import FRAME, Monitor, Rates, plan, window
from wharf.cli.output import describe_state, human_bytes, human_duration

_STATE_STYLES = {"RUNNING": "green", "STARTING": "yellow", "STOPPING": "yellow",
                 "BACKOFF": "red", "EXITED": "red", "FATAL": "bold red", "STOPPED": "dim"}
_SELECTED = "bold reverse"


# The process list's columns, the first dropped first when the terminal is too narrow for all.
_DROPPED_FIRST = ("READY", "RESTARTS", "INST", "UPTIME", "CPU")
# A pane's left and right border and padding; the space after each column.
_SIDES = 4
_GAP = 2


def render(monitor: Monitor, width: int, height: int) -> RenderableType:
    """The whole screen, `width` columns by `height` rows."""
    backends = monitor.selected_backends()
    heights = plan(height, len(monitor.instances), len(backends))
    parts: list[RenderableType] = [processes_pane(monitor, width, heights.processes)]
    if heights.backends:
        parts.append(backends_pane(monitor.selected, backends, heights.backends,
                                   monitor.rates))
    if heights.logs:
        parts.append(logs_pane(monitor, heights.logs))
    parts.append(footer(monitor))
    return Group(*parts)


def fit_columns(header: list[str], rows: list[list[str]], width: int) -> dict[int, int]:
    """The columns to show in `width`, by index, each with its width: all if they fit, else
    without the least needed ones (READY first), then with APP and STATE cut, so that the
    numbers (PID, MEM) stay whole."""
    natural = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    room = width - _SIDES + _GAP  # the last column has no gap after it
    keep = list(range(len(header)))
    for name in _DROPPED_FIRST:
        if sum(natural[i] + _GAP for i in keep) <= room:
            break
        keep.remove(header.index(name))
    widths = {i: natural[i] for i in keep}
    flexible = [header.index("STATE"), header.index("APP")]
    for i in flexible:
        excess = sum(w + _GAP for w in widths.values()) - room
        if excess > 0:
            widths[i] = max(natural[i] - excess, 4)
    return widths


def _table(*columns: str, widths: list[int] | None = None) -> Table:
    """A borderless table, one line per row (cells are cut, never wrapped)."""
    table = Table(box=None, padding=(0, _GAP, 0, 0), header_style="bold", show_edge=False,
                  pad_edge=False)
    for n, name in enumerate(columns):
        table.add_column(name, no_wrap=True, overflow="ellipsis",
                         width=widths[n] if widths else None)
    return table


def processes_pane(monitor: Monitor, width: int, height: int) -> RenderableType:
    """Every instance, the selected app's highlighted; a window around them if too many."""
    header = [" ", "APP", "INST", "STATE", "PID", "CPU", "MEM", "RESTARTS", "UPTIME", "READY"]
    rows = monitor.instances
    selected = monitor.selected_rows()
    shown = window(len(rows), selected, height - FRAME)
    cells = [process_cells(rows[i], first=i == selected.start) for i in shown]
    keep = fit_columns(header, [[str(c) for c in row] for row in cells], width)
    table = _table(*(header[i] for i in keep), widths=list(keep.values()))
    for i, row in zip(shown, cells, strict=True):
        table.add_row(*(row[k] for k in keep), style=_SELECTED if i in selected else None)
    if not rows:
        table.add_row("", "no apps configured")
    more = f" {shown.start + 1}-{shown.stop} of {len(rows)}" if len(shown) < len(rows) else ""
    return Panel(table, title=f"Processes{more}", title_align="left", height=height,
                 box=box.ROUNDED)


def process_cells(row: dict[str, Any], first: bool) -> list[str | Text]:
    """One instance's cells: app, instance, state, pid, CPU, memory, restarts, uptime, ready."""
    cpu = "-" if row.get("cpu_percent") is None else f"{row['cpu_percent']:.1f}%"
    state = Text(describe_state(row), style=_STATE_STYLES.get(row["state"], ""))
    ready = "yes" if row.get("ready") else "no" if row["state"] == "RUNNING" else "-"
    return [">" if first else "", row["app"], str(row["instance"]), state,
            str(row.get("pid") or "-"), cpu, human_bytes(row.get("rss_bytes")),
            str(row["restarts"]), human_duration(row.get("uptime_s")), ready]


def backends_pane(app: str | None, rows: list[dict[str, Any]], height: int,
                  rates: Rates | None = None) -> RenderableType:
    """The backends of the routes to the selected app: health, ejection, traffic (in flight;
    requests/s, 5xx share and total when the daemon counts traffic)."""
    table = _table("ROUTE", "BACKEND", "HEALTH", "EJECTED", "IN FLIGHT", "REQ/S", "5XX",
                   "REQUESTS", "LAST ERROR")
    for r in rows[:height - FRAME]:
        health = Text(r["health"], style={"up": "green", "down": "red"}.get(r["health"], ""))
        rate = rates.of(r.get("service", ""), r["backend"]) if rates is not None else None
        traffic = [f"{rate[0]:.1f}", f"{rate[1]:.0%}", str(rate[2])] if rate else ["-"] * 3
        table.add_row(r["route"], r["backend"], health, "yes" if r["ejected"] else "no",
                      str(r["inflight"]), *traffic, r["last_error"] or "-")
    if not rows:
        table.add_row("-", f"no route sends to {app}" if app else "-")
    more = f" {height - FRAME} of {len(rows)}" if len(rows) > height - FRAME else ""
    return Panel(table, title=f"Backends: {app or '-'}{more}", title_align="left",
                 height=height, box=box.ROUNDED)


def logs_pane(monitor: Monitor, height: int) -> RenderableType:
    """The newest lines of the selected app's output: stderr in red, Wharf's notes dimmed."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for n, (stream, line) in enumerate(monitor.logs.last(height - 2)):
        if n:
            text.append("\n")
        text.append(line, style={"err": "red", "note": "dim italic"}.get(stream, ""))
    return Panel(text, title=f"Logs: {monitor.selected or '-'}", title_align="left",
                 height=height, box=box.ROUNDED)


def footer(monitor: Monitor) -> RenderableType:
    """The keys, then the news (a restart under way, its result, a daemon not answering)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" up/down j/k", style="bold")
    text.append(" select  ")
    text.append("r", style="bold")
    text.append(f" restart {monitor.selected or ''}  ")
    text.append("q", style="bold")
    text.append(" quit")
    if monitor.message:
        text.append("   " + monitor.message, style="bold yellow")
    return text
