"""What the host must provide before lab processes start, made by ``lab up`` itself.

A package that ships a service leaves parts of its runtime to the service manager: Debian's
ssh.service creates ``/run/sshd`` (``RuntimeDirectory=sshd``) when it starts, and FRR's
``/run/frr`` comes from systemd-tmpfiles. On a fresh machine, a container or a CI runner
where the service never ran, they do not exist, and sshd refuses to start without its
privilege-separation directory. So ``up`` creates them, idempotently.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from drill.errors import LabError

log = logging.getLogger(__name__)

# Root's usual PATH on Debian: `sudo` and login shells have it, cron, `su` without `-`
# and some CI runners do not, and the lab runs sbin tools (ip, nft, sysctl) by name.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


@dataclass(frozen=True)
class RuntimeDir:
    path: Path
    mode: int
    owner: str
    group: str
    why: str


HOST_RUNTIME_DIRS: tuple[RuntimeDir, ...] = (
    # sshd chroots its unprivileged child here; it must be root's and not writable by others.
    RuntimeDir(Path("/run/sshd"), 0o755, "root", "root", "sshd privilege separation"),
    # Each node bind-mounts its own directory onto these: the mount points must exist.
    RuntimeDir(Path("/run/frr"), 0o755, "frr", "frr", "FRR runtime (mount point)"),
    RuntimeDir(Path("/etc/frr"), 0o750, "frr", "frr", "FRR config (mount point)"),
)


def ensure_runtime_dirs(dirs: Sequence[RuntimeDir] = HOST_RUNTIME_DIRS) -> list[Path]:
    """Create each missing directory with its mode and owner; return those created.

    Directories that exist are left as they are: they belong to the host's services.
    """
    created: list[Path] = []
    for want in dirs:
        if want.path.is_dir():
            continue
        try:
            uid = pwd.getpwnam(want.owner).pw_uid
            gid = grp.getgrnam(want.group).gr_gid
        except KeyError as exc:
            raise LabError(
                f"cannot create {want.path} ({want.why}): no user or group {exc.args[0]!r}"
                " (is the package that owns it installed? `make setup` installs it)"
            ) from None
        want.path.mkdir(parents=True, exist_ok=True)
        os.chown(want.path, uid, gid)
        want.path.chmod(want.mode)
        log.info("created %s (%s)", want.path, want.why)
        created.append(want.path)
    return created


def with_sbin_path(path: str) -> str:
    """``path`` with the sbin directories appended where missing.

    >>> with_sbin_path("/usr/bin:/bin")
    '/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin'
    >>> with_sbin_path("/usr/sbin:/usr/bin:/sbin:/usr/local/sbin")
    '/usr/sbin:/usr/bin:/sbin:/usr/local/sbin'
    """
    parts = [p for p in path.split(":") if p]
    return ":".join(parts + [d for d in SBIN_DIRS if d not in parts])


def ensure_sbin_on_path() -> None:
    """Put the sbin directories on this process's PATH (inherited by every lab process)."""
    os.environ["PATH"] = with_sbin_path(os.environ.get("PATH", ""))
