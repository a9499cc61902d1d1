"""Shared by the payment-dr lab services: who-served-it names, HTTP serving and calls.

Standard library only (the services run on the lab nodes' system python3). Every answer
names the service and the node that served it (``auth@dc2-srv``), so the path of a request
is visible end to end. A service's calls to others leave from its own service address
(:func:`call_from`), so flow records name the calling service, not just its host.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

NODE = socket.gethostname()

# (status, body) from a handler given the request path and its query.
Handler = Callable[[str, dict[str, str]], tuple[int, str]]


def me(service: str) -> str:
    return f"{service}@{NODE}"


def serve_http(addresses: list[str], port: int, handler: Handler) -> None:
    """Serve ``handler`` on every address (own address, service VIP) until killed."""

    class Request(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                status, body = handler(parts.path, query)
            except Exception as exc:  # a service answers, it never hangs up silently
                status, body = 500, f"error: {type(exc).__name__}: {exc}"
            data = (body.rstrip("\n") + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    servers = [http.server.ThreadingHTTPServer((a, port), Request) for a in addresses]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


class CallFailed(Exception):
    pass


class _FromAddress(urllib.request.HTTPHandler):
    """Plain HTTP whose connections are bound to one local address."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        bound = functools.partial(http.client.HTTPConnection, source_address=(self.address, 0))
        return self.do_open(bound, req)


_opener = urllib.request.build_opener()
SOURCE: str | None = None  # the address calls leave from; None: the kernel's choice


def call_from(address: str) -> None:
    """Make this process's calls (:func:`call`, and pgwire's ``source=svc.SOURCE``) leave from
    ``address``, the service's own: without it they would leave from the server's address on
    the VLAN, and a flow record could name only the host."""
    global _opener, SOURCE
    _opener = urllib.request.build_opener(_FromAddress(address))
    SOURCE = address


def call(url: str, timeout: float) -> str:
    """GET ``url``; its stripped body, or CallFailed naming the url and why."""
    try:
        with _opener.open(url, timeout=timeout) as answer:
            return str(answer.read().decode().strip())
    except urllib.error.HTTPError as exc:
        raise CallFailed(f"{url}: HTTP {exc.code} {exc.read().decode().strip()}") from None
    except (OSError, ValueError) as exc:
        raise CallFailed(f"{url}: {exc}") from None
