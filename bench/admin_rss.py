"""What the admin listener costs the daemon in memory, and what the HTTP servers considered
would have cost.

1. Daemon RSS (VmRSS of the daemon process) with 10 `sleep` instances, without `[admin]`, and
   with it after a few API requests (status, events, a log tail) have been served.
2. The RSS that importing each candidate server adds to a Python process that has already
   imported the daemon (uvicorn with httptools, the choice; aiohttp's web server), for those
   installed.

Run: .venv/bin/python bench/admin_rss.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import rss_mib

CONFIG = """
[daemon]
port_range = "41000-41999"
{admin}
[apps.sleep]
command = ["sleep", "100000"]
instances = 10
startsecs = 0
"""

IMPORT_PROBE = """
import wharf.daemon.app
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
before = rss()
{imports}
print((rss() - before) / 1024)
"""

CANDIDATES = {
    "uvicorn (httptools)": "import uvicorn, uvicorn.server, uvicorn.protocols.http.httptools_impl",
    "aiohttp.web": "import aiohttp.web",
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_rss(admin: bool) -> float:
    """The daemon's RSS in MiB with 10 instances, with or without the admin listener."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        section = f'[admin]\nlisten = "127.0.0.1:{port}"\n' if admin else ""
        (root / "wharf.toml").write_text(CONFIG.format(admin=section))
        wharf = [sys.executable, "-m", "wharf", "-c", str(root / "wharf.toml")]
        subprocess.run([*wharf, "up", "-d"], check=True, capture_output=True)
        try:
            pid = int((root / ".wharf" / "wharf.pid").read_text())
            if admin:
                token = (root / ".wharf" / "admin.token").read_text().strip()
                for path in ("/api/status", "/api/events", "/api/apps/sleep/logs"):
                    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                                     headers={"Authorization": f"Bearer {token}"})
                    with urllib.request.urlopen(request) as answer:
                        answer.read()
            time.sleep(2)
            return rss_mib(pid)
        finally:
            subprocess.run([*wharf, "down"], capture_output=True)


def import_cost(imports: str) -> float | None:
    """The RSS in MiB that `imports` add after the daemon's own imports; None if missing."""
    probe = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(imports=imports)],
                           capture_output=True, text=True)
    return float(probe.stdout) if probe.returncode == 0 else None


def main() -> None:
    """Print the figures."""
    off, on = daemon_rss(False), daemon_rss(True)
    print(f"daemon RSS, 10 instances: {off:.1f} MiB without [admin], {on:.1f} MiB with it "
          f"(+{on - off:.1f})")
    for name, imports in CANDIDATES.items():
        cost = import_cost(imports)
        print(f"import of {name}: " + ("not installed" if cost is None else f"+{cost:.1f} MiB"))


if __name__ == "__main__":
    main()
