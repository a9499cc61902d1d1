"""Safe YAML reading that keeps the position of every key and value.

PyYAML silently keeps the last of two duplicate keys, expands aliases without limit (the
"billion laughs") and composes documents recursively (deep nesting overflows the stack).
This reader walks PyYAML's event stream with an explicit stack instead: it records where
each value and key starts, rejects duplicate keys, aliases and non-standard tags, limits
nesting depth and size, and turns every problem into a located Diagnostic.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drill.errors import Diagnostic

logger = logging.getLogger(__name__)

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32

# YAML 1.1 printable set (PyYAML's Reader.NON_PRINTABLE, negated): anything else is binary.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_STANDARD_TAGS = {
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}

# libyaml's event parser is ~5x faster than PyYAML's pure-Python one; same events and marks.
_EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathKey = str | int
JsonPath = tuple[PathKey, ...]


@dataclass(frozen=True)
class Pos:
    """1-based line and column."""

    line: int
    col: int


@dataclass
class Positions:
    """Where each value (and each mapping key) of a document starts, by JSON path."""

    values: dict[JsonPath, Pos] = field(default_factory=dict)
    keys: dict[JsonPath, Pos] = field(default_factory=dict)
    block_scalars: set[JsonPath] = field(default_factory=set)

    def value(self, path: JsonPath) -> Pos:
        """Position of the value at path, or of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Pos(1, 1)

    def key(self, path: JsonPath) -> Pos:
        """Position of the key naming path (falls back to the value's position)."""
        found = self.keys.get(path)
        return found if found is not None else self.value(path)


@dataclass
class ParsedYaml:
    data: Any
    positions: Positions
    text: str
    soft: list[Diagnostic] = field(default_factory=list)


