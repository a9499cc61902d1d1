"""One run per device at a time: a ``flock`` per host under ``STATE_DIR/locks``.

The kernel drops a flock when its holder dies, so a crashed run never leaves a stale lock;
the file's content only names the run for the message.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path
from types import TracebackType

from drill.errors import RefusedError

log = logging.getLogger(__name__)


class HostLocks:
    def __init__(self, base: Path, hosts: list[str], run_id: str) -> None:
        self.dir = base / "locks"
        self.hosts = sorted(set(hosts))
        self.run_id = run_id
        self._fds: list[int] = []

    def acquire(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        busy: list[str] = []
        for host in self.hosts:
            path = self.dir / (re.sub(r"[^A-Za-z0-9._-]", "_", host) + ".lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another run"
                os.close(fd)
                busy.append(f"{host} (held by {holder})")
                continue
            os.ftruncate(fd, 0)
            os.write(fd, self.run_id.encode())
            self._fds.append(fd)
        if busy:
            self.release()
            raise RefusedError(f"devices are in use by another drill: {', '.join(busy)}")

    def release(self) -> None:
        for fd in self._fds:
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
        self.release()
