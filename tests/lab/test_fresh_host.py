"""The lab on a host that never ran sshd or FRR as services, and a ``down`` that waits.

A tiny lab of its own (name ``fresh8``, management 198.19.8.0/24) so it never touches
labs/two-dc. Run serialized with the other lab users:
``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_fresh_host.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.errors import LabError
from drill.lab.lab import Lab

pytestmark = pytest.mark.lab

NAME = "fresh8"
MGMT_IP = "198.19.8.11"
DRILL = str(Path(sys.executable).parent / "drill")
DATA = Path(__file__).parent / "data" / NAME


def write_lab(root: Path) -> Path:
    """A private copy of the one-node lab in tests/lab/data/fresh8."""
    shutil.copytree(DATA, root)
    return root


def gone(pid: int) -> bool:
    """No such process, or only a zombie whose every thread has exited (nothing runs)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X") and threads == [str(pid)]


def netns_pids(netns: str) -> set[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def kill_leftovers() -> None:
    """Only if a test died half-way: end what runs in this lab's namespaces, drop the bridge."""
    holders = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and f"/run/drill/lab/{NAME}/".encode() in (entry / "cmdline").read_bytes()
            ):
                holders.append(int(entry.name))
        except OSError:
            continue
    inodes = set()
    for pid in holders:
        try:
            inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
        except OSError:
            continue
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.stat(entry / "ns" / "net").st_ino in inodes:
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue
    subprocess.run(["ip", "link", "delete", f"{NAME}-mgmt"], capture_output=True)


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Path]:
    root = write_lab(tmp_path / NAME)
    yield root
    kill_leftovers()


def test_lab_up_creates_the_runtime_dirs_sshd_and_frr_need(fresh_lab: Path) -> None:
    """`lab up` in a mount namespace whose /run is empty: no /run/sshd, /run/frr, /run/netns.

    That is a machine where sshd and FRR were installed but never started as services
    (systemd makes /run/sshd when ssh.service starts). Before the fix `up` died with
    sshd's "Missing privilege separation directory: /run/sshd".
    """
    script = f"""
set -eu
mount -t tmpfs -o mode=0755 drill-fresh-run /run
for d in sshd frr netns drill; do test ! -e /run/$d; done
trap '{DRILL} lab down {fresh_lab} >/dev/null 2>&1 || true' EXIT
{DRILL} lab up {fresh_lab}
{DRILL} lab up {fresh_lab}
stat -c 'dir %n %U %G %a' /run/sshd /run/frr
{sys.executable} -c "import socket; s = socket.create_connection(('{MGMT_IP}', 22), 5); \\
print('banner', s.recv(7).decode())"
{DRILL} lab exec {fresh_lab} r1 -- vtysh -c 'show ip route 192.0.2.0/24'
"""
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "dir /run/sshd root root 755" in lines
    assert "dir /run/frr frr frr 755" in lines
    assert "banner SSH-2.0" in lines
    assert "192.0.2.0/24" in proc.stdout and "blackhole" in proc.stdout
    assert f"lab {NAME} is up and converged" in proc.stdout
    assert f"lab {NAME} is already up" in proc.stdout  # idempotent on the second call


def test_down_returns_only_when_every_process_is_gone(fresh_lab: Path) -> None:
    lab = Lab(fresh_lab)
    lab.up()
    pids = netns_pids(lab.plan.node("r1").netns)
    names = {_comm(p) for p in pids}
    assert {"zebra", "staticd", "sshd", "sleep", "python3"} <= names
    lab.down()
    assert [p for p in pids if not gone(p)] == []
    assert not Path(f"/run/netns/{lab.plan.node('r1').netns}").exists()


def test_failed_up_returns_only_when_every_process_is_gone(fresh_lab: Path) -> None:
    """A failing `exec:` line after the daemons started: the failed `up` must end them all."""
    topology = fresh_lab / f"{NAME}.clab.yml"
    fail_once_ready = "until [ -e /run/frr/linger.ready ]; do sleep 0.05; done; exit 3"
    topology.write_text(topology.read_text() + f'        - sh -c "{fail_once_ready}"\n')
    lab = Lab(fresh_lab)
    netns = lab.plan.node("r1").netns
    seen: dict[int, str] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid in netns_pids(netns) - seen.keys():
                seen[pid] = _comm(pid)
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(LabError, match="exited 3"):
            lab.up(timeout=20)
    finally:
        stop.set()
        watcher.join()
    # the watcher saw what the failed up had started
    assert {"zebra", "python3"} <= set(seen.values())
    assert [p for p in seen if not gone(p)] == []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
