"""How command results look in a terminal."""

from __future__ import annotations

import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wharf.config.model import Config


def print_warnings(config: Config) -> None:
    """What the loader found worth saying but not worth refusing (to stderr)."""
    for warning in config.warnings:
        print(f"wharf: warning: {config.path}: {warning}", file=sys.stderr)


def human_duration(seconds: float | None) -> str:
    """`3s`, `4m12s`, `2h05m`, `3d04h`; `-` for none."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def human_bytes(size: int | None) -> str:
    """`512K`, `12.3M`, `1.2G`; `-` for none."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit in ("B", "K") else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def describe_exit(row: dict[str, Any]) -> str:
    """The last exit of an instance: `0`, `SIGKILL`, or `-`."""
    if row.get("exit_signal") is not None:
        try:
            return signal.Signals(row["exit_signal"]).name
        except ValueError:
            return f"signal {row['exit_signal']}"
    return "-" if row.get("exit_code") is None else str(row["exit_code"])


def describe_state(row: dict[str, Any]) -> str:
    """The state, and in BACKOFF when the next start is due: `BACKOFF (next try in 2.3s)`."""
    wait = row.get("next_try_in_s")
    if row["state"] != "BACKOFF" or wait is None:
        return str(row["state"])
    return f"BACKOFF (next try in {wait:.1f}s)" if wait < 60 else \
        f"BACKOFF (next try in {human_duration(wait)})"


def describe_port(row: dict[str, Any]) -> str:
    """Where an instance listens: the addresses Wharf binds for it (the proxy workers', a
    shared socket), else its PORT if it uses one, else `-`."""
    if row.get("listen"):
        return ",".join(row["listen"])
    return str(row["port"]) if row.get("uses_port", True) else "-"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def backends_table(rows: list[dict[str, Any]]) -> str:
    """The backends part of `wharf status`."""
    header = ("ROUTE", "BACKEND", "BALANCE", "WEIGHT", "HEALTH", "INFLIGHT", "LAST ERROR")
    body = [(f"{r['route']}" + (f" ({r['app']})" if r["app"] else ""), r["backend"],
             r["balance"], str(r["weight"]), r["health"] + (", ejected" if r["ejected"] else ""),
             str(r["inflight"]), r["last_error"] or "-") for r in rows]
    return "\n".join(_table(header, body))


def providers_table(rows: list[dict[str, Any]]) -> str:
    """The providers part of `wharf status`: a row per source, its problems below it."""
    header = ("PROVIDER", "SOURCE", "STATE", "ROUTES", "SERVICES")
    body = [(r["provider"], r["source"], r["state"], str(r["routes"]), str(r["services"]))
            for r in rows]
    notes = [f"  {r['source']}: {p}" for r in rows for p in r["problems"]]
    return "\n".join(_table(header, body) + notes)


def cluster_table(rows: list[dict[str, Any]]) -> str:
    """The `[cluster]` part of `wharf status`: a row per host seen, this one first (`*`), and
    since when etcd does not answer, if it does not."""
    header = ("HOST", "ADVERTISE", "INSTANCES", "STATE")
    body = [(r["host"] + (" *" if r["self"] else ""), r["advertise"], str(r["instances"]),
             r["state"]) for r in rows]
    notes = [f"  etcd unreachable since "
             f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r['since']))} "
             f"({human_duration(time.time() - r['since'])}): {r['error']}; serving with the "
             "instances last known" for r in rows if r["self"] and r["since"] is not None]
    return "\n".join(_table(header, body) + notes)


def status_table(rows: list[dict[str, Any]]) -> str:
    """The `wharf status` table, with reasons for instances that are not running, then the
    backends of the routes."""
    backends = [r for r in rows if r.get("kind") == "backend"]
    certificates = [r for r in rows if r.get("kind") == "certificate"]
    providers = [r for r in rows if r.get("kind") == "provider"]
    cluster = [r for r in rows if r.get("kind") == "cluster"]
    rows = [r for r in rows if r.get("kind") in (None, "instance")]
    counts = Counter(r["app"] for r in rows)
    drift = [f"  {app}: {n} instances run, the config file says {wanted} (`wharf reload` "
             "applies it)" for app, n, wanted in dict.fromkeys(
                 (r["app"], counts[r["app"]], r.get("configured_instances", counts[r["app"]]))
                 for r in rows) if n != wanted]
    header = ("APP", "INST", "PID", "STATE", "PORT", "UPTIME", "RESTARTS", "EXIT", "CPU", "MEM")
    table = [header]
    notes = []
    for r in rows:
        cpu = "-" if r.get("cpu_percent") is None else f"{r['cpu_percent']:.1f}%"
        table.append((r["app"], str(r["instance"]), str(r["pid"] or "-"), describe_state(r),
                      describe_port(r), human_duration(r["uptime_s"]), str(r["restarts"]),
                      describe_exit(r), cpu, human_bytes(r.get("rss_bytes"))))
        if r.get("reason") and r["state"] != "RUNNING":
            notes.append(f"  {r['app']}.{r['instance']}: {r['reason']}")
        elif r.get("last_restart") and r["restarts"]:
            notes.append(f"  {r['app']}.{r['instance']}: last restarted: {r['last_restart']}")
    text = "\n".join(_table(header, table[1:]) + notes + drift) if len(table) > 1 else \
        "no apps configured"
    if backends:
        text += "\n\n" + backends_table(backends)
    if providers:
        text += "\n\n" + providers_table(providers)
    if cluster:
        text += "\n\n" + cluster_table(cluster)
    if troubled := [c for c in certificates if c["last_error"] or c["not_after"] is None]:
        text += "\n\n" + certs_table(troubled) + "\n  (see `wharf certs`)"
    return text


def _when(ts: float | None, now: float) -> str:
    """A time as UTC `2026-03-01 12:00`, `now` if past, `-` if none."""
    if ts is None:
        return "-"
    if ts <= now:
        return "now"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def certs_table(rows: list[dict[str, Any]], now: float | None = None) -> str:
    """The `wharf certs` table: a row per name, its last error below it."""
    now = time.time() if now is None else now
    if not rows:
        return "no certificates (add [tls] certificates, acme or local_ca)"
    header = ("NAME", "SOURCE", "ISSUER", "NOT AFTER", "NEXT RENEWAL", "LAST ERROR")
    body = []
    for r in rows:
        expires = "-" if r["not_after"] is None else \
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["not_after"])) + \
            (" (expired)" if r["not_after"] <= now else "")
        issuer = _short_issuer(r["issuer"]) if r["not_after"] is not None else "(none yet)"
        body.append((r["name"], r["source"], issuer, expires,
                     "-" if r["source"] == "file" else _when(r["next_renewal"], now),
                     r["last_error"] or "-"))
    return "\n".join(_table(header, body))


def _short_issuer(issuer: str) -> str:
    """The CN of an RFC 4514 issuer (`CN=Pebble Intermediate CA 1a2b`), else all of it."""
    for part in re.split(r"(?<!\\),", issuer):
        if part.startswith("CN="):
            return part[3:]
    return issuer or "-"


def reload_summary(result: dict[str, list[str]]) -> str:
    """What a reload did, one line per kind of change."""
    lines = [f"{kind}: {', '.join(apps)}" for kind, apps in result.items() if apps]
    return "\n".join(lines) if lines else "nothing to do"
