"""Run directories: ``$DRILL_STATE_DIR`` or ``~/.local/state/drill``, then ``runs/RUN_ID/``.

A run directory holds ``journal.jsonl``, the runbook as run (``runbook.yml``), config
snapshots (``snapshots/``, dir 0700, files 0600: they hold secrets) and the report.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def state_dir() -> Path:
    env = os.environ.get("DRILL_STATE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".local" / "state" / "drill"


def make_run_id(runbook_name: str, now: datetime | None = None) -> str:
    """Sortable by time, naming the runbook.

    >>> make_run_id("dc1-to-dc2", datetime(2026, 11, 24, 16, 15, tzinfo=UTC))[:-4]
    '20261124T161500Z-dc1-to-dc2-'
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", runbook_name)
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run_id: str, base: Path | None = None) -> RunDir:
        root = (base or state_dir()) / "runs"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = root / run_id
        path.mkdir(mode=0o700)
        return cls(path)

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def snapshot_dir(self) -> Path:
        snaps = self.path / "snapshots"
        # Worker threads save configs concurrently: creating it twice is fine.
        snaps.mkdir(mode=0o700, exist_ok=True)
        return snaps

    def save_runbook(self, text: str) -> Path:
        target = self.path / "runbook.yml"
        _write_private(target, text)
        return target

    def save_config(self, name: str, text: str) -> Path:
        """Store a running config (it may hold secrets: 0600 in a 0700 dir)."""
        target = self.snapshot_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".cfg")
        _write_private(target, text)
        return target
