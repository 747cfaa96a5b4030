"""An HTTP/1.1 app for the cluster tests: answers with the name of the host it runs on
(HOST_NAME). It listens on every address of its network namespace: the local proxy reaches
it on 127.0.0.1, the other hosts on the host's advertise address."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ["PORT"])
BODY = f"host={os.environ['HOST_NAME']} port={PORT}\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
