"""The probe agent: ``python -m drill.probes.agent packet|service|session|udp-echo ...``.

The orchestrator starts it inside the vantage point (``ip netns exec NAME ...``) and reads
JSON lines from its stdout (drill/probes/wire.py). It stops when its stdin closes (so it never
outlives the orchestrator) or on SIGTERM/SIGINT, then prints its result line and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from drill.probes import wire

if TYPE_CHECKING:
    from drill.probes.bins import BinFile
    from drill.probes.packet import PacketAgent
    from drill.probes.service import ServiceAgent

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drill.probes.agent")
    sub = parser.add_subparsers(dest="mode", required=True)
    packet = sub.add_parser("packet", help="ICMP echo or UDP echo probe")
    packet.add_argument("--target", required=True)
    packet.add_argument("--rate", type=float, required=True, help="packets per second")
    packet.add_argument("--protocol", choices=("icmp", "udp"), default="icmp")
    packet.add_argument("--port", type=int, help="UDP echo port")
    packet.add_argument("--grace", type=float, default=1.0, help="later replies are lost")
    _bins_options(packet)
    service = sub.add_parser("service", help="HTTP request loop")
    service.add_argument("--url", required=True)
    service.add_argument("--rate", type=float, required=True, help="requests per second")
    service.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    _bins_options(service)
    session = sub.add_parser("session", help="long-lived TCP sessions to an echo endpoint")
    session.add_argument("--target", required=True)
    session.add_argument("--port", type=int, required=True)
    session.add_argument("--sessions", type=int, default=50)
    session.add_argument("--interval", type=float, default=0.1, help="seconds between messages")
    session.add_argument("--timeout", type=float, default=3.0, help="later answers: stalled")
    flows = sub.add_parser("flows", help="one attempt per flow per interval (isolation)")
    flows.add_argument(
        "--targets",
        required=True,
        help="JSON: [[id, method, src, dst, port]], or - for its first line on stdin (thousands "
        "of flows do not fit in one argument)",
    )
    flows.add_argument("--interval", type=float, default=1.0)
    flows.add_argument("--timeout", type=float, default=1.0)
    echo = sub.add_parser("udp-echo", help="UDP echo server for udp packet probes")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--bind", default="::", help="address to listen on")
    return parser


def _bins_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bins", help="append per-bin rows to this file (drill.probes.bins)")
    parser.add_argument("--bin-s", type=float, default=0.01, help="bin width in seconds")


def _with_bins(agent: PacketAgent | ServiceAgent, args: argparse.Namespace) -> BinFile | None:
    if not args.bins:
        return None
    from pathlib import Path

    from drill.probes.bins import BinFile

    try:
        bins = BinFile(Path(args.bins), args.bin_s)
    except OSError as exc:
        # The report's chart is not worth failing a drill for: measure without it.
        log.warning("cannot open %s (%s): no timeline for this probe", args.bins, exc)
        return None
    agent.ledger.sink = bins.add
    return bins


class _Output:
    """Serializes message lines; stdout is the protocol channel, logs go to stderr."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, message: wire.Message) -> None:
        with self._lock:
            sys.stdout.write(wire.encode(message) + "\n")
            sys.stdout.flush()


def _stop_on_eof_or_signal(stop: threading.Event) -> None:
    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()


def _udp_echo(bind: str, port: int, stop: threading.Event) -> None:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((bind, port))
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except TimeoutError:
                continue
            sock.sendto(data, peer)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    emit = _Output()
    stop = threading.Event()
    if args.mode == "flows" and args.targets == "-":
        args.targets = sys.stdin.buffer.readline().decode("utf-8", "replace")  # before the watch
    _stop_on_eof_or_signal(stop)
    try:
        if args.mode in ("packet", "service"):
            _measure(args, stop, emit)
        elif args.mode == "session":
            from drill.probes.session import SessionAgent, SessionOptions

            sessions = SessionOptions(
                args.target, args.port, args.sessions, args.interval, args.timeout
            )
            SessionAgent(sessions).run(stop, emit)
        elif args.mode == "flows":
            _flows(args, stop, emit)
        else:
            emit(wire.Ready(started=time.time()))
            _udp_echo(args.bind, args.port, stop)
    except (OSError, ValueError) as exc:
        emit(wire.Error(f"{args.mode} agent: {exc}"))
        return 2
    return 0


def _flows(args: argparse.Namespace, stop: threading.Event, emit: _Output) -> None:
    import json

    from drill.probes.flows import FlowAgent, FlowTarget, raise_open_files

    targets = [FlowTarget.parse(item) for item in json.loads(args.targets)]
    raise_open_files(len(targets))  # a round holds one socket per flow at once
    FlowAgent(targets, args.interval, args.timeout).run(stop, emit)


def _measure(args: argparse.Namespace, stop: threading.Event, emit: _Output) -> None:
    from drill.probes.packet import PacketAgent, PacketOptions
    from drill.probes.service import ServiceAgent, ServiceOptions

    agent: PacketAgent | ServiceAgent
    if args.mode == "packet":
        options = PacketOptions(args.target, args.rate, args.protocol, args.port, args.grace)
        agent = PacketAgent(options)
    else:
        agent = ServiceAgent(ServiceOptions(args.url, args.rate, args.timeout))
    bins = _with_bins(agent, args)
    try:
        agent.run(stop, emit)
    finally:
        if bins is not None:
            bins.close()


if __name__ == "__main__":
    sys.exit(main())
