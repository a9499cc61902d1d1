"""The lab's service: answer every GET with this host's name (``app1\n``).

Run as ``python3 httpname.py ADDRESS PORT``; standard library only, so it runs in the
FRR container image and on the host's python3 alike.
"""

import http.server
import socket
import sys


class NameHandler(http.server.BaseHTTPRequestHandler):
    body = (socket.gethostname() + "\n").encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), NameHandler).serve_forever()
