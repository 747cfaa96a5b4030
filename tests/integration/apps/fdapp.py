"""An app for socket mode: serves HTTP on the socket it inherits as fd 3 (LISTEN_FDS)."""

import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit(f"bad socket activation: LISTEN_FDS={os.environ.get('LISTEN_FDS')} "
             f"LISTEN_PID={os.environ.get('LISTEN_PID')} pid={os.getpid()}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"pid={os.getpid()} instance={os.environ.get('WHARF_INSTANCE')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, fmt: str, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=3)
server.serve_forever()
