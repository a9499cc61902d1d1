"""TCP echo endpoint for session probes: ``python3 -m drill.probes.echo_server --port 7007``.

Every byte a client sends comes back unchanged, on as many connections as clients open, for
as long as they stay open. Standard library only and no drill import, so a lab node runs the
same file as a plain script (``python3 /etc/frr/echo_server.py --bind 192.0.2.11``): labs
bind it from here rather than keeping a copy.

It binds the node's own fixed address, never a service address that moves: a session probe
measures the network path, and a session ending on a moving VIP is lost by the application
whatever the network does (docs/probes.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys

log = logging.getLogger(__name__)

DEFAULT_PORT = 7007
CHUNK = 4096


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # the peer or the network ended it; nothing to answer any more
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve(bind: str, port: int, ready: asyncio.Event | None = None) -> None:
    """Echo on ``bind``:``port`` until cancelled (or SIGTERM/SIGINT when run as a script)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server = await asyncio.start_server(_echo, bind, port, family=family, reuse_address=True)
    log.info("echo server on %s port %d", bind, port)
    if ready is not None:
        ready.set()
    async with server:
        await server.serve_forever()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m drill.probes.echo_server")
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    return parser


async def _serve_when_address_exists(bind: str, port: int, wait: float = 10.0) -> None:
    # A lab node's exec line may start before its routing daemon has put the address on.
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            await serve(bind, port)
            return
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _main(bind: str, port: int) -> None:
    task = asyncio.ensure_future(_serve_when_address_exists(bind, port))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_main(args.bind, args.port))
    except OSError as exc:
        print(f"echo_server: {args.bind} port {args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
