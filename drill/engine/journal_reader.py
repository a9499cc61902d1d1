"""Read a run journal back into typed entries; never raise on what the file holds.

After a crash the journal is the only record of what changed, and it may be damaged (a disk
error, a hand edit, a planted file). :func:`read_journal` returns what it could read plus one
:class:`Problem` per line it could not, with the line number; a run with problems is
``corrupt`` and recovery refuses it. One damage is normal and tolerated: the last line cut
short by a power loss or SIGKILL mid-write (also when a recovery appended after it, which it
does behind a fresh header line).

The file is opened without following symlinks, must be a regular file, and is read up to
:data:`MAX_BYTES`. Lines written before schema version 2 (no header line: version 1) are
translated to the current records here, and only here.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from drill.engine.events import ENTRY, SCHEMA_VERSION, JournalEntry, JournalHeader

log = logging.getLogger(__name__)

MAX_BYTES = 256 * 1024 * 1024  # a 1,000-host x 20-step run writes about 5 MiB
_KEYED = frozenset(
    {"step_started", "step_ended", "host_result", "preconfig", "commit_started", "committed"}
)


@dataclass(frozen=True)
class Problem:
    line: int  # 0: the file as a whole
    message: str

    def where(self, path: Path) -> str:
        return f"{path}:{self.line}" if self.line else str(path)


@dataclass(frozen=True)
class JournalRead:
    path: Path
    entries: tuple[JournalEntry, ...]
    problems: tuple[Problem, ...]  # each makes the run corrupt
    torn: tuple[Problem, ...] = ()  # tolerated: lines cut short by a crash mid-write
    version: int = 1

    @property
    def corrupt(self) -> bool:
        return bool(self.problems)

    def describe(self) -> str:
        """The first problem, for one line of output (``FILE:LINE: message``)."""
        if not self.problems:
            return ""
        first = self.problems[0]
        more = len(self.problems) - 1
        return f"{first.where(self.path)}: {first.message}" + (
            f" (and {more} more bad line{'s' * (more > 1)})" if more else ""
        )


def read_journal(path: Path) -> JournalRead:
    data, problem = _read_bounded(path)
    if problem is not None:
        return JournalRead(path, (), (problem,))
    return _parse(path, data)


def _read_bounded(path: Path) -> tuple[bytes, Problem | None]:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return b"", Problem(0, f"cannot open the journal: {exc.strerror or exc}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", Problem(0, "the journal is not a regular file")
        if info.st_size > MAX_BYTES:
            return b"", Problem(0, f"the journal is larger than {MAX_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            return b"", Problem(0, f"the journal is larger than {MAX_BYTES} bytes")
        return b"".join(chunks), None
    except OSError as exc:
        return b"", Problem(0, f"cannot read the journal: {exc.strerror or exc}")
    finally:
        os.close(fd)


@dataclass
class _Line:
    number: int
    entry: JournalEntry | None = None
    problem: str | None = None
    last: bool = False  # the final line, without its newline


def _parse(path: Path, data: bytes) -> JournalRead:
    raw = data.split(b"\n")
    unterminated = raw.pop()  # b"" when the file ends with a newline
    lines: list[_Line] = []
    version = 1
    for number, text in enumerate([*raw, unterminated], start=1):
        if not text.strip():
            continue
        line = _Line(number, last=number == len(raw) + 1)
        entry_or_problem, version = _decode(text, version)
        if isinstance(entry_or_problem, str):
            line.problem = entry_or_problem
        else:
            line.entry = entry_or_problem
        lines.append(line)
    problems: list[Problem] = []
    torn: list[Problem] = []
    for i, line in enumerate(lines):
        if line.problem is None:
            continue
        following = lines[i + 1] if i + 1 < len(lines) else None
        restarted = following is not None and isinstance(following.entry, JournalHeader)
        if (line.last or restarted) and not line.problem.startswith("written by"):
            # a write cut short by a crash; the next writer starts with a header line
            torn.append(Problem(line.number, f"truncated line (crash mid-write): {line.problem}"))
        else:
            problems.append(Problem(line.number, line.problem))
    entries = tuple(line.entry for line in lines if line.entry is not None)
    for problem in torn:
        log.info("%s: %s", problem.where(path), problem.message)
    return JournalRead(path, entries, tuple(problems), tuple(torn), version)


def _decode(text: bytes, version: int) -> tuple[JournalEntry | str, int]:
    """One line: its entry (or what is wrong with it) and the schema version from here on."""
    try:
        value = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text", version
    except (ValueError, RecursionError) as exc:
        return f"not JSON ({str(exc).split(':')[0][:80]})", version
    if not isinstance(value, dict):
        return f"a JSON {type(value).__name__}, not an object", version
    if "ts" not in value:
        return "a record without its time stamp ('ts')", version
    if value.get("event") == "journal":
        found = value.get("version")
        if not isinstance(found, int) or isinstance(found, bool) or found < 1:
            return "a header line without a valid schema version", version
        if found > SCHEMA_VERSION:
            return (
                f"written by a newer drill (journal schema {found}; "
                f"this drill reads 1 to {SCHEMA_VERSION})"
            ), version
        version = found
    elif version == 1:
        value = _from_v1(value)
    try:
        return ENTRY.validate_python(value), version
    except ValidationError as exc:
        return _why(value, exc), version


def _why(value: dict[str, object], exc: ValidationError) -> str:
    """A short reason, never the offending value (a hand-edited line may hold anything)."""
    event = value.get("event")
    what = f"{event!r} record" if isinstance(event, str) and len(event) < 40 else "record"
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"][1:] or first["loc"])
    return f"bad {what}: {loc}: {first['msg']}"[:200]


def _from_v1(value: dict[str, object]) -> dict[str, object]:
    """Version 1 wrote step keys as text (``step:3:name``); this is the one place that
    parses them. Anything it cannot read is left for validation to report."""
    key = value.get("step")
    if value.get("event") in _KEYED and isinstance(key, str):
        return {**value, "step": _v1_key(key)}
    return value


def _v1_key(text: str) -> dict[str, object]:
    """
    >>> _v1_key("step:3:a:b")
    {'phase': 'step', 'index': 3, 'name': 'a:b'}
    >>> _v1_key("rollback:step:2:x:0")["of"]
    {'phase': 'step', 'index': 2, 'name': 'x'}
    """
    head, _, rest = text.partition(":")
    if head == "rollback":
        of, _, number = rest.rpartition(":")
        index = int(number) if number.isdigit() else 0
        return {"phase": head, "index": index, "name": "", "of": _v1_key(of)}
    if head == "reverify":
        checked = _v1_key(rest)
        return {"phase": head, "index": checked["index"], "name": checked["name"], "of": checked}
    number, _, name = rest.partition(":")
    if number.isdigit():
        return {"phase": head, "index": int(number), "name": name}
    return {"phase": head, "index": 0, "name": rest}
