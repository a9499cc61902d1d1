"""One drill per device: live holders refuse overlapping runs (exit 5, naming run and pid),
a lock left by a dead process still refuses and says so, ``unlock`` clears it, and the
same run (resume/abort) may take it over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from drill.engine.locks import HostLocks, holders, unlock
from drill.errors import ExitCode, RefusedError


def test_overlapping_runs_are_refused(tmp_path: Path) -> None:
    with HostLocks(tmp_path, ["r1", "r2"], "run-a"):
        with pytest.raises(RefusedError) as refused:
            HostLocks(tmp_path, ["r2", "r3"], "run-b").acquire()
        assert refused.value.exit_code is ExitCode.REFUSED
        message = str(refused.value)
        assert "r2" in message and "run-a" in message and f"pid {os.getpid()}" in message
        assert "r1" not in message  # only the overlap is named
        # a disjoint set runs at the same time
        with HostLocks(tmp_path, ["r3"], "run-c"):
            pass
    # a clean release frees everything
    with HostLocks(tmp_path, ["r2", "r3"], "run-b"):
        pass
    assert holders(tmp_path) == []


def test_refused_run_takes_no_lock(tmp_path: Path) -> None:
    with HostLocks(tmp_path, ["r1"], "run-a"), pytest.raises(RefusedError):
        HostLocks(tmp_path, ["r1", "r9"], "run-b").acquire()
    with HostLocks(tmp_path, ["r9"], "run-c"):  # r9 was released with the refusal
        pass


def _die_holding(tmp_path: Path, run_id: str, hosts: list[str]) -> int:
    """A child process takes the locks and SIGKILLs itself; returns its pid."""
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from drill.engine.locks import HostLocks
        HostLocks(Path({str(tmp_path)!r}), {hosts!r}, {run_id!r}).acquire()
        print(os.getpid(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    return int(done.stdout.strip())


def test_lock_left_by_a_dead_process(tmp_path: Path) -> None:
    pid = _die_holding(tmp_path, "run-dead", ["r1", "r2"])
    found = holders(tmp_path)
    assert {(h.host, h.run_id, h.pid, h.alive) for h in found} == {
        ("r1", "run-dead", pid, False),
        ("r2", "run-dead", pid, False),
    }
    with pytest.raises(RefusedError) as refused:
        HostLocks(tmp_path, ["r2"], "run-new").acquire()
    message = str(refused.value)
    assert "run-dead" in message and f"pid {pid}" in message and "died" in message
    assert "drill unlock run-dead" in message
    # the dead run itself (resume/abort) takes its locks over
    with HostLocks(tmp_path, ["r1", "r2"], "run-dead", takeover=True):
        pass
    assert holders(tmp_path) == []


def test_unlock_clears_only_that_run(tmp_path: Path) -> None:
    _die_holding(tmp_path, "run-dead", ["r1"])
    _die_holding(tmp_path, "run-other", ["r2"])
    assert unlock(tmp_path, "run-dead") == ["r1"]
    with HostLocks(tmp_path, ["r1"], "run-new"):
        pass
    with pytest.raises(RefusedError, match="run-other"):
        HostLocks(tmp_path, ["r2"], "run-new").acquire()
    assert unlock(tmp_path, "nothing") == []


def test_unlock_refuses_a_live_run(tmp_path: Path) -> None:
    with HostLocks(tmp_path, ["r1"], "run-live"), pytest.raises(RefusedError, match="running"):
        unlock(tmp_path, "run-live")


def test_kept_locks_refuse_until_unlocked(tmp_path: Path) -> None:
    """A run that ends rollback_failed keeps its locks: devices may be left changed."""
    locks = HostLocks(tmp_path, ["r1"], "run-failed")
    locks.acquire()
    locks.release(keep=True)
    with pytest.raises(RefusedError, match="run-failed"):
        HostLocks(tmp_path, ["r1"], "run-new").acquire()
    unlock(tmp_path, "run-failed")
    HostLocks(tmp_path, ["r1"], "run-new").acquire()


def test_lock_files_are_private(tmp_path: Path) -> None:
    with HostLocks(tmp_path, ["r1"], "run-a"):
        path = tmp_path / "locks" / "r1.lock"
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct((tmp_path / "locks").stat().st_mode & 0o777) == "0o700"
        assert json.loads(path.read_text()) == {"run_id": "run-a", "pid": os.getpid()}


def test_cli_unlock(tmp_path: Path) -> None:
    _die_holding(tmp_path, "run-dead", ["r1"])
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path)}
    argv = [sys.executable, "-m", "drill", "unlock", "run-dead"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "unlocked r1" in done.stdout
    assert holders(tmp_path) == []
