"""session: a TCP echo service on a fixed per-site address (port 7007), for long-lived
sessions through the stateful firewalls. Every byte received is sent back unchanged; the
fixed address itself says which site serves the session.

Run: ``python3 session.py ADDRESS PORT``.
"""

from __future__ import annotations

import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    Server((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
