"""Device-side commit state: snapshots, the pending-commit marker and the revert timer.

FRR 8.4 has no commit-confirm, so the driver emulates it *on the device*: a detached
process (setsid + nohup, so it survives the SSH session and the controller) sleeps, then
restores the pre-commit snapshot with frr-reload unless the commit was confirmed.

Whoever first renames the marker owns the outcome: the timer renames ``pending`` to
``pending.firing`` before restoring, ``confirm_commit`` renames it to ``pending.confirmed``.
A rename is atomic, so a confirm racing the timer either wins or fails loudly.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass

log = logging.getLogger(__name__)

FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
DEFAULT_STATE_DIR = "/var/run/frr/drill"


@dataclass(frozen=True)
class DevicePaths:
    """Where the driver keeps its files on the device (per node: /var/run/frr is per node)."""

    state_dir: str = DEFAULT_STATE_DIR

    def _path(self, name: str) -> str:
        return f"{self.state_dir}/{name}"

    @property
    def candidate(self) -> str:
        return self._path("candidate.conf")

    @property
    def target(self) -> str:
        """Full configuration a merge aims at (running + merge), for the diff only."""
        return self._path("merge-target.conf")

    @property
    def snapshot(self) -> str:
        """Running configuration taken just before the commit in progress."""
        return self._path("pre-commit.conf")

    @property
    def rollback(self) -> str:
        """Running configuration from before the last successful commit."""
        return self._path("rollback.conf")

    @property
    def pending_config(self) -> str:
        """What the revert timer restores."""
        return self._path("pending.conf")

    @property
    def marker(self) -> str:
        """Exists while a commit awaits confirmation; holds the timer pid and its deadline."""
        return self._path("pending")

    @property
    def script(self) -> str:
        return self._path("revert.sh")

    @property
    def log(self) -> str:
        return self._path("revert.log")


def revert_script(paths: DevicePaths) -> str:
    """The timer, as a POSIX sh script taking the delay in seconds as $1."""
    q = shlex.quote
    return f"""#!/bin/sh
# drill revert timer: restore {paths.pending_config} after $1 s unless confirmed.
sleep "$1"
# act only on our own marker: a timer from an older commit must never revert a newer one
read owner deadline < {q(paths.marker)} 2>/dev/null || exit 0
[ "$owner" = "$$" ] || exit 0
mv {q(paths.marker)} {q(paths.marker)}.firing 2>/dev/null || exit 0
echo "$(date -u +%FT%TZ) revert timer fired" >> {q(paths.log)}
# frr-reload can need a second pass when deletions depend on each other
for pass in 1 2; do
  {FRR_RELOAD} --reload {q(paths.pending_config)} >> {q(paths.log)} 2>&1
done
rm -f {q(paths.marker)}.firing {q(paths.pending_config)}
echo "$(date -u +%FT%TZ) revert done" >> {q(paths.log)}
"""


def arm_command(paths: DevicePaths, seconds: int) -> str:
    """Shell command that starts the detached timer and records it in the marker.

    The subshell exits at once, so the timer is re-parented away from the driver's shell
    (which never waits for it) and its pid leads a new session (setsid): killing the
    negative pid stops its sleep too.
    """
    q = shlex.quote
    return (
        f"cp {q(paths.snapshot)} {q(paths.pending_config)} && "
        f"( setsid nohup /bin/sh {q(paths.script)} {int(seconds)} </dev/null >/dev/null 2>&1 & "
        f'echo "$! $(( $(date +%s) + {int(seconds)} ))" > {q(paths.marker)} )'
    )


# "alive" = exists and is not a zombie (pid 1 in a lab may never reap it)
_ALIVE = 'st=$(cut -d" " -f3 /proc/$pid/stat 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]'


def pending_check_command(paths: DevicePaths) -> str:
    """Prints "pending", "firing" or "none"; a marker whose timer died is reported "stale"."""
    q = shlex.quote
    return (
        f"if [ -f {q(paths.marker)} ]; then "
        f"read pid deadline < {q(paths.marker)}; "
        f"if {_ALIVE}; then echo pending; else echo stale; fi; "
        f"elif [ -f {q(paths.marker)}.firing ]; then echo firing; else echo none; fi"
    )


def disarm_command(paths: DevicePaths) -> str:
    """Take ownership of the marker and stop the timer; prints "disarmed" or "none".

    The commands run in the driver's persistent shell, so they must not `exit`.
    """
    q = shlex.quote
    taken = f"{q(paths.marker)}.confirmed"
    return (
        f"if mv {q(paths.marker)} {taken} 2>/dev/null; then "
        f"read pid deadline < {taken}; "
        # the timer leads its own process group (setsid): stop its sleep too
        'kill -TERM -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; '
        f"rm -f {taken} {q(paths.pending_config)}; echo disarmed; "
        "else echo none; fi"
    )
