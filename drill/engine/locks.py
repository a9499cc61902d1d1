"""One run per device at a time: a lock file per host under ``STATE_DIR/locks``.

Two layers, because a crashed drill must keep holding its devices:

* a ``flock`` on the file while the run's process lives (the kernel drops it when the
  process dies, so "held" always means "held by a live process");
* the file's content, a JSON line naming the run and its pid, written on acquire and
  emptied on a clean release. A file that still names a run but is not flocked was left by
  a process that died mid-drill: its devices may be half changed, so the lock still refuses
  other runs until that run is resumed, aborted, or explicitly unlocked (``drill unlock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from drill.errors import RefusedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who a lock file names; ``alive`` is False for a lock left by a dead process."""

    host: str
    run_id: str
    pid: int | None
    alive: bool

    def describe(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "unknown pid"
        if self.alive:
            return f"{self.host} (held by run {self.run_id}, {pid}, running)"
        return (
            f"{self.host} (held by run {self.run_id}, {pid}, which died: "
            f"'drill resume {self.run_id}', 'drill abort {self.run_id}' "
            f"or 'drill unlock {self.run_id}')"
        )


def lock_dir(base: Path) -> Path:
    return base / "locks"


def _path(directory: Path, host: str) -> Path:
    return directory / (re.sub(r"[^A-Za-z0-9._-]", "_", host) + ".lock")


def _parse(text: str) -> tuple[str, int | None]:
    """(run_id, pid) from a lock file; an old plain-text file holds just the run id.

    >>> _parse('{"run_id": "r1", "pid": 42}')
    ('r1', 42)
    >>> _parse("r2")
    ('r2', None)
    """
    text = text.strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text, None
    if not isinstance(data, dict):
        return text, None
    pid = data.get("pid")
    return str(data.get("run_id", "")), pid if isinstance(pid, int) else None


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode(errors="replace")


class HostLocks:
    """``takeover``: this run (``drill resume``/``abort``) may take over locks its own dead
    process left behind."""

    def __init__(self, base: Path, hosts: list[str], run_id: str, takeover: bool = False) -> None:
        self.dir = lock_dir(base)
        self.hosts = sorted(set(hosts))
        self.run_id = run_id
        self.takeover = takeover
        self._fds: list[int] = []

    def acquire(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        busy: list[Holder] = []
        for host in self.hosts:
            fd = os.open(_path(self.dir, host), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                run_id, pid = _parse(_read(fd))
                os.close(fd)
                busy.append(Holder(host, run_id or "another run", pid, alive=True))
                continue
            run_id, pid = _parse(_read(fd))
            if run_id and not (self.takeover and run_id == self.run_id):
                os.close(fd)
                busy.append(Holder(host, run_id, pid, alive=False))
                continue
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps({"run_id": self.run_id, "pid": os.getpid()}).encode())
            os.fsync(fd)
            self._fds.append(fd)
        if busy:
            self.release()
            dead = [b for b in busy if not b.alive]
            if dead:
                log.warning("locks left by a dead drill: %s", ", ".join(b.host for b in dead))
            raise RefusedError(
                "devices are in use by another drill: " + "; ".join(b.describe() for b in busy)
            )

    def release(self, keep: bool = False) -> None:
        """``keep``: leave the files naming this run (devices left changed on purpose)."""
        for fd in self._fds:
            if not keep:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> HostLocks:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An exception escaping the run (a bug, not an outcome) may leave devices changed:
        # keep the files so the next run is refused until someone looks.
        self.release(keep=exc_type is not None and not issubclass(exc_type, RefusedError))


def holders(base: Path) -> list[Holder]:
    """Every lock file that names a run, and whether its process still holds it."""
    directory = lock_dir(base)
    found: list[Holder] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.lock")):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            run_id, pid = _parse(_read(fd))
            if not run_id:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alive = True
            else:
                alive = False
            found.append(Holder(path.stem, run_id, pid, alive))
        finally:
            os.close(fd)  # also drops the probe's flock
    return found


def unlock(base: Path, run_id: str) -> list[str]:
    """Clear the locks a dead run left; returns the hosts freed. A live run is refused."""
    freed: list[str] = []
    directory = lock_dir(base)
    if not directory.is_dir():
        return freed
    for path in sorted(directory.glob("*.lock")):
        fd = os.open(path, os.O_RDWR)
        try:
            owner, pid = _parse(_read(fd))
            if owner != run_id:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RefusedError(
                    f"run {run_id} is still running (pid {pid}) and holds {path.stem}; "
                    "stop it (Ctrl-C rolls back) instead of unlocking"
                ) from None
            os.ftruncate(fd, 0)
            freed.append(path.stem)
        finally:
            os.close(fd)
    log.info("unlocked %s for run %s", freed, run_id)
    return freed