class YamlError(Exception):
    """Carries the diagnostics found while reading one YAML file."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(str(d) for d in diagnostics))
        self.diagnostics = diagnostics


def read_text(path: Path, display: str, limit: int = MAX_BYTES) -> str:
    """Read a regular file as UTF-8 text within the size limit; every failure is a
    Diagnostic. A FIFO, a device, a directory or a terminal is refused at once: opening
    one without O_NONBLOCK could wait forever, reading one could never end. ``limit``: the
    size in bytes (runbooks and inventories keep the default; a run's report.json is larger)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise YamlError([Diagnostic(display, 1, 1, f"cannot read file: {exc.strerror}")]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            message = "not a regular file (a FIFO, a device, a directory or stdin): give a file"
            raise YamlError([Diagnostic(display, 1, 1, message)])
        if info.st_size > limit:
            raise YamlError([_too_big(display, info.st_size, limit)])
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # one byte past the limit: a file may grow while read
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        raise YamlError([Diagnostic(display, 1, 1, f"cannot read file: {exc.strerror}")]) from None
    finally:
        os.close(fd)
    return decode(raw, display, limit)


def _too_big(display: str, size: int, limit: int = MAX_BYTES) -> Diagnostic:
    return Diagnostic(
        display, 1, 1, f"file is too large ({size} bytes; the limit is {limit} bytes)"
    )


def decode(raw: bytes, display: str, limit: int = MAX_BYTES) -> str:
    """UTF-8 (an optional BOM is dropped); invalid bytes are located."""
    if len(raw) > limit:
        message = f"file is too large (more than the limit of {limit} bytes)"
        raise YamlError([Diagnostic(display, 1, 1, message)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start]
        message = f"not UTF-8 text: invalid byte 0x{byte:02x} (is this a binary file?)"
        raise YamlError([Diagnostic(display, line, col, message)]) from None
    return text.removeprefix("\ufeff")


def _line_col(text: str, index: int) -> Pos:
    line = text.count("\n", 0, index) + 1
    return Pos(line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _mark_pos(mark: Any) -> Pos:
    return Pos(int(mark.line) + 1, int(mark.column) + 1)


def _tab_diagnostics(text: str, display: str) -> list[Diagnostic]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" \t"))
        tab = line.find("\t", 0, indent)
        if tab >= 0:
            message = "tab character in indentation: YAML indentation must use spaces"
            found.append(Diagnostic(display, number, tab + 1, message))
    return found


def parse(text: str, display: str) -> ParsedYaml:
    """Parse one YAML document into plain data plus positions, or raise YamlError."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlError([_too_big(display, len(text.encode("utf-8", "surrogatepass")))])
    bad = _NON_PRINTABLE.search(text)
    if bad:
        pos = _line_col(text, bad.start())
        message = (
            f"control or binary character U+{ord(bad.group()):04X} is not allowed "
            "(is this a binary file?)"
        )
        raise YamlError([Diagnostic(display, pos.line, pos.col, message)])
    try:
        builder = _build(text, display, _EVENT_LOADER)
    except yaml.YAMLError:
        builder = None  # PyYAML's own parser words syntax errors better: let it report them
    try:
        if builder is None:
            builder = _build(text, display, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        tabs = _tab_diagnostics(text, display)
        if tabs:
            raise YamlError(tabs) from None
        raise YamlError([_syntax_diagnostic(exc, display)]) from None
    except yaml.YAMLError as exc:  # e.g. ReaderError: no mark, but still a clean message
        raise YamlError([Diagnostic(display, 1, 1, f"invalid YAML: {exc}")]) from None
    if builder.diagnostics:
        raise YamlError(sort_diagnostics(builder.diagnostics + builder.soft))
    return ParsedYaml(builder.result, builder.positions, text, builder.soft)


def _build(text: str, display: str, loader: Any) -> _Builder:
    builder = _Builder(display)
    for event in yaml.parse(text, Loader=loader):
        builder.feed(event)
        if builder.fatal:
            break
    return builder


def sort_diagnostics(found: list[Diagnostic]) -> list[Diagnostic]:
    """File order, duplicates dropped."""
    return sorted(set(found), key=lambda d: (d.file, d.line, d.col, d.message))


_LINE_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(found: list[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics whose file and message hold no line breaks or control characters (keys
    and names come from the user's file and may contain anything)."""

    def clean(text: str) -> str:
        return _LINE_BREAKING.sub(lambda m: m.group().encode("unicode_escape").decode(), text)

    return [Diagnostic(clean(d.file), d.line, d.col, clean(d.message)) for d in found]


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, display: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    pos = _mark_pos(mark) if mark is not None else Pos(1, 1)
    problem = exc.problem or "syntax error"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return Diagnostic(display, pos.line, pos.col, message)


@dataclass
class _Frame:
    container: dict[Any, Any] | list[Any]
    path: JsonPath
    pending_key: Any = None
    pending_key_pos: Pos | None = None
    has_key: bool = False
    skip: bool = False
    key_lines: dict[Any, int] = field(default_factory=dict)


class _Builder:
    """Turns the event stream into plain data; one instance per document."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.positions = Positions()
        self.diagnostics: list[Diagnostic] = []
        # Problems that still leave usable data (duplicate keys): reported with later ones.
        self.soft: list[Diagnostic] = []
        self.stack: list[_Frame] = []
        self.result: Any = None
        self.documents = 0
        self.fatal = False
        self._scalars = yaml.SafeLoader("")

    def error(self, pos: Pos, message: str, *, fatal: bool = False) -> None:
        self.diagnostics.append(Diagnostic(self.display, pos.line, pos.col, message))
        self.fatal = self.fatal or fatal

    def feed(self, event: yaml.Event) -> None:
        pos = _mark_pos(event.start_mark)
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.error(pos, "expected one YAML document, found a second one", fatal=True)
        elif isinstance(event, yaml.AliasEvent):
            self.error(pos, f"YAML aliases (*{event.anchor}) are not allowed", fatal=True)
        elif isinstance(event, yaml.ScalarEvent):
            self._value(self._scalar(event, pos), pos, event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._open(event, pos)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame = self.stack.pop()
            if not self.stack:
                self.result = frame.container

    def _scalar(self, event: yaml.ScalarEvent, pos: Pos) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            resolved = self._scalars.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit
            )
            tag = _implicit_tag(str(resolved), event.value)
        if tag not in _STANDARD_TAGS:
            self.error(pos, f"unsupported YAML tag {event.tag!r}", fatal=True)
            return None
        if tag == "tag:yaml.org,2002:str":
            return event.value  # most scalars: skip the constructor machinery
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            return self._scalars.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:
            self.error(pos, f"bad {tag.rsplit(':', 1)[-1]} value {event.value!r}: {exc}")
            return None

    def _open(self, event: yaml.Event, pos: Pos) -> None:
        tag = getattr(event, "tag", None)
        is_map = isinstance(event, yaml.MappingStartEvent)
        if tag not in (None, "!") and tag not in _STANDARD_TAGS:
            self.error(pos, f"unsupported YAML tag {tag!r}", fatal=True)
        if len(self.stack) >= MAX_DEPTH:
            self.error(pos, f"nesting deeper than {MAX_DEPTH} levels", fatal=True)
            return
        container: dict[Any, Any] | list[Any] = {} if is_map else []
        was_key = bool(self.stack) and self._expects_key()
        path = self._place(container, pos, event)
        if was_key:
            return  # fatal already: a mapping or list used as a key
        self.stack.append(_Frame(container, path or (), skip=path is None))

    def _expects_key(self) -> bool:
        frame = self.stack[-1]
        return isinstance(frame.container, dict) and not frame.has_key

    def _place(self, value: Any, pos: Pos, event: yaml.Event) -> JsonPath | None:
        """Attach value to the current container; returns its path (None when dropped)."""
        if not self.stack:
            self.result = value
            self.positions.values[()] = pos
            return ()
        frame = self.stack[-1]
        if isinstance(frame.container, list):
            path = (*frame.path, len(frame.container))
            frame.container.append(value)
            if frame.skip:
                return None
        elif not frame.has_key:
            self._key(frame, value, pos, event)
            return None
        else:
            key, frame.has_key = frame.pending_key, False
            path = (*frame.path, key)
            if frame.skip:
                frame.container[key] = value
                return None
            if key in frame.key_lines and frame.pending_key_pos is not None:
                first = frame.key_lines[key]
                kpos = frame.pending_key_pos
                message = f"duplicate key {key!r} (first defined at line {first})"
                self.soft.append(Diagnostic(self.display, kpos.line, kpos.col, message))
                return None
            assert frame.pending_key_pos is not None
            frame.key_lines[key] = frame.pending_key_pos.line
            frame.container[key] = value
            self.positions.keys[path] = frame.pending_key_pos
        self.positions.values[path] = pos
        if isinstance(event, yaml.ScalarEvent) and event.style in ("|", ">"):
            self.positions.block_scalars.add(path)
        return path

    def _key(self, frame: _Frame, value: Any, pos: Pos, event: yaml.Event) -> None:
        if not isinstance(event, yaml.ScalarEvent):
            self.error(pos, "mapping keys must be plain values, not mappings or lists", fatal=True)
            return
        # Keys are always the text written: YAML 1.1 would read the key `on` as True.
        frame.pending_key = event.value
        frame.pending_key_pos = pos
        frame.has_key = True

    def _value(self, value: Any, pos: Pos, event: yaml.ScalarEvent) -> None:
        self._place(value, pos, event)


_INT = re.compile(r"^[-+]?(?:[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$")


def _implicit_tag(tag: str, value: str) -> str:
    """YAML 1.2-like plain scalars: only true/false are booleans (not yes/no/on/off), no
    sexagesimal numbers (1:30), no timestamps or merge keys: those stay strings."""
    if tag == "tag:yaml.org,2002:bool" and value.lower() not in ("true", "false"):
        return "tag:yaml.org,2002:str"
    if tag == "tag:yaml.org,2002:int" and not _INT.match(value.replace("_", "")):
        return "tag:yaml.org,2002:str"
    if tag == "tag:yaml.org,2002:float" and ":" in value:
        return "tag:yaml.org,2002:str"
    if tag not in _STANDARD_TAGS:
        return "tag:yaml.org,2002:str"
    return tag


def block_scalar_origin(parsed: ParsedYaml, path: JsonPath) -> tuple[int, int]:
    """(line, col) where the text of the scalar at path starts: for a block scalar
    (``|``/``>``), the first content line and its indentation; otherwise the value itself."""
    pos = parsed.positions.value(path)
    if path not in parsed.positions.block_scalars:
        # A quoted scalar's text starts one column after the quote.
        text_line = parsed.text.splitlines()[pos.line - 1] if parsed.text else ""
        quoted = pos.col - 1 < len(text_line) and text_line[pos.col - 1] in "'\""
        return pos.line, pos.col + (1 if quoted else 0)
    lines = parsed.text.splitlines()
    for number in range(pos.line, len(lines)):
        content = lines[number]
        if content.strip():
            return number + 1, len(content) - len(content.lstrip(" ")) + 1
    return pos.line + 1, 1
