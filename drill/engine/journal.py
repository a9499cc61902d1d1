"""The run journal's writer: one JSON object per line (``journal.jsonl``), flushed as written.
Its records are defined in drill.engine.events; drill.engine.journal_reader reads them back.

Durability where it matters and nowhere else: events marked ``sync`` (step boundaries, state
changes, a commit about to happen) are fsynced; host results are only flushed, so a
thousand-host check step costs one fsync, not a thousand.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TextIO

from drill.engine.events import Event, JournalEntry, JournalHeader
from drill.secrets import mask_literals

log = logging.getLogger(__name__)


class Journal:
    """Appends events to ``path``; also an :class:`~drill.engine.events.Observer`.

    Every time it opens the file it first writes a :class:`JournalHeader`: a resumed run's
    lines are read with the schema they were written in, even after an older drill's lines.
    """

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self._secrets = tuple(s for s in secrets if s)
        # A secret appears in a JSON line escaped: look for both spellings.
        self._needles = tuple({n for s in self._secrets for n in (s, json.dumps(s)[1:-1])})
        self._lock = threading.Lock()
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        fd = os.open(path, flags, 0o600)
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        self._file: TextIO = os.fdopen(fd, "a", encoding="utf-8", buffering=1 << 16)
        if torn:
            # a dead writer's torn last line must not swallow the header: end it
            self._file.write("\n")
        self.write(JournalHeader(), sync=True)

    def notify(self, event: Event) -> None:
        self.write(event.entry(), sync=event.sync)

    def write(self, entry: JournalEntry, *, sync: bool = False) -> None:
        line = entry.model_dump_json(by_alias=True)
        if any(needle in line for needle in self._needles):
            # Errors echo what devices say, and a device may echo a password. Masked per
            # value so the line stays valid JSON.
            masked = _masked(entry.model_dump(mode="json", by_alias=True), self._secrets)
            line = json.dumps(masked)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())

    def sync(self) -> None:
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


JSON = str | int | float | bool | None | dict[str, "JSON"] | list["JSON"]


def _masked(value: JSON, secrets: tuple[str, ...]) -> JSON:
    if isinstance(value, str):
        return mask_literals(value, secrets)
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    return value
