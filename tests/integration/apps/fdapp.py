"""An app for socket mode: serves HTTP on the socket it inherits as fd 3 (LISTEN_FDS), and on
SIGTERM stops gracefully as socket mode asks of an app: it stops accepting, finishes the
requests it has begun, closes its idle keep-alive connections, and exits."""

import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit(f"bad socket activation: LISTEN_FDS={os.environ.get('LISTEN_FDS')} "
             f"LISTEN_PID={os.environ.get('LISTEN_PID')} pid={os.getpid()}")

stopping = threading.Event()
lock = threading.Lock()
busy: dict[socket.socket, bool] = {}  # each open connection: is a request under way?


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with lock:
            busy[self.connection] = False
            if stopping.is_set():  # accepted as the stop began
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with lock:
            busy.pop(self.connection, None)
        super().finish()

    def parse_request(self) -> bool:
        with lock:
            busy[self.connection] = True
        return super().parse_request()

    def do_GET(self) -> None:
        body = f"pid={os.getpid()} instance={os.environ.get('WHARF_INSTANCE')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with lock:
            busy[self.connection] = False
            self.close_connection = self.close_connection or stopping.is_set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, fmt: str, *args: object) -> None:
        pass


def stop(*_: object) -> None:
    stopping.set()
    threading.Thread(target=server.shutdown, daemon=True).start()  # serve_forever returns
    with lock:
        for connection, working in busy.items():
            if not working:
                connection.shutdown(socket.SHUT_RDWR)


server = ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
server.daemon_threads = False  # server_close() waits for the requests under way
server.socket.close()
server.socket = socket.socket(fileno=3)
# Every instance is woken for each connection; a blocking accept() would leave the losers
# stuck in it, deaf to the stop (gunicorn and uvicorn accept without blocking too).
server.socket.setblocking(False)
signal.signal(signal.SIGTERM, stop)
server.serve_forever()
server.server_close()
