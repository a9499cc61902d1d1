"""One SSH connection per device with two long-lived channels.

* :class:`VtyshSession`: an interactive ``vtysh`` on a pty, read until the prompt; a show
  command costs one round trip instead of a vtysh process (~31 ms) or an exec channel (~126 ms).
* :class:`ShellSession`: a ``/bin/sh`` without pty for Linux commands; each command ends with a
  unique marker line carrying its exit status.

Every read has a deadline; a session that missed one is closed (its state is unknown) and
reopened on next use.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import paramiko

log = logging.getLogger(__name__)

_READ_CHUNK = 65536
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Any vtysh prompt: "r1# ", "r1(config)# ", "r1(config-router)# ", or ">" when not enabled.
_ANY_PROMPT = re.compile(r"(?:^|\n)(?P<host>[\w.\-]+)(?:\([\w\-]+\))?[#>] $")


class TransportError(Exception):
    """The SSH connection or a session failed; the message says what and where."""


class CommandTimeout(TransportError):
    """A command did not finish before its deadline."""


class HostKeyPolicy(StrEnum):
    """How the device's host key is checked (optional_args ``host_key_policy``)."""

    STRICT = "strict"  # key must be in known_hosts already
    ACCEPT_NEW = "accept-new"  # unknown hosts are added to known_hosts; changed keys rejected
    IGNORE = "ignore"  # no check at all (explicit opt-out)


@dataclass(frozen=True)
class ConnectionSettings:
    host: str
    username: str
    password: str = field(repr=False)
    port: int = 22
    known_hosts_file: Path = Path("~/.ssh/known_hosts")
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    timeout: float = 10.0
    command_timeout: float = 30.0


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Like OpenSSH's StrictHostKeyChecking=accept-new: learn unknown hosts, persist them."""

    def __init__(self, known_hosts: Path) -> None:
        self._known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self._known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with self._known_hosts.open("a", encoding="ascii") as stream:
            stream.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        log.warning("accepted new host key %s for %s", key.get_fingerprint().hex(), hostname)


class _IgnorePolicy(paramiko.MissingHostKeyPolicy):
    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        log.debug("host key of %s not checked (host_key_policy=ignore)", hostname)


