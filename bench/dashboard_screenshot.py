"""Screenshots of the web dashboard for docs/: the demo (examples/demo) on free ports in a
temporary directory, some traffic through its proxy, and Debian's Chromium driven by Playwright
at 1280x800 (docs/dashboard.png) and at a phone's width (docs/dashboard-narrow.png).

Run: .venv/bin/python bench/dashboard_screenshot.py [--out DIR] [--seconds S]
Needs `apt-get install chromium` and `pip install playwright` (no `playwright install`).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_in(tmp: Path) -> tuple[Path, int, int]:
    """A copy of the demo with its three listeners on free ports: its config, the admin port
    and the proxy's HTTP port."""
    shutil.copytree(ROOT / "examples" / "demo", tmp, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".wharf"))
    config = tmp / "wharf.toml"
    admin, http_port, https_port = free_port(), free_port(), free_port()
    text = config.read_text()
    for old, new in ((9180, admin), (8080, http_port), (8443, https_port)):
        text = re.sub(rf"127\.0\.0\.1:{old}\b", f"127.0.0.1:{new}", text)
    config.write_text(text)
    return config, admin, http_port


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def answers(port: int, path: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        ok = conn.getresponse().status < 500
        conn.close()
        return ok
    except OSError:
        return False


def traffic(port: int, stop: threading.Event) -> None:
    """Requests through the proxy, a few hundred a second at most, until `stop`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    paths = ["/app/", "/app/hello", "/", "/app/nope"]
    n = 0
    while not stop.is_set():
        try:
            conn.request("GET", paths[n % len(paths)])
            conn.getresponse().read()
        except OSError:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        n += 1
        time.sleep(0.004)
    conn.close()


def shoot(admin: int, token: str, out: Path, seconds: float) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{admin}/")
            page.fill("#token", token)
            page.click("#login button[type=submit]")
            page.wait_for_selector("article.app[data-app=web]")
            page.click("article.app[data-app=web] [data-action=logs]")
            page.wait_for_selector("#logs span")
            page.wait_for_timeout(seconds * 1000)  # the charts fill in (the page keeps running)
            page.screenshot(path=str(out / "dashboard.png"))
            page.set_viewport_size({"width": 420, "height": 900})
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "dashboard-narrow.png"))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--seconds", type=float, default=90.0,
                        help="how long the charts run before the shot (90)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config, admin, http_port = demo_in(Path(tmp))
        log = open(Path(tmp) / "daemon.log", "wb")  # noqa: SIM115 - open while it runs
        daemon = subprocess.Popen([sys.executable, "-m", "wharf", "up", "-c", str(config)],
                                  cwd=tmp, stdout=log, stderr=log, start_new_session=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        stop = threading.Event()
        loader = threading.Thread(target=traffic, args=(http_port, stop), daemon=True)
        try:
            token_file = Path(tmp) / ".wharf" / "admin.token"
            wait_for(token_file.exists, 30, "the admin token")
            wait_for(lambda: answers(http_port, "/app/"), 30, "the demo's web app")
            loader.start()
            shoot(admin, token_file.read_text().strip(), args.out, args.seconds)
        finally:
            stop.set()
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            log.close()
    for name in ("dashboard.png", "dashboard-narrow.png"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
