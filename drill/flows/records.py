"""The normalized flow record and its JSON Lines file (docs/flows.md, "Record fields").

One record per line, the same whatever produced it (``flows record``, ``flows import``):
addresses as text, ports and counters as integers, times as UTC ISO 8601 with milliseconds.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from drill.errors import Diagnostic, InputError

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # a record is ~300 bytes; a longer line is not a flow record
FIELDS = (
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "proto",
    "packets",
    "bytes",
    "first_seen",
    "last_seen",
    "exporter",
    "input_if",
    "output_if",
)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One unidirectional flow as an exporter reported it.

    For ICMP, ``dst_port`` is type * 256 + code (the NetFlow convention nfdump keeps).
    """

    src_addr: str
    dst_addr: str
    src_port: int
    dst_port: int
    proto: int
    packets: int
    bytes: int
    first_seen: str  # 2026-12-01T05:14:38.434Z
    last_seen: str
    exporter: str | None = None
    input_if: int | None = None
    output_if: int | None = None

    def to_json(self) -> str:
        return json.dumps({name: getattr(self, name) for name in FIELDS}, separators=(",", ":"))


def utc_text(moment: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix: sortable as text.

    >>> utc_text(datetime(2026, 12, 1, 5, 14, 38, 434000, tzinfo=UTC))
    '2026-12-01T05:14:38.434Z'
    """
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def write_jsonl(records: Iterable[FlowRecord], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(record.to_json())
        out.write("\n")
        count += 1
    return count


def read_jsonl(path: Path) -> Iterator[FlowRecord]:
    """Records of a flows file; the first bad line raises InputError at FILE:LINE:COL."""
    display = str(path)
    try:
        handle = path.open("r", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError([Diagnostic(display, 1, 1, f"cannot read file: {exc.strerror}")]) from None
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, 1):
                if len(line) > MAX_LINE:
                    raise _bad(display, lineno, 1, f"line longer than {MAX_LINE} characters")
                if not line.strip():
                    continue
                yield parse_line(line, display, lineno)
        except UnicodeDecodeError:
            raise _bad(display, lineno + 1, 1, "not UTF-8 text (is this a binary file?)") from None


def parse_line(line: str, display: str, lineno: int) -> FlowRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _bad(display, lineno, exc.colno, f"not a JSON record: {exc.msg}") from None
    except RecursionError:
        raise _bad(display, lineno, 1, "not a flow record: nested too deeply") from None
    if not isinstance(data, dict):
        raise _bad(display, lineno, 1, "a flow record is a JSON object")
    try:
        return record_from_mapping(data)
    except ValueError as exc:
        raise _bad(display, lineno, 1, str(exc)) from None


def record_from_mapping(data: dict[str, Any]) -> FlowRecord:
    """Check and convert one decoded record; ValueError names the first bad field."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field `{unknown[0]}` (fields: {', '.join(FIELDS)})")
    return FlowRecord(
        src_addr=_addr(data, "src_addr"),
        dst_addr=_addr(data, "dst_addr"),
        src_port=_int(data, "src_port", 0, 65535),
        dst_port=_int(data, "dst_port", 0, 65535),
        proto=_int(data, "proto", 0, 255),
        packets=_int(data, "packets", 0, 2**64 - 1),
        bytes=_int(data, "bytes", 0, 2**64 - 1),
        first_seen=_time(data, "first_seen"),
        last_seen=_time(data, "last_seen"),
        exporter=_addr(data, "exporter") if data.get("exporter") is not None else None,
        input_if=_int(data, "input_if", 0, 2**32 - 1) if data.get("input_if") is not None else None,
        output_if=(
            _int(data, "output_if", 0, 2**32 - 1) if data.get("output_if") is not None else None
        ),
    )


def _bad(display: str, line: int, col: int, message: str) -> InputError:
    return InputError([Diagnostic(display, line, col, message)])


def _addr(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be an IP address string")
    canonical = canonical_address(value)
    if canonical is None:
        raise ValueError(f"`{name}`: `{value[:60]}` is not an IP address")
    return canonical


@functools.lru_cache(maxsize=1 << 16)
def canonical_address(text: str) -> str | None:
    """The address in its canonical text form, or None; cached: flows repeat addresses.

    >>> canonical_address("2001:DB8:0::1")
    '2001:db8::1'
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"`{name}` must be an integer from {low} to {high}")
    return value


def _time(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be a UTC time such as 2026-12-01T05:14:38.434Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"`{name}`: `{value[:40]}` is not an ISO 8601 time") from None
    if len(value) == 24 and value[-1] == "Z" and value[19] == ".":
        return value  # already canonical (what drill writes): skip the reformatting
    if moment.tzinfo is None:
        raise ValueError(f"`{name}`: `{value[:40]}` has no time zone (write it in UTC, with Z)")
    return utc_text(moment)