def open_client(settings: ConnectionSettings) -> paramiko.SSHClient:
    """Connect and authenticate, checking the host key as the policy says."""
    client = paramiko.SSHClient()
    known_hosts = settings.known_hosts_file.expanduser()
    if settings.host_key_policy is HostKeyPolicy.IGNORE:
        client.set_missing_host_key_policy(_IgnorePolicy())
    else:
        if known_hosts.exists():
            client.load_host_keys(str(known_hosts))
        if settings.host_key_policy is HostKeyPolicy.ACCEPT_NEW:
            client.set_missing_host_key_policy(_AcceptNewPolicy(known_hosts))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password or None,
            timeout=settings.timeout,
            banner_timeout=settings.timeout,
            auth_timeout=settings.timeout,
            look_for_keys=not settings.password,
            allow_agent=not settings.password,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise TransportError(
            f"{settings.host}: host key does not match {known_hosts}: {exc}"
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        hint = f" (policy {settings.host_key_policy}, known_hosts {known_hosts})"
        raise TransportError(f"{settings.host}:{settings.port}: {exc}{hint}") from None
    except OSError as exc:
        client.close()
        raise TransportError(f"{settings.host}:{settings.port}: {exc}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(15)
    return client


class _Channel:
    """A channel plus a receive buffer, read with deadlines."""

    def __init__(self, channel: paramiko.Channel, name: str) -> None:
        self.channel = channel
        self.name = name
        self.buffer = ""

    def read_until(self, pattern: re.Pattern[str], deadline: float) -> re.Match[str]:
        """Read until ``pattern`` matches the buffer; consume the buffer up to the match end."""
        while True:
            match = pattern.search(self.buffer)
            if match is not None:
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandTimeout(f"{self.name}: no answer before the deadline")
            self.channel.settimeout(remaining)
            try:
                chunk = self.channel.recv(_READ_CHUNK)
            except TimeoutError:
                raise CommandTimeout(f"{self.name}: no answer before the deadline") from None
            if not chunk:
                raise TransportError(f"{self.name}: channel closed by the device")
            self.buffer += _ANSI.sub("", chunk.decode("utf-8", "replace")).replace("\r", "")

    def send(self, text: str) -> None:
        self.channel.sendall(text.encode())

    def close(self) -> None:
        self.channel.close()


class VtyshSession:
    """An interactive vtysh on a pty; commands are single lines, answers end at the prompt."""

    @classmethod
    def open(cls, client: paramiko.SSHClient, timeout: float) -> VtyshSession:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError("vtysh: SSH transport is not active")
        channel = transport.open_session(timeout=timeout)
        # A dumb, very wide terminal: no colour codes, no line wrapping, no pager.
        channel.get_pty(term="dumb", width=32767, height=0)
        channel.exec_command("vtysh")
        return cls(channel, timeout)

    def __init__(self, channel: paramiko.Channel, timeout: float) -> None:
        self._chan = _Channel(channel, "vtysh")
        deadline = time.monotonic() + timeout
        match = self._chan.read_until(_ANY_PROMPT, deadline)
        self.hostname = match.group("host")
        self._prompt = re.compile(
            rf"(?:^|\n){re.escape(self.hostname)}(?P<mode>\([\w\-]+\))?[#>] $"
        )
        self._chan.buffer = ""
        self.run("terminal length 0", timeout)

    def run(self, command: str, timeout: float) -> str:
        """Run one vtysh command; return its output without echo and prompt."""
        if "\n" in command or "?" in command or "\t" in command:
            # readline would treat these as line ends, help and completion requests
            raise ValueError(f"not a single plain vtysh line: {command!r}")
        self._chan.send(command + "\n")
        match = self._chan.read_until(self._prompt, time.monotonic() + timeout)
        text = self._chan.buffer[: match.start()]
        self._chan.buffer = ""
        if match.group("mode"):
            # the command entered a config mode; leave it so the session stays read-only
            self._chan.send("end\n")
            self._chan.read_until(self._prompt, time.monotonic() + timeout)
            self._chan.buffer = ""
        # the pty echoes the command line first
        first, _, rest = text.partition("\n")
        return rest if first.strip() == command.strip() else text

    def close(self) -> None:
        self._chan.close()


class ShellSession:
    """A persistent /bin/sh; each command's end is a unique marker with its exit status."""

    @classmethod
    def open(cls, client: paramiko.SSHClient, timeout: float) -> ShellSession:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError("shell: SSH transport is not active")
        channel = transport.open_session(timeout=timeout)
        channel.set_combine_stderr(True)
        channel.exec_command("/bin/sh")
        return cls(channel)

    def __init__(self, channel: paramiko.Channel) -> None:
        self._chan = _Channel(channel, "shell")

    def run(self, command: str, timeout: float) -> tuple[int, str]:
        """Run a shell command (may span lines); return (exit status, stdout+stderr)."""
        marker = f"__DRILL_END_{uuid.uuid4().hex}__"
        # stdin from /dev/null: a command reading stdin would swallow the next commands
        self._chan.send(f"{{ {command}\n}} </dev/null 2>&1; printf '\\n{marker} %d\\n' $?\n")
        pattern = re.compile(rf"\n{marker} (?P<rc>\d+)\n")
        match = self._chan.read_until(pattern, time.monotonic() + timeout)
        output = self._chan.buffer[: match.start()]
        self._chan.buffer = self._chan.buffer[match.end() :]
        return int(match.group("rc")), output

    def write_file(self, path: str, content: str, timeout: float) -> None:
        """Write ``content`` to ``path`` on the device, atomically (temp file + rename)."""
        encoded = base64.encodebytes(content.encode()).decode()
        tmp = f"{path}.tmp{os.getpid()}"
        delimiter = f"DRILL_EOF_{uuid.uuid4().hex}"
        rc, output = self.run(
            f"base64 -d > {tmp} <<'{delimiter}'\n{encoded}{delimiter}\nmv -f {tmp} {path}",
            timeout,
        )
        if rc != 0:
            raise TransportError(f"writing {path} failed: {output.strip()}")

    def close(self) -> None:
        self._chan.close()
