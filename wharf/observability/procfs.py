"""What the kernel says about processes and sockets: an instance's process tree, who listens
on a port, and who accepted a connection on a TCP port or a Unix socket.

An instance is more than its main process: gunicorn's workers are its children, and whatever
the app started stays in its process group (which the stop path kills). Memory limits, the
status columns and readiness all mean that whole tree.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from wharf.addresses import unix_path

Table = dict[int, tuple[int, int]]  # pid -> (parent pid, process group id)


def process_table() -> Table:
    """Every live (non-zombie) process now, with its parent and process group, from /proc."""
    table: Table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:  # it ended meanwhile
            continue
        # The command name, in parentheses, may hold spaces and parentheses: split after it.
        fields = data.rpartition(b")")[2].split()
        if len(fields) < 3 or fields[0] == b"Z":
            continue
        table[int(name)] = (int(fields[1]), int(fields[2]))
    return table


def process_tree(root: int, table: Table | None = None) -> list[int]:
    """`root`, its descendants and every member of its process group (a child that left the
    tree by daemonizing), with their descendants; empty if `root` is gone."""
    table = process_table() if table is None else table
    if root not in table:
        return []
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = {root}
    todo = [root, *(pid for pid, (_, pgid) in table.items() if pgid == root and pid != root)]
    found.update(todo)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return [root, *sorted(found - {root})]


@dataclass(frozen=True, slots=True)
class Listener:
    """A process listening on a TCP port."""

    pid: int | None  # None when the kernel will not tell us (another user's process)
    name: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.name})" if self.pid is not None else "another process"


def _serves(laddr_ip: str, host: str) -> bool:
    """True if a socket bound to `laddr_ip` accepts connections made to `host`."""
    if laddr_ip in ("0.0.0.0", "::", host):
        return True
    # An IPv4-mapped address, as an IPv6 socket reports it: ::ffff:127.0.0.1.
    return laddr_ip.removeprefix("::ffff:") == host


def _socket_inodes(match: Callable[[list[str], int], bool]) -> set[str]:
    """The inodes of the TCP sockets whose /proc/net/tcp* line `match` accepts (the fields of
    the line, and the address family), from the kernel's own table: cheaper than asking psutil
    for every connection of a process."""
    inodes = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 10 and match(fields, family):
                inodes.add(fields[9])
    return inodes


def _port(address: str) -> int:
    return int(address.rpartition(":")[2], 16)


def _decode(address: str, family: int) -> str:
    """An address as /proc/net/tcp* writes it (32-bit words in host order, in hex)."""
    raw = bytes.fromhex(address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)


def _held_by(pids: Iterable[int], inodes: set[str]) -> bool:
    """True if one of `pids` has one of these sockets open."""
    targets = {f"socket:[{inode}]" for inode in inodes}
    if not targets:
        return False
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return True
            except OSError:
                continue
    return False


def listens_on(pids: Iterable[int], host: str, port: int) -> bool:
    """True if one of `pids` holds a socket listening on `port` that serves `host`."""
    def listening(fields: list[str], family: int) -> bool:
        return fields[3] == "0A" and _port(fields[1]) == port and \
            _serves(_decode(fields[1].partition(":")[0], family), host)  # 0A: LISTEN

    return _held_by(pids, _socket_inodes(listening))


def accepted(pids: Iterable[int], host: str, port: int) -> bool:
    """True if one of `pids` holds the accepted end of a connection to its local `port`
    (established, or closed by the peer only), or for a Unix address, to its socket file."""
    path = unix_path(host, port)
    if path is not None:
        return _held_by(pids, _unix_accepted(path))

    def ours(fields: list[str], family: int) -> bool:
        return fields[3] in ("01", "08") and _port(fields[1]) == port  # ESTABLISHED, CLOSE_WAIT

    return _held_by(pids, _socket_inodes(ours))


def unix_line(line: str) -> tuple[str, str, str, str] | None:
    """(type, state, inode, path) of a /proc/net/unix line; None for one with no path (an
    unnamed socket) or the header."""
    fields = line.rstrip("\n").split(None, 7)  # a path may hold spaces
    if len(fields) < 8 or not fields[0].endswith(":"):
        return None
    return fields[4], fields[5], fields[6], fields[7]


def _unix_accepted(path: str) -> set[str]:
    """The inodes of the accepted ends of connections to the Unix stream socket at `path`: the
    kernel names them with the listener's path, in state 03 (connected); a connection still
    waiting in the backlog is 02 with no inode yet, the listener itself 01."""
    try:
        with open("/proc/net/unix") as f:
            lines = f.readlines()[1:]
    except OSError:
        return set()
    found = set()
    for line in lines:
        parsed = unix_line(line)
        if parsed is not None and parsed[0] == "0001" and parsed[1] == "03" \
                and parsed[3] == path:  # 0001: SOCK_STREAM
            found.add(parsed[2])
    return found


def listener_on(host: str, port: int) -> Listener | None:
    """Who listens on `port` at `host` (or on a wildcard address), if anyone does."""
    try:
        connections = psutil.net_connections("tcp")
    except psutil.Error:
        connections = []
    for c in connections:
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and _serves(c.laddr.ip, host):
            name = "?"
            if c.pid is not None:
                try:
                    name = psutil.Process(c.pid).name()
                except psutil.Error:
                    pass
            return Listener(c.pid, name)
    return None
