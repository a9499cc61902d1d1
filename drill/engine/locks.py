"""One run per device at a time: a lock file per host under ``STATE_DIR/locks``.

Two layers, because a crashed drill must keep holding its devices:

* a ``flock`` on the file while the run's process lives (the kernel drops it when the
  process dies, so "held" always means "held by a live process");
* the file's content, a JSON line naming the run and its pid, written on acquire and
  emptied on a clean release. A file that still names a run but is not flocked was left by
  a process that died mid-drill: its devices may be half changed, so the lock still refuses
  other runs until that run is resumed, aborted, or explicitly unlocked (``drill unlock``).

Lock files are named by the percent-encoded host name (``r 1`` and ``r_1`` never share a
file), created with ``O_EXCL`` and opened with ``O_NOFOLLOW``. A lock file that cannot be
read or parsed refuses the run (exit 5): it may name a run that still holds the device.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from drill.engine.rundir import check_private_dir, file_name, open_private, private_subdir
from drill.errors import InputError, RefusedError
from drill.names import printable, run_id_problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who a lock file names; ``alive`` is False for a lock left by a dead process."""

    host: str
    run_id: str
    pid: int | None
    alive: bool
    problem: str | None = None  # the lock file could not be read or parsed

    def describe(self) -> str:
        if self.problem is not None:
            return f"{self.host} ({self.problem})"
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
    return directory / file_name(host, ".lock")


class LockFileError(RefusedError):
    """A lock file drill cannot read or parse: the device may be held (exit 5)."""


_CHECK = (
    "check which drill run holds this device ('drill status'), then remove the file by hand "
    "if none does"
)


def _parse(text: str) -> tuple[str, int | None]:
    """(run_id, pid) from a lock file; an old plain-text file holds just the run id; an
    empty file is a free lock. Anything else raises ValueError.

    >>> _parse('{"run_id": "r1", "pid": 42}')
    ('r1', 42)
    >>> _parse("r2")
    ('r2', None)
    >>> _parse("")
    ('', None)
    """
    text = text.strip()
    if not text:
        return "", None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        if run_id_problem(text) is None:
            return text, None
        raise ValueError("neither JSON nor a run id") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    run_id, pid = data.get("run_id"), data.get("pid")
    if not isinstance(run_id, str) or run_id_problem(run_id) is not None:
        raise ValueError("no valid 'run_id'")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        raise ValueError("'pid' is not an integer")
    return run_id, pid


def _read(fd: int, path: Path) -> tuple[str, int | None]:
    """Parse the lock file open at fd; LockFileError (exit 5) when it is unreadable."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4097)
        if len(raw) > 4096:
            raise ValueError("larger than 4096 bytes")
        return _parse(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        message = f"lock file {path} cannot be read or parsed ({reason}): {_CHECK}"
        raise LockFileError(message) from None


def _open(path: Path, *, create: bool) -> int:
    """A lock file, never through a symlink; InputError/LockFileError when it is wrong."""
    try:
        if create:
            return open_private(path, os.O_RDWR)
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except InputError as exc:
        raise LockFileError(f"{exc}; {_CHECK}") from None
    except OSError as exc:
        message = f"lock file {path} cannot be opened ({exc.strerror}): {_CHECK}"
        raise LockFileError(message) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockFileError(f"lock file {path} is not a regular file: {_CHECK}")
    return fd


def _host_of(path: Path) -> str:
    return unquote(path.name[: -len(".lock")])


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
        check_private_dir(self.dir.parent, create=True)
        private_subdir(self.dir)
        busy: list[Holder] = []
        try:
            for host in self.hosts:
                self._take(host, busy)
        except BaseException:
            self.release()
            raise
        if busy:
            self.release()
            dead = [b for b in busy if not b.alive]
            if dead:
                log.warning("locks left by a dead drill: %s", ", ".join(b.host for b in dead))
            raise RefusedError(
                "devices are in use by another drill: " + "; ".join(b.describe() for b in busy)
            )

    def _take(self, host: str, busy: list[Holder]) -> None:
        path = _path(self.dir, host)
        fd = _open(path, create=True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                run_id, pid = _read(fd, path)
            finally:
                os.close(fd)
            busy.append(Holder(host, run_id or "another run", pid, alive=True))
            return
        try:
            run_id, pid = _read(fd, path)
        except LockFileError:
            os.close(fd)
            raise
        if run_id and not (self.takeover and run_id == self.run_id):
            os.close(fd)
            busy.append(Holder(host, run_id, pid, alive=False))
            return
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"run_id": self.run_id, "pid": os.getpid()}).encode())
        os.fsync(fd)
        self._fds.append(fd)

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
    """Every lock file that names a run, and whether its process still holds it. A lock
    file that cannot be read is listed with its problem (``drill status`` never fails)."""
    directory = lock_dir(base)
    found: list[Holder] = []
    if not directory.is_dir() or directory.is_symlink():
        return found
    for path in sorted(directory.glob("*.lock")):
        host = _host_of(path)
        try:
            fd = _open(path, create=False)
        except LockFileError as exc:
            found.append(Holder(host, "?", None, alive=False, problem=str(exc)))
            continue
        try:
            run_id, pid = _read(fd, path)
            if not run_id:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alive = True
            else:
                alive = False
            found.append(Holder(host, run_id, pid, alive))
        except LockFileError as exc:
            found.append(Holder(host, "?", None, alive=False, problem=str(exc)))
        finally:
            os.close(fd)  # also drops the probe's flock
    return found


def unlock(base: Path, run_id: str) -> list[str]:
    """Clear the locks a dead run left; returns the hosts freed. A live run is refused; a
    malformed run id (``''`` included) is InputError: it must never match every lock."""
    problem = run_id_problem(run_id)
    if problem is not None:
        raise InputError(f"error: {problem}")
    freed: list[str] = []
    directory = lock_dir(base)
    if not directory.is_dir() or directory.is_symlink():
        return freed
    for path in sorted(directory.glob("*.lock")):
        fd = _open(path, create=False)
        try:
            owner, pid = _read(fd, path)
            if owner != run_id:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RefusedError(
                    f"run {run_id} is still running (pid {pid}) and holds "
                    f"{printable(_host_of(path))}; stop it (Ctrl-C rolls back) instead of "
                    "unlocking"
                ) from None
            os.ftruncate(fd, 0)
            freed.append(_host_of(path))
        finally:
            os.close(fd)
    log.info("unlocked %s for run %s", freed, run_id)
    return freed
