"""Atomic file output: a reader (CI, a change board's tooling) sees the old file or the new
one, never half of one, even if drill is killed mid-write."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def resolve_target(path: Path, default_name: str) -> Path:
    """``path`` itself when it names a file with the expected suffix, else ``path/default_name``.

    >>> resolve_target(Path("runs/r1"), "report.json").as_posix()
    'runs/r1/report.json'
    >>> resolve_target(Path("out/drill.json"), "report.json").as_posix()
    'out/drill.json'
    """
    if path.suffix == Path(default_name).suffix and not path.is_dir():
        return path
    return path / default_name


def write_atomic(target: Path, data: str) -> Path:
    """Write ``data`` to ``target`` via a temp file in the same directory, fsync, rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes it 0600; reports are masked and meant to be shared.
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    log.debug("wrote %s (%d bytes)", target, len(data))
    return target


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
