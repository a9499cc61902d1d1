"""One lab node on the built-in backend: its private files, mount namespace and processes.

A node is a network namespace plus a long-lived *holder* process that owns a private mount
and UTS namespace, with the node's own directories bind-mounted onto ``/etc/frr``,
``/run/frr`` and ``/etc/shadow``. FRR daemons, ``exec:`` lines and sshd all run inside it
(``nsenter -t HOLDER -m -u -n``), so an SSH session sees a standalone FRR box.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from drill.errors import LabError
from drill.lab.plan import MGMT_IFACE, LabPlan, NodePlan
from drill.lab.sh import run

log = logging.getLogger(__name__)

LAB_USER = "root"
LAB_PASSWORD = "drill-lab"  # lab-only, documented in labs/two-dc/README.md
FRR_BIN = Path("/usr/lib/frr")
FRR_RUN = "/run/frr"  # /var/run is a symlink to /run on Debian
SSHD_CONFIG = """\
# drill lab sshd for {node}: root with the lab-only password; management address only.
Port 22
ListenAddress {address}
HostKey {dir}/ssh/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
# The host keys live under /run, and PAM would consult the host's real accounts.
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 64
MaxStartups 100:30:200
LoginGraceTime 30
Subsystem sftp internal-sftp
"""
VTYSH_CONF = "service integrated-vtysh-config\n"
NFT_MGMT = """\
table inet drill_mgmt {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{mgmt}" drop
    oifname "{mgmt}" drop
  }}
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname != {{ "{mgmt}", "lo" }} ip daddr {subnet} drop
  }}
}}
"""


class NodeRuntime:
    """Filesystem layout and process control for one node of a planned lab."""

    def __init__(self, plan: LabPlan, node: NodePlan) -> None:
        self.plan = plan
        self.node = node
        self.dir = plan.node_dir(node.name)

    # --- files -------------------------------------------------------------------------

    def prepare_files(self, shadow_hash: str) -> None:
        """Per-node /etc/frr, /run/frr, shadow, home, sshd config and host key."""
        frr_uid = pwd.getpwnam("frr").pw_uid
        frr_gid = grp.getgrnam("frr").gr_gid
        etc, rund, ssh = self.dir / "etc", self.dir / "run", self.dir / "ssh"
        for d in (etc, rund, ssh):
            d.mkdir(parents=True, exist_ok=True)
        # A home of its own: SSH sessions must not run the host's dotfiles (a host's
        # `pyenv init` in /root/.bashrc, killed mid-rehash, once locked every node's shell).
        (self.dir / "home").mkdir(mode=0o700, exist_ok=True)
        for filename, text in self.node.etc_texts:
            (etc / filename).write_text(text)
        for bind in self.node.etc_files:
            dest = etc / bind.target.removeprefix("/etc/frr/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bind.source, dest)
        if self.node.runs_frr and not (etc / "vtysh.conf").exists():
            (etc / "vtysh.conf").write_text(VTYSH_CONF)
        for path in (etc, rund, *etc.rglob("*")):
            os.chown(path, frr_uid, frr_gid)
        etc.chmod(0o755)
        rund.chmod(0o755)
        self._write_shadow(shadow_hash)
        if self.node.mgmt is not None:
            (ssh / "sshd_config").write_text(
                SSHD_CONFIG.format(node=self.node.name, address=self.node.mgmt.ip, dir=self.dir)
            )
            key = ssh / "ssh_host_ed25519_key"
            run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    self.node.name,
                    "-f",
                    str(key),
                ]
            )

    def _write_shadow(self, shadow_hash: str) -> None:
        """A copy of /etc/shadow where only root's hash differs: the host's stays untouched."""
        lines = []
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == LAB_USER:
                fields[1] = shadow_hash
            lines.append(":".join(fields))
        shadow = self.dir / "shadow"
        shadow.write_text("\n".join(lines) + "\n")
        shadow.chmod(0o640)
        os.chown(shadow, 0, grp.getgrnam("shadow").gr_gid)

    def host_key_line(self) -> str:
        """``ADDRESS ssh-ed25519 KEY`` for known_hosts."""
        pub = (self.dir / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
        return f"{self.node.mgmt.ip if self.node.mgmt else ''} {pub[0]} {pub[1]}"

    # --- the holder ----------------------------------------------------------------------

    def start_holder(self) -> int:
        """Start the process that owns the node's mount/UTS namespaces; return its pid."""
        ready = self.dir / "ready"
        ready.unlink(missing_ok=True)
        mounts = [
            f"mount --bind {self.dir / 'etc'} /etc/frr",
            f"mount --bind {self.dir / 'run'} {FRR_RUN}",
            f"mount --bind {self.dir / 'shadow'} /etc/shadow",
            f"mount --bind {self.dir / 'home'} {shlex.quote(pwd.getpwnam(LAB_USER).pw_dir)}",
        ]
        for bind in self.node.mounts:
            mounts.append(
                f"mount --bind {shlex.quote(str(bind.source))} {shlex.quote(bind.target)}"
            )
            mounts.append(f"mount -o remount,bind,ro {shlex.quote(bind.target)}")
        script = " && ".join(
            [
                "set -e",
                *mounts,
                f"hostname {shlex.quote(self.node.name)}",
                f"touch {ready}",
                "exec sleep infinity",
            ]
        )
        argv = [
            "ip",
            "netns",
            "exec",
            self.node.netns,
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
        ]
        with open(self.dir / "holder.log", "w") as out:
            # start_new_session: the holder must outlive the `drill lab up` process.
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        deadline = time.monotonic() + 10
        while not ready.exists():
            if proc.poll() is not None:
                detail = (self.dir / "holder.log").read_text().strip() or f"exit {proc.returncode}"
                raise LabError(f"node {self.node.name}: namespace holder failed: {detail}")
            if time.monotonic() > deadline:
                raise LabError(f"node {self.node.name}: namespace holder not ready after 10 s")
            time.sleep(0.01)
        (self.dir / "holder.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def holder_pid(self) -> int | None:
        """The recorded holder pid, if that process still lives in the node's netns."""
        try:
            pid = int((self.dir / "holder.pid").read_text())
            if (
                os.stat(f"/proc/{pid}/ns/net").st_ino
                != os.stat(f"/run/netns/{self.node.netns}").st_ino
            ):
                return None
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def enter_argv(self, argv: Sequence[str], pid: int | None = None) -> list[str]:
        """``argv`` wrapped to run in the node's network, mount and UTS namespaces."""
        if self.node.is_bridge:
            return ["ip", "netns", "exec", self.node.netns, *argv]
        pid = pid or self.holder_pid()
        if pid is None:
            raise LabError(f"node {self.node.name} is not running (no namespace holder)")
        return ["nsenter", "-t", str(pid), "-m", "-u", "-n", "--", *argv]

    # --- inside the node ---------------------------------------------------------------------

    def isolate_mgmt(self) -> None:
        if self.node.mgmt is None:
            return
        rules = NFT_MGMT.format(mgmt=MGMT_IFACE, subnet=self.node.mgmt.network)
        run(["ip", "netns", "exec", self.node.netns, "nft", "-f", "-"], input_text=rules)

    def start_frr(self, pid: int) -> None:
        """zebra first (the others register with it), then the rest, then the config."""
        if not self.node.runs_frr:
            return
        rund = self.dir / "run"
        zebra, *others = self.node.daemons
        self._start_daemon(pid, zebra.name, zebra.options)
        self._wait_paths([rund / "zserv.api", rund / "zebra.vty"])
        for daemon in others:
            self._start_daemon(pid, daemon.name, daemon.options)
        self._wait_paths([rund / f"{d.name}.vty" for d in others])
        proc = run(self.enter_argv(["vtysh", "-b"], pid), check=False, timeout=30)
        errors = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if "%" in ln]
        if proc.returncode != 0 or errors:
            detail = errors[0] if errors else (proc.stderr or proc.stdout).strip()
            raise LabError(f"node {self.node.name}: frr.conf not applied: {detail}")

    def _start_daemon(self, pid: int, name: str, options: Sequence[str]) -> None:
        run(self.enter_argv([str(FRR_BIN / name), "-d", *options], pid), timeout=15)

    def _wait_paths(self, paths: list[Path], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while missing := [p for p in paths if not p.exists()]:
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in missing)
                raise LabError(
                    f"node {self.node.name}: FRR did not create {names} in {timeout:g} s"
                )
            time.sleep(0.01)

    def run_exec_lines(self, pid: int) -> None:
        """The topology's ``exec:`` lines, in order, as containerlab runs them after start."""
        with open(self.dir / "exec.log", "a") as out:
            env = [f"{k}={v}" for k, v in self.node.env]
            for line in self.node.startup_commands:
                out.write(f"$ {line}\n")
                out.flush()
                argv = self.enter_argv(["env", *env, *shlex.split(line)], pid)
                try:
                    proc = subprocess.run(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=15,
                        check=False,
                    )
                except subprocess.TimeoutExpired as exc:
                    raise LabError(f"node {self.node.name}: exec `{line}` timed out") from exc
                if proc.returncode != 0:
                    raise LabError(
                        f"node {self.node.name}: exec `{line}` exited {proc.returncode}"
                        f" (see {self.dir / 'exec.log'})"
                    )

    def start_sshd(self, pid: int) -> None:
        if self.node.mgmt is None:
            return
        run(self.enter_argv(["/usr/sbin/sshd", "-f", str(self.dir / "ssh" / "sshd_config")], pid))

    def sshd_ready(self) -> bool:
        if self.node.mgmt is None:
            return True
        try:
            with socket.create_connection((str(self.node.mgmt.ip), 22), timeout=0.5) as sock:
                return sock.recv(4).startswith(b"SSH")
        except OSError:
            return False
