"""An HTTP/1.1 keep-alive app for proxy tests: answers with its instance and port."""

import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ["PORT"])
INSTANCE = os.environ.get("WHARF_INSTANCE", "?")
HOARD: list[bytes] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if "hoard=" in self.path:  # grow: /x?hoard=MEGABYTES, for max_memory tests
            HOARD.append(b"w" * (int(self.path.split("hoard=")[1].split("&")[0]) << 20))
        if "sleep=" in self.path:  # a slow answer: /x?sleep=SECONDS
            time.sleep(float(self.path.split("sleep=")[1].split("&")[0]))
        body = f"instance={INSTANCE} port={PORT} path={self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, fmt: str, *args: object) -> None:
        pass


if os.path.exists(os.environ.get("FAIL_IF_EXISTS", "/nonexistent")):
    raise SystemExit("refusing to start: a broken deploy, for rollback tests")
time.sleep(float(os.environ.get("LISTEN_AFTER", "0")))  # a slow start, for readiness tests
if os.path.exists(os.environ.get("HANG_IF_EXISTS", "/nonexistent")):
    time.sleep(3600)  # a new version that never listens
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
