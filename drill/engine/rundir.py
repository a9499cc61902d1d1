"""Run directories: ``$DRILL_STATE_DIR`` or ``~/.local/state/drill``, then ``runs/RUN_ID/``.

A run directory holds ``journal.jsonl``, the runbook as run (``runbook.yml``), config
snapshots (``snapshots/``, dir 0700, files 0600: they hold secrets) and the report.

drill runs as root against production devices, so the state directory is trusted only when
it is safe (:func:`check_private_dir`): created 0700, refused when another user owns it or
others can write to it, or when a parent others can write to lacks the sticky bit (``/tmp``
is fine). Files in it are created with ``O_EXCL`` and opened with ``O_NOFOLLOW``: a planted
symlink never makes drill write somewhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path

from drill.errors import InputError
from drill.names import file_component, run_id_problem

log = logging.getLogger(__name__)

# Linux NAME_MAX is 255 bytes; leave room for suffixes such as ".cfg" and ".lock".
_MAX_FILE_NAME = 200


def state_dir() -> Path:
    """The state directory, checked (:func:`check_private_dir`) when it exists."""
    env = os.environ.get("DRILL_STATE_DIR")
    path = Path(env) if env else Path.home() / ".local" / "state" / "drill"
    if path.exists() or path.is_symlink():
        check_private_dir(path)
    return path


def check_private_dir(path: Path, *, create: bool = False) -> Path:
    """``path`` as a directory only this user can change; InputError (exit 2) otherwise.

    With ``create`` a missing directory is made 0700 (its missing parents too)."""
    if create and not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError(f"error: state directory {path}: {exc.strerror}") from None
    problem = _unsafe(info, path)
    if problem is None:
        problem = _unsafe_parent(path)
    if problem is not None:
        raise InputError(
            f"error: refusing the state directory {path}: {problem} (set DRILL_STATE_DIR to a "
            "directory you own with mode 0700)"
        )
    return path


def _unsafe(info: os.stat_result, path: Path) -> str | None:
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if info.st_uid != os.geteuid():
        return f"it is owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"others can write to it (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _unsafe_parent(path: Path) -> str | None:
    """A parent others can write to without the sticky bit lets them swap our directory."""
    for parent in path.absolute().parents:
        try:
            info = parent.stat()
        except OSError:
            continue
        writable = info.st_mode & stat.S_IWOTH
        if writable and not info.st_mode & stat.S_ISVTX:
            return f"its parent {parent} is writable by others without the sticky bit"
    return None


def private_subdir(path: Path) -> Path:
    """A directory drill creates inside the state directory: 0700, never a symlink."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise InputError(f"error: {path} is not a directory (a symlink?): remove it and retry")
    problem = _unsafe(info, path)
    if problem is not None:
        raise InputError(f"error: refusing {path}: {problem}")
    return path


def file_name(name: str, suffix: str) -> str:
    """A file name for ``name``: percent-encoded (distinct names stay distinct), shortened
    with a hash when it would be too long for the file system."""
    encoded = file_component(name)
    if len(encoded) > _MAX_FILE_NAME:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        encoded = f"{encoded[: _MAX_FILE_NAME - 17]}~{digest}"
    return encoded + suffix


def checked_run_id(run_id: str) -> str:
    """A run id given on the command line: a name, never a path (InputError, exit 2)."""
    problem = run_id_problem(run_id)
    if problem is not None:
        raise InputError(f"error: {problem}")
    return run_id


def existing_run(base: Path, run_id: str) -> Path:
    """The directory of an existing run; a malformed or unknown id is InputError (exit 2)."""
    path = base / "runs" / checked_run_id(run_id)
    if not path.is_dir() or path.is_symlink():
        raise InputError(f"error: no run {run_id!r} in {base / 'runs'} (see 'drill status')")
    return path


def check_output_path(path: Path, what: str) -> None:
    """Before any device is touched: ``path`` (a report or JUnit file) can be written.

    Its directory must exist or be creatable and writable, ``path`` must not be a
    directory, a device or a pseudo-file (``/proc``, ``/sys``, ``/dev``). Nothing is left
    behind."""
    problem = _output_problem(path.absolute())
    if problem is not None:
        raise InputError(f"error: {what} {path}: {problem}; nothing was run")


def _output_problem(path: Path) -> str | None:
    resolved = Path(os.path.realpath(path))
    if any(str(resolved).startswith(p) for p in ("/proc/", "/sys/", "/dev/")):
        return "is a pseudo-file system path"
    if resolved.exists() and not resolved.is_file():
        return "exists and is not a regular file"
    directory = resolved.parent
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    if resolved.exists() and not os.access(resolved, os.W_OK):
        return "is not writable"
    return None


def make_run_id(runbook_name: str, now: datetime | None = None) -> str:
    """Sortable by time, naming the runbook.

    >>> make_run_id("dc1-to-dc2", datetime(2026, 11, 24, 16, 15, tzinfo=UTC))[:-4]
    '20261124T161500Z-dc1-to-dc2-'
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", runbook_name)
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def _write_private(path: Path, text: str) -> None:
    fd = open_private(path, os.O_WRONLY)
    os.ftruncate(fd, 0)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def open_private(path: Path, flags: int) -> int:
    """Open or create a 0600 file without following a symlink: created with ``O_EXCL``,
    an existing one must be a regular file owned by this user."""
    base = flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return os.open(path, base | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, base)
    except OSError as exc:
        raise InputError(f"error: {path}: {exc.strerror} (a symlink or a special file?)") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise InputError(f"error: {path} is not a regular file of this user: remove it")
    return fd


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run_id: str, base: Path | None = None) -> RunDir:
        state = check_private_dir(base or state_dir(), create=True)
        root = private_subdir(state / "runs")
        path = root / checked_run_id(run_id)
        path.mkdir(mode=0o700)
        return cls(path)

    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def snapshot_dir(self) -> Path:
        # Worker threads save configs concurrently: creating it twice is fine.
        return private_subdir(self.path / "snapshots")

    def save_runbook(self, text: str) -> Path:
        target = self.path / "runbook.yml"
        _write_private(target, text)
        return target

    def save_config(self, name: str, text: str) -> Path:
        """Store a running config (it may hold secrets: 0600 in a 0700 dir)."""
        target = self.snapshot_dir / file_name(name, ".cfg")
        _write_private(target, text)
        return target


def check_outputs(report_dir: Path | None, junit: Path | None) -> None:
    """``--report-dir`` and ``--junit`` can be written: checked before any device is."""
    if report_dir is not None:
        if report_dir.exists() and not report_dir.is_dir():
            raise InputError(f"error: --report-dir {report_dir}: not a directory; nothing was run")
        check_output_path(report_dir / "report.json", "--report-dir")
    if junit is not None:
        check_output_path(junit, "--junit")
