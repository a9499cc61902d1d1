"""The packets a packet probe sends: ICMP/ICMPv6 echo, or UDP to an echo port.

Every payload carries a random per-probe token and a 64-bit sequence number: the 16-bit ICMP
sequence wraps after 65 s at 1,000/s, and a raw socket also sees other probes' replies.

>>> icmp = Icmp4(ident=0x1234, token=b"drilltok")
>>> packet = icmp.build(70000)
>>> reply = bytes([0, 0]) + packet[2:]  # what the target sends back: type 0
>>> ipv4_header = bytes([0x45]) + bytes(19)  # a raw IPv4 socket returns it too
>>> icmp.parse(ipv4_header + reply)
70000
>>> checksum(packet) == 0
True
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PAYLOAD = struct.Struct("!8sQ")  # token, 64-bit sequence number
_ECHO = struct.Struct("!BBHHH")  # type, code, checksum, identifier, 16-bit sequence


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071); 0 over a packet that carries a correct one."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Icmp4:
    ident: int
    token: bytes
    family: socket.AddressFamily = socket.AF_INET
    request_type: int = 8
    reply_type: int = 0

    def open(self) -> socket.socket:
        return socket.socket(self.family, socket.SOCK_RAW, socket.IPPROTO_ICMP)

    def build(self, seq: int) -> bytes:
        payload = _PAYLOAD.pack(self.token, seq)
        header = _ECHO.pack(self.request_type, 0, 0, self.ident, seq & 0xFFFF)
        return header[:2] + struct.pack("!H", checksum(header + payload)) + header[4:] + payload

    def _icmp(self, datagram: bytes) -> bytes:
        # A raw IPv4 socket hands over the IP header too.
        return datagram[(datagram[0] & 0x0F) * 4 :] if datagram else b""

    def parse(self, datagram: bytes) -> int | None:
        """The 64-bit sequence number of one of our echo replies, else None."""
        icmp = self._icmp(datagram)
        if len(icmp) < _ECHO.size + _PAYLOAD.size:
            return None
        kind, _code, _sum, ident, _seq16 = _ECHO.unpack_from(icmp)
        if kind != self.reply_type or ident != self.ident:
            return None
        token, seq = _PAYLOAD.unpack_from(icmp, _ECHO.size)
        return int(seq) if token == self.token else None


@dataclass
class Icmp6(Icmp4):
    """ICMPv6 echo: the kernel fills in the checksum and strips the IPv6 header."""

    family: socket.AddressFamily = socket.AF_INET6
    request_type: int = 128
    reply_type: int = 129

    def open(self) -> socket.socket:
        return socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)

    def build(self, seq: int) -> bytes:
        payload = _PAYLOAD.pack(self.token, seq)
        return _ECHO.pack(self.request_type, 0, 0, self.ident, seq & 0xFFFF) + payload

    def _icmp(self, datagram: bytes) -> bytes:
        return datagram


@dataclass
class Udp:
    """UDP datagrams to an echo service that returns each payload unchanged."""

    token: bytes
    family: socket.AddressFamily = socket.AF_INET

    def open(self) -> socket.socket:
        return socket.socket(self.family, socket.SOCK_DGRAM)

    def build(self, seq: int) -> bytes:
        return _PAYLOAD.pack(self.token, seq)

    def parse(self, datagram: bytes) -> int | None:
        if len(datagram) != _PAYLOAD.size:
            return None
        token, seq = _PAYLOAD.unpack(datagram)
        return int(seq) if token == self.token else None


Transport = Icmp4 | Icmp6 | Udp
