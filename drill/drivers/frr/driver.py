"""NAPALM driver for FRRouting (`napalm.get_network_driver("frr")`, nornir platform `frr`).

Show commands go through one interactive vtysh, Linux commands (ping, traceroute, file
transfer, frr-reload) through one persistent shell, both on one SSH connection. Configuration
changes follow docs/driver.md: dry-run syntax check, snapshot, apply, verify, restore on error;
`revert_in` arms a timer on the device itself (drill/drivers/frr/revert.py).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shlex
import time
from pathlib import Path
from typing import Any

from napalm.base import NetworkDriver
from napalm.base.exceptions import (
    CommandErrorException,
    CommandTimeoutException,
    CommitError,
    ConnectionClosedException,
    ConnectionException,
    MergeConfigException,
    ReplaceConfigException,
)

from drill.drivers.frr import parsers
from drill.drivers.frr.config import (
    error_lines,
    merged_target,
    normalize_running_config,
    reload_plan_to_diff,
)
from drill.drivers.frr.revert import (
    DEFAULT_STATE_DIR,
    FRR_RELOAD,
    DevicePaths,
    arm_command,
    disarm_command,
    pending_check_command,
    revert_script,
)
from drill.drivers.frr.transport import (
    CommandTimeout,
    ConnectionSettings,
    HostKeyPolicy,
    ShellSession,
    TransportError,
    VtyshSession,
    open_client,
)
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# vtysh's own complaints about a command (as opposed to a daemon's message about config).
_CLI_ERRORS = ("% Unknown command", "% Command incomplete", "% Ambiguous command")
_NOT_RUNNING = re.compile(r"(?:\w+d is not running\s*)+")
_MAX_PING_COUNT = 100
_MAX_PROBE_TIMEOUT = 60
_MAX_TRACEROUTE_HOPS = 30
_RESTORE_PASSES = 3


def _settings(
    hostname: str, username: str, password: str, args: dict[str, Any]
) -> ConnectionSettings:
    return ConnectionSettings(
        host=hostname,
        username=username,
        password=password,
        port=int(args.get("port", 22)),
        known_hosts_file=Path(str(args.get("known_hosts_file", "~/.ssh/known_hosts"))),
        host_key_policy=HostKeyPolicy(str(args.get("host_key_policy", "strict"))),
        timeout=float(args.get("timeout", 10)),
        command_timeout=float(args.get("command_timeout", 30)),
    )


class FRRDriver(NetworkDriver):  # type: ignore[misc]
    """NAPALM driver for FRRouting 8.x reached over SSH (root or a user allowed to run vtysh)."""

    platform = "frr"

    def __init__(
        self,
        hostname: str,
        username: str,
        password: str,
        timeout: int = 60,
        optional_args: dict[str, Any] | None = None,
    ) -> None:
        self.hostname = hostname
        self.username = username
        self.password = password
        self.timeout = timeout
        args = dict(optional_args or {})
        self.settings = _settings(hostname, username, password, args)
        # recorded by the engine: which host-key check was in effect for this connection
        self.host_key_policy: str = self.settings.host_key_policy.value
        self.paths = DevicePaths(str(args.get("state_dir", DEFAULT_STATE_DIR)))
        self._client: Any = None
        self._vtysh: VtyshSession | None = None
        self._shell: ShellSession | None = None
        self._candidate: str | None = None
        self._replace = False

    # -- connection ---------------------------------------------------------------------

    def open(self) -> None:
        try:
            self._client = open_client(self.settings)
            self._vtysh = VtyshSession.open(self._client, self.settings.timeout)
        except (TransportError, OSError) as exc:
            self.close()
            raise ConnectionException(f"cannot open {self.hostname}: {exc}") from None
        log.debug("connected to %s (host key policy %s)", self.hostname, self.host_key_policy)

    def close(self) -> None:
        for session in (self._vtysh, self._shell):
            if session is not None:
                try:
                    session.close()
                except Exception:  # closing a dead channel must not mask the real error
                    log.debug("closing a session of %s failed", self.hostname, exc_info=True)
        self._vtysh = self._shell = None
        if self._client is not None:
            self._client.close()
        self._client = None

    def is_alive(self) -> dict[str, bool]:
        # NAPALM's __del__ calls this, even when __init__ or open() never completed
        client = getattr(self, "_client", None)
        transport = client.get_transport() if client is not None else None
        return {"is_alive": bool(transport is not None and transport.is_active())}

    def _require_client(self) -> Any:
        if not self.is_alive()["is_alive"]:
            raise ConnectionClosedException(f"{self.hostname}: not connected (call open())")
        return self._client

    def _vtysh_session(self) -> VtyshSession:
        if self._vtysh is None:
            try:
                self._vtysh = VtyshSession.open(self._require_client(), self.settings.timeout)
            except TransportError as exc:
                raise ConnectionClosedException(f"{self.hostname}: {exc}") from None
        return self._vtysh

    def _shell_session(self) -> ShellSession:
        if self._shell is None:
            try:
                shell = ShellSession.open(self._require_client(), self.settings.timeout)
                state_dir = shlex.quote(self.paths.state_dir)
                shell.run(f"umask 077; mkdir -p {state_dir}", self.settings.timeout)
            except TransportError as exc:
                raise ConnectionClosedException(f"{self.hostname}: {exc}") from None
            self._shell = shell
        return self._shell

    # -- primitives ---------------------------------------------------------------------

    def _show(self, command: str, timeout: float | None = None) -> str:
        """Output of one vtysh command; a session that missed its deadline is dropped."""
        session = self._vtysh_session()
        try:
            return session.run(command, timeout or self.settings.command_timeout)
        except CommandTimeout as exc:
            self._drop_vtysh()
            raise CommandTimeoutException(f"{self.hostname}: {command!r}: {exc}") from None
        except TransportError as exc:
            self._drop_vtysh()
            raise ConnectionClosedException(f"{self.hostname}: {exc}") from None

    def _drop_vtysh(self) -> None:
        if self._vtysh is not None:
            self._vtysh.close()
        self._vtysh = None

    def _show_json(self, command: str) -> Any:
        """Parsed JSON output; ``{}`` when the daemon behind the command is not running."""
        output = self._show(command)
        if _NOT_RUNNING.fullmatch(output.strip()):
            # e.g. no vrrpd on a node without VRRP: it has no groups, which is not an error
            log.debug("%s: %r: %s", self.hostname, command, output.strip())
            return {}
        try:
            return json.loads(output) if output.strip() else {}
        except json.JSONDecodeError:
            raise CommandErrorException(
                f"{self.hostname}: {command!r}: {output.strip()[:500]}"
            ) from None

    def _sh(self, command: str, timeout: float | None = None) -> tuple[int, str]:
        """Exit status and output of a Linux command on the device."""
        session = self._shell_session()
        try:
            return session.run(command, timeout or self.settings.command_timeout)
        except CommandTimeout as exc:
            self._drop_shell()
            raise CommandTimeoutException(f"{self.hostname}: {exc}") from None
        except TransportError as exc:
            self._drop_shell()
            raise ConnectionClosedException(f"{self.hostname}: {exc}") from None

    def _drop_shell(self) -> None:
        if self._shell is not None:
            self._shell.close()
        self._shell = None

    def _write(self, path: str, content: str) -> None:
        try:
            self._shell_session().write_file(path, content, self.settings.command_timeout)
        except TransportError as exc:
            raise CommandErrorException(f"{self.hostname}: {exc}") from None

    def _mask(self, text: str) -> str:
        return mask_secrets(text, [self.password] if self.password else [])

    # -- getters ------------------------------------------------------------------------

    def get_facts(self) -> JSON:
        version = self._show("show version")
        interfaces = self._show_json("show interface json")
        _, uptime = self._sh("cat /proc/uptime")
        return parsers.facts(version, interfaces, parsers.parse_uptime(uptime))

    def get_interfaces(self) -> JSON:
        return parsers.interfaces(self._show_json("show interface json"))

    def get_interfaces_ip(self) -> JSON:
        return parsers.interfaces_ip(self._show_json("show interface json"))

    def get_bgp_neighbors(self) -> JSON:
        summary = self._show_json("show bgp vrf all summary json")
        neighbors = self._show_json("show bgp vrf all neighbors json")
        return parsers.bgp_neighbors(summary, neighbors)

    def get_bgp_neighbors_detail(self, neighbor_address: str = "") -> JSON:
        neighbors = self._show_json("show bgp vrf all neighbors json")
        return parsers.bgp_neighbors_detail(neighbors, neighbor_address)

    def get_arp_table(self, vrf: str = "") -> list[JSON]:
        rc, output = self._sh("ip -j -s -4 neigh show")
        if rc != 0:
            raise CommandErrorException(f"{self.hostname}: ip neigh: {output.strip()}")
        return parsers.arp_table(json.loads(output) if output.strip() else [])

    def get_route_to(self, destination: str = "", protocol: str = "", longer: bool = False) -> JSON:
        family = "ip"
        if destination:
            network = ipaddress.ip_network(destination, strict=False)
            family = "ipv6" if network.version == 6 else "ip"
        command = f"show {family} route"
        if destination:
            command += f" {destination}"
            if longer and "/" in destination:
                command += " longer-prefixes"
        return parsers.route_to(self._show_json(f"{command} json"), protocol)

    def get_vrrp(self) -> JSON:
        """VRRP groups; shape documented in docs/driver.md (NAPALM has no model)."""
        groups = self._show_json("show vrrp json")
        if not isinstance(groups, list):
            return {}
        return parsers.vrrp(groups, self._show("show vrrp"))

    def get_config(
        self,
        retrieve: str = "all",
        full: bool = False,
        sanitized: bool = False,
        format: str = "text",
    ) -> dict[str, str]:
        if format != "text":
            raise NotImplementedError("FRR configuration exists only as text")
        config = {"running": "", "startup": "", "candidate": ""}
        if retrieve in ("all", "running"):
            config["running"] = self._show("show running-config")
        if retrieve in ("all", "startup"):
            _, config["startup"] = self._sh("cat /etc/frr/frr.conf 2>/dev/null")
        if retrieve in ("all", "candidate"):
            config["candidate"] = self._candidate or ""
        if sanitized:
            config = {key: mask_secrets(value) for key, value in config.items()}
        return config

    def cli(self, commands: list[str], encoding: str = "text") -> dict[str, Any]:
        if encoding not in ("text", "json"):
            raise NotImplementedError(f"encoding {encoding!r}: use 'text' or 'json'")
        if isinstance(commands, str):
            raise TypeError("cli() takes a list of commands")
        results: dict[str, Any] = {}
        for command in commands:
            sent = command
            if encoding == "json" and not command.rstrip().endswith(" json"):
                sent = f"{command.rstrip()} json"
            output = self._cli_one(sent)
            if output.lstrip().startswith(_CLI_ERRORS):
                raise CommandErrorException(f"{self.hostname}: {sent!r}: {output.strip()}")
            if encoding == "json":
                try:
                    results[command] = json.loads(output)
                except json.JSONDecodeError:
                    raise CommandErrorException(
                        f"{self.hostname}: {sent!r} gave no JSON: {output.strip()[:500]}"
                    ) from None
            else:
                results[command] = output
        return results

    def _cli_one(self, command: str) -> str:
        if any(char in command for char in "?\t\n"):
            # readline in the interactive vtysh would take these as help/completion requests
            _, output = self._sh(f"vtysh -c {shlex.quote(command)}")
            return output
        return self._show(command)

    def ping(
        self,
        destination: str,
        source: str = "",
        ttl: int = 255,
        timeout: int = 2,
        size: int = 100,
        count: int = 5,
        vrf: str = "",
        source_interface: str = "",
    ) -> JSON:
        count = min(max(int(count), 1), _MAX_PING_COUNT)
        timeout = min(max(int(timeout), 1), _MAX_PROBE_TIMEOUT)
        argv = ["ping", "-n", "-c", str(count), "-W", str(timeout), "-i", "0.2"]
        argv += ["-t", str(min(max(int(ttl), 1), 255)), "-s", str(min(max(int(size), 0), 65507))]
        if source or source_interface:
            argv += ["-I", source or source_interface]
        argv += [destination]
        # worst case: every probe 0.2 s apart, the last one waits `timeout`
        limit = int(count * 0.2 + timeout) + 2
        command = f"timeout {limit} {shlex.join(self._in_vrf(vrf, argv))}"
        _, output = self._sh(command, timeout=limit + self.settings.timeout)
        return parsers.ping(output)

    def traceroute(
        self,
        destination: str,
        source: str = "",
        ttl: int = 255,
        timeout: int = 2,
        vrf: str = "",
    ) -> JSON:
        hops = min(max(int(ttl), 1), _MAX_TRACEROUTE_HOPS)
        timeout = min(max(int(timeout), 1), _MAX_PROBE_TIMEOUT)
        argv = ["traceroute", "-n", "-q", "3", "-w", str(timeout), "-m", str(hops)]
        if source:
            argv += ["-s", source]
        argv += [destination]
        limit = hops * timeout + 2
        command = f"timeout {limit} {shlex.join(self._in_vrf(vrf, argv))}"
        _, output = self._sh(command, timeout=limit + self.settings.timeout)
        return parsers.traceroute(output)

    @staticmethod
    def _in_vrf(vrf: str, argv: list[str]) -> list[str]:
        if vrf in ("", "default", parsers.GLOBAL_VRF):
            return argv
        return ["ip", "vrf", "exec", vrf, *argv]

    # -- configuration ------------------------------------------------------------------

    def load_merge_candidate(self, filename: str | None = None, config: str | None = None) -> None:
        self._load(filename, config, replace=False)

    def load_replace_candidate(
        self, filename: str | None = None, config: str | None = None
    ) -> None:
        self._load(filename, config, replace=True)

    def _load(self, filename: str | None, config: str | None, replace: bool) -> None:
        error = ReplaceConfigException if replace else MergeConfigException
        if filename is not None:
            try:
                config = Path(filename).read_text(encoding="utf-8")
            except OSError as exc:
                raise error(f"cannot read {filename}: {exc}") from None
        if config is None:
            raise error("give a filename or a config string")
        text = normalize_running_config(config)
        self._write(self.paths.candidate, text)
        # -C: parse only. Catches unknown commands, not semantic rejections (checked at commit).
        rc, output = self._sh(f"vtysh -C -f {shlex.quote(self.paths.candidate)}")
        problems = error_lines(output)
        if rc != 0 or problems:
            self._sh(f"rm -f {shlex.quote(self.paths.candidate)}")
            message = "; ".join(problems) or output.strip()
            raise error(f"{self.hostname} rejected the candidate: {self._mask(message)}")
        self._candidate = text
        self._replace = replace
        log.debug("%s: loaded %s candidate:\n%s", self.hostname, self._kind, self._mask(text))

    @property
    def _kind(self) -> str:
        return "replace" if self._replace else "merge"

    def _reload(self, mode: str, path: str) -> tuple[int, str, str]:
        """Run frr-reload --test/--reload; return (status, stdout, log lines)."""
        err = f"{self.paths.state_dir}/reload.err"
        rc, out = self._sh(f"{FRR_RELOAD} --{mode} {shlex.quote(path)} 2>{shlex.quote(err)}")
        _, log_lines = self._sh(f"cat {shlex.quote(err)}")
        return rc, out, log_lines

    def compare_config(self) -> str:
        if self._candidate is None:
            return ""
        path = self.paths.candidate
        if not self._replace:
            running = normalize_running_config(self._show("show running-config"))
            self._write(self.paths.target, merged_target(running, self._candidate))
            path = self.paths.target
        rc, out, log_lines = self._reload("test", path)
        if rc != 0:
            error = ReplaceConfigException if self._replace else MergeConfigException
            problems = [line for line in log_lines.splitlines() if "ERROR" in line or "%" in line]
            raise error(
                f"{self.hostname}: frr-reload --test failed: {self._mask(' '.join(problems))}"
            )
        diff = reload_plan_to_diff(out)
        log.debug("%s: %s diff:\n%s", self.hostname, self._kind, self._mask(diff))
        return diff

    def discard_config(self) -> None:
        self._candidate = None
        if self.is_alive()["is_alive"]:
            self._sh(f"rm -f {shlex.quote(self.paths.candidate)} {shlex.quote(self.paths.target)}")

    def _running(self) -> str:
        return normalize_running_config(self._show("show running-config"))

    def commit_config(self, message: str = "", revert_in: int | None = None) -> None:
        if self.has_pending_commit():
            raise CommitError(
                f"{self.hostname}: a commit is pending confirmation; "
                "confirm_commit() or rollback() first"
            )
        if self._candidate is None:
            raise CommitError(f"{self.hostname}: no candidate configuration loaded")
        before = self._running()
        self._write(self.paths.snapshot, before)
        if revert_in is not None:
            # armed before applying: a controller dying mid-apply still gets reverted
            self._arm(int(revert_in))
        log.info(
            "%s: committing %s candidate%s",
            self.hostname,
            self._kind,
            f" ({message})" * bool(message),
        )
        try:
            problems = self._apply()
        except CommandTimeoutException as exc:
            # the device may have applied part of it: treat as rejected and restore
            problems = [str(exc)]
        if problems:
            if revert_in is not None:
                self._sh(disarm_command(self.paths))
            self._restore(self.paths.snapshot, before)
            raise CommitError(
                f"{self.hostname} rejected the {self._kind}: {self._mask('; '.join(problems))} "
                "(running configuration restored)"
            )
        snapshot, rollback = shlex.quote(self.paths.snapshot), shlex.quote(self.paths.rollback)
        self._sh(f"mv -f {snapshot} {rollback}")
        self._candidate = None
        self._drop_vtysh()  # the hostname, hence the prompt, may have changed

    def _arm(self, seconds: int) -> None:
        if seconds < 1:
            raise CommitError(f"revert_in must be at least 1 second, not {seconds}")
        self._write(self.paths.script, revert_script(self.paths))
        rc, output = self._sh(arm_command(self.paths, seconds))
        if rc != 0:
            raise CommitError(f"{self.hostname}: cannot arm the revert timer: {output.strip()}")
        log.info("%s: revert timer armed for %d s on the device", self.hostname, seconds)

    def _apply(self) -> list[str]:
        """Apply the candidate; return the device's complaints (empty when all went in)."""
        candidate = shlex.quote(self.paths.candidate)
        if not self._replace:
            rc, output = self._sh(f"vtysh -f {candidate}")
            problems = error_lines(output)
            if rc != 0 and not problems:
                problems = [output.strip() or f"vtysh exited with status {rc}"]
            return problems
        rc, out, log_lines = self._reload("reload", self.paths.candidate)
        problems = [line.strip() for line in log_lines.splitlines() if "ERROR" in line]
        problems += error_lines(out)
        if rc != 0 and not problems:
            problems = [f"frr-reload exited with status {rc}"]
        if problems:
            return problems
        # frr-reload applies a delta line by line: check that nothing is left to do
        _, plan, _ = self._reload("test", self.paths.candidate)
        left = reload_plan_to_diff(plan)
        return [f"frr-reload left changes unapplied:\n{left}"] if left else []

    def _restore(self, path: str, expected: str) -> None:
        """Bring the running configuration back to `expected` (the file at `path`)."""
        for attempt in range(1, _RESTORE_PASSES + 1):
            self._reload("reload", path)
            self._drop_vtysh()
            if self._running() == expected:
                log.info("%s: configuration restored (pass %d)", self.hostname, attempt)
                return
        raise CommitError(
            f"{self.hostname}: could not restore {path}; running configuration differs"
        )

    def _pending_state(self) -> str:
        _, output = self._sh(pending_check_command(self.paths))
        state = output.strip()
        if state == "stale":
            log.warning(
                "%s: revert marker without a live timer in %s", self.hostname, self.paths.marker
            )
        return state

    def has_pending_commit(self) -> bool:
        return self._pending_state() in ("pending", "firing")

    def confirm_commit(self) -> None:
        _, output = self._sh(disarm_command(self.paths))
        if output.strip() != "disarmed":
            raise CommitError(f"{self.hostname}: no commit is pending confirmation")
        log.info("%s: commit confirmed, revert timer disarmed", self.hostname)

    def rollback(self) -> None:
        state = self._pending_state()
        if state == "firing":
            self._wait_for_revert()
            return
        if state == "pending":
            # Undo the unconfirmed commit with what its timer would restore: the config from
            # just before it. rollback.conf is only written when a commit finishes, so after a
            # controller died mid-apply it still holds an OLDER commit's config.
            pending, saved = (
                shlex.quote(self.paths.pending_config),
                shlex.quote(self.paths.snapshot),
            )
            rc, expected = self._sh(f"cat {pending} && cp -f {pending} {saved}")
            self._sh(disarm_command(self.paths))  # removes the pending config: use the copy
            if rc == 0:
                self._restore(self.paths.snapshot, normalize_running_config(expected))
                return
        rc, expected = self._sh(f"cat {shlex.quote(self.paths.rollback)}")
        if rc != 0:
            raise CommitError(f"{self.hostname}: nothing to roll back (no commit by this driver)")
        self._restore(self.paths.rollback, normalize_running_config(expected))

    def _wait_for_revert(self) -> None:
        deadline = time.monotonic() + self.settings.command_timeout
        while self._pending_state() == "firing":
            if time.monotonic() > deadline:
                raise CommitError(f"{self.hostname}: the device's revert did not finish in time")
            time.sleep(0.2)
        self._drop_vtysh()
