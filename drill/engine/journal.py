"""The run journal: one JSON object per line (``journal.jsonl``), flushed as written.

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
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from drill.engine.events import Event
from drill.secrets import mask_literals

log = logging.getLogger(__name__)


class Journal:
    """Appends events to ``path``; also an :class:`~drill.engine.events.Observer`."""

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self._secrets = tuple(s for s in secrets if s)
        # A secret appears in a JSON line escaped: look for both spellings.
        self._needles = tuple({n for s in self._secrets for n in (s, json.dumps(s)[1:-1])})
        self._lock = threading.Lock()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: TextIO = os.fdopen(fd, "a", encoding="utf-8", buffering=1 << 16)

    def notify(self, event: Event) -> None:
        self.write(event.kind, event.payload(), sync=event.sync)

    def write(self, kind: str, payload: dict[str, Any], *, sync: bool = False) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        line = json.dumps({"ts": stamp, "event": kind, **payload}, default=str)
        if any(needle in line for needle in self._needles):
            # Errors echo what devices say, and a device may echo a password. Masked per
            # value so the line stays valid JSON.
            masked = _masked(payload, self._secrets)
            line = json.dumps({"ts": stamp, "event": kind, **masked}, default=str)
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


def _masked(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask_literals(value, secrets)
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, secrets) for v in value]
    return value


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every event of a journal; a torn last line (crash mid-write) is ignored."""
    events: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("ignoring a torn journal line in %s", path)
    return events
