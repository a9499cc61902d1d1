"""nfdump output -> normalized FlowRecords: ``-o json`` (1.7: an array; newer: one object per
line) and ``-o csv`` (with or without its trailing Summary block).

nfdump prints times in the local time of the machine that ran it, without a zone: drill runs
it with TZ=UTC itself, and ``flows import --timezone`` says what zone a team's export used.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from drill.errors import Diagnostic, InputError
from drill.flows.records import FlowRecord, canonical_address, utc_text

log = logging.getLogger(__name__)

MAX_IMPORT_BYTES = 4 * 1024**3
PROTOCOLS = {
    "ICMP": 1, "IGMP": 2, "TCP": 6, "UDP": 17, "GRE": 47, "ESP": 50, "AH": 51,
    "ICMP6": 58, "IPV6-ICMP": 58, "OSPF": 89, "PIM": 103, "VRRP": 112, "SCTP": 132,
}  # fmt: skip
_DECODER = json.JSONDecoder()
_SEPARATORS = re.compile(r"[\s,\[\]]*")
NO_FLOWS = "No matching flows"  # what nfdump prints instead of records for an empty window
CSV_REQUIRED = ("ts", "te", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")


class FormatError(ValueError):
    """One record nfdump printed that drill cannot use; the caller adds where."""


def read_export(path: Path, zone: tzinfo) -> Iterator[FlowRecord]:
    """Records from an nfdump JSON or CSV export file, format told by its first character."""
    display = str(path)
    try:
        size = path.stat().st_size
        handle = path.open("r", encoding="utf-8", errors="strict", newline="")
    except OSError as exc:
        raise InputError([Diagnostic(display, 1, 1, f"cannot read file: {exc.strerror}")]) from None
    if size > MAX_IMPORT_BYTES:
        handle.close()
        raise InputError([Diagnostic(display, 1, 1, f"file is larger than {MAX_IMPORT_BYTES}")])
    with handle:
        try:
            head = handle.read(4096)
            handle.seek(0)
            first = head.lstrip()[:1]
            if first in ("[", "{"):
                yield from json_records(handle, display, zone)
            elif first:
                yield from _csv_records(handle, display, zone)
        except UnicodeDecodeError:
            raise InputError(
                [
                    Diagnostic(
                        display,
                        1,
                        1,
                        "not UTF-8 text (is this an nfcapd binary file? "
                        "export it with nfdump -o json or -o csv)",
                    )
                ]
            ) from None


def json_records(handle: io.TextIOBase, display: str, zone: tzinfo) -> Iterator[FlowRecord]:
    """nfdump JSON (1.7's pretty array, a one-line array, or one object per line), decoded
    object by object with the C scanner: memory stays bounded, errors keep their line."""
    reader = _Blocks(handle, display)
    pos = 0
    while True:
        pos = reader.skip(pos)
        if pos >= len(reader.buf):
            return
        if reader.buf[pos] != "{":
            raise reader.bad(pos, "expected `{` starting an nfdump JSON record")
        try:
            item, end = reader.decode(pos)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(reader.buf.rstrip()):
                raise reader.bad(
                    pos, "nfdump JSON record is not closed (truncated file?)"
                ) from None
            raise reader.bad(exc.pos, f"bad JSON: {exc.msg}") from None
        except RecursionError:
            raise reader.bad(pos, "bad JSON: nested too deeply") from None
        if not isinstance(item, dict):
            raise reader.bad(pos, "an nfdump JSON record is an object")
        if item.get("type", "FLOW") == "FLOW":  # nfdump also prints exporter/stat records
            try:
                yield from_json(item, zone)
            except FormatError as exc:
                raise reader.bad(pos, str(exc)) from None
        pos = end


class _Blocks:
    """A sliding text window over a file, with line numbers for errors."""

    BLOCK = 1 << 20
    MAX_RECORD = 4 << 20

    def __init__(self, handle: io.TextIOBase, display: str) -> None:
        self.handle = handle
        self.buf = ""
        self.first_line = 1  # line number of buf[0]
        self.eof = False
        self.display = display

    def _fill(self, pos: int) -> int:
        """Drop what was consumed, read one more block; returns pos in the new buffer."""
        self.first_line += self.buf.count("\n", 0, pos)
        chunk = self.handle.read(self.BLOCK)
        self.eof = not chunk
        self.buf = self.buf[pos:] + chunk
        return 0

    def skip(self, pos: int) -> int:
        """Past separators, brackets and nfdump's `No matching flows` line."""
        while True:
            if len(self.buf) - pos < self.BLOCK // 2 and not self.eof:
                pos = self._fill(pos)
            pos = _SEPARATORS.match(self.buf, pos).end()  # type: ignore[union-attr]
            if self.buf.startswith(NO_FLOWS, pos):
                pos += len(NO_FLOWS)
                continue
            if pos < len(self.buf) or self.eof:
                return pos

    def decode(self, pos: int) -> tuple[Any, int]:
        while True:
            try:
                return _DECODER.raw_decode(self.buf, pos)
            except json.JSONDecodeError:
                if self.eof or len(self.buf) - pos > self.MAX_RECORD:
                    raise
                pos = self._fill(pos)

    def bad(self, index: int, message: str) -> InputError:
        line = self.first_line + self.buf.count("\n", 0, index)
        col = index - self.buf.rfind("\n", 0, index)
        return InputError([Diagnostic(self.display, line, col, message)])


def from_json(item: dict[str, Any], zone: tzinfo) -> FlowRecord:
    """One nfdump JSON flow object (1.6: t_first/t_last; 1.7: first/last)."""
    first, last = _span(
        _time(item.get("first", item.get("t_first")), "first", zone),
        _time(item.get("last", item.get("t_last")), "last", zone),
    )
    src = item.get("src4_addr") or item.get("src6_addr")
    dst = item.get("dst4_addr") or item.get("dst6_addr")
    exporter = item.get("ip4_router") or item.get("ip6_router")
    return FlowRecord(
        src_addr=_address(src, "src4_addr/src6_addr"),
        dst_addr=_address(dst, "dst4_addr/dst6_addr"),
        src_port=_number(item.get("src_port", 0), "src_port", 65535),
        dst_port=_dst_port(item),
        proto=_number(item.get("proto"), "proto", 255),
        packets=_number(item.get("in_packets"), "in_packets", 2**64 - 1),
        bytes=_number(item.get("in_bytes"), "in_bytes", 2**64 - 1),
        first_seen=first,
        last_seen=last,
        exporter=_address(exporter, "ip4_router") if exporter else None,
        input_if=_ifindex(item.get("input_snmp")),
        output_if=_ifindex(item.get("output_snmp")),
    )


def _csv_records(handle: io.TextIOBase, display: str, zone: tzinfo) -> Iterator[FlowRecord]:
    reader = csv.reader(handle)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise _bad(display, 1, 1, f"bad CSV: {exc}") from None
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        raise _bad(
            display,
            1,
            1,
            f"not an nfdump CSV export: no column {', '.join(missing)} in the header "
            "(expected nfdump -o csv output, or JSON)",
        )
    index = {name: header.index(name) for name in header}
    try:
        for row in reader:
            lineno = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if row[0].strip() == "Summary":
                break  # nfdump's statistics block follows the records
            if row[0].strip() == NO_FLOWS:
                continue
            if len(row) < len(header):
                raise _bad(display, lineno, 1, f"{len(row)} columns, the header has {len(header)}")
            try:
                yield from_csv(row, index, zone)
            except FormatError as exc:
                raise _bad(display, lineno, 1, str(exc)) from None
    except csv.Error as exc:
        raise _bad(display, reader.line_num, 1, f"bad CSV: {exc}") from None


def _dst_port(item: dict[str, Any]) -> int:
    """nfdump's JSON gives ICMP as icmp_type/icmp_code; CSV and NetFlow put type * 256 +
    code in the destination port. drill keeps the NetFlow form, whichever was read."""
    if "icmp_type" in item:
        kind = _number(item.get("icmp_type"), "icmp_type", 255)
        return kind * 256 + _number(item.get("icmp_code", 0), "icmp_code", 255)
    return _number(item.get("dst_port", 0), "dst_port", 65535)


def from_csv(row: list[str], index: dict[str, int], zone: tzinfo) -> FlowRecord:
    def col(name: str) -> str:
        return row[index[name]].strip() if name in index else ""

    exporter = col("ra")
    first, last = _span(_time(col("ts"), "ts", zone), _time(col("te"), "te", zone))
    return FlowRecord(
        src_addr=_address(col("sa"), "sa"),
        dst_addr=_address(col("da"), "da"),
        src_port=_number(_float_int(col("sp")), "sp", 65535),
        dst_port=_number(_float_int(col("dp")), "dp", 65535),
        proto=_protocol(col("pr")),
        packets=_number(_float_int(col("ipkt")), "ipkt", 2**64 - 1),
        bytes=_number(_float_int(col("ibyt")), "ibyt", 2**64 - 1),
        first_seen=first,
        last_seen=last,
        exporter=_address(exporter, "ra") if exporter not in ("", "0.0.0.0", "::") else None,
        input_if=_ifindex(_float_int(col("in")) if col("in") else None),
        output_if=_ifindex(_float_int(col("out")) if col("out") else None),
    )


def _span(first: str, last: str) -> tuple[str, str]:
    """First before last: an exporter that sends them the wrong way round (softflowd's
    uptime-relative IPFIX times as nfdump 1.7.1 reads them) must not make a flow end
    before it starts."""
    return (first, last) if first <= last else (last, first)


def _bad(display: str, line: int, col: int, message: str) -> InputError:
    return InputError([Diagnostic(display, line, col, message)])


def _address(value: Any, name: str) -> str:
    canonical = canonical_address(value) if isinstance(value, str) else None
    if canonical is None:
        raise FormatError(f"`{name}`: {str(value)[:60]!r} is not an IP address")
    return canonical


def _float_int(text: str) -> int | str:
    """nfdump may print counters as ``1.2 M`` with -h; plain numbers only (use -N)."""
    try:
        return int(text)
    except ValueError:
        return text


def _number(value: Any, name: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise FormatError(f"`{name}` must be an integer from 0 to {high}, not {str(value)[:30]!r}")
    return value


def _ifindex(value: Any) -> int | None:
    # SNMP ifIndex 0 means "not known": keep it out rather than invent an interface.
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**32:
        return value
    return None


def _protocol(text: str) -> int:
    if text.isdigit():
        return _number(int(text), "pr", 255)
    try:
        return PROTOCOLS[text.upper()]
    except KeyError:
        raise FormatError(f"`pr`: unknown protocol {text[:20]!r}") from None


def _time(value: Any, name: str, zone: tzinfo) -> str:
    if not isinstance(value, str):
        raise FormatError(f"`{name}` must be a time such as 2026-12-01T05:14:38.434")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise FormatError(f"`{name}`: {value[:40]!r} is not a time") from None
    if moment.tzinfo is None and zone is UTC and len(value) == 23 and value[19] == ".":
        return value + "Z"  # what drill's own nfdump run prints (TZ=UTC): already canonical
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return utc_text(moment)
