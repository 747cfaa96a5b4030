"""A tiny web app for the demo: answers every GET with its instance number and port."""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ["PORT"])
INSTANCE = os.environ.get("WHARF_INSTANCE", "?")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from web instance {INSTANCE} on port {PORT}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.address_string()} {fmt % args}", flush=True)


print(f"web instance {INSTANCE} listening on 127.0.0.1:{PORT}", flush=True)
sys.stdout.flush()
ThreadingHTTPServer(("127.0.0.1", PORT), Hello).serve_forever()
