"""A minimal PostgreSQL client (simple query protocol, trust authentication), stdlib only.

The lab's services talk to a real PostgreSQL 15; the nodes have no PostgreSQL driver for
Python, and one ``psql`` process per request would cost more CPU than the whole service.
"""

from __future__ import annotations

import socket
import struct


class PgError(Exception):
    pass


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise PgError("connection closed by the server")
        data += chunk
    return data


def _message(sock: socket.socket) -> tuple[bytes, bytes]:
    kind = _read(sock, 1)
    (length,) = struct.unpack("!i", _read(sock, 4))
    return kind, _read(sock, length - 4)


def _error_text(body: bytes) -> str:
    fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
    return f"{fields.get(b'S', 'ERROR')}: {fields.get(b'M', '?')}"


def query(
    host: str, sql: str, *, port: int = 5432, timeout: float = 2.0, source: str | None = None
) -> list[list[str | None]]:
    """Run ``sql`` as postgres on database postgres; the rows of its last result, as text.
    ``source``: the local address to connect from (the calling service's own)."""
    bind = (source, 0) if source else None
    with socket.create_connection((host, port), timeout=timeout, source_address=bind) as sock:
        params = b"user\0postgres\0database\0postgres\0application_name\0lab-service\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        while True:
            kind, body = _message(sock)
            if kind == b"E":
                raise PgError(_error_text(body))
            if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                raise PgError("the server asks for a password: the lab uses trust auth")
            if kind == b"Z":
                break
        text = sql.encode() + b"\0"
        sock.sendall(b"Q" + struct.pack("!i", 4 + len(text)) + text)
        rows: list[list[str | None]] = []
        error: str | None = None
        while True:
            kind, body = _message(sock)
            if kind == b"T":
                rows = []
            elif kind == b"D":
                rows.append(_row(body))
            elif kind == b"E":
                error = _error_text(body)
            elif kind == b"Z":
                break
        sock.sendall(b"X" + struct.pack("!i", 4))
    if error:
        raise PgError(error)
    return rows


def _row(body: bytes) -> list[str | None]:
    (count,) = struct.unpack("!h", body[:2])
    offset, values = 2, []
    for _ in range(count):
        (size,) = struct.unpack("!i", body[offset : offset + 4])
        offset += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[offset : offset + size].decode())
            offset += size
    return values
