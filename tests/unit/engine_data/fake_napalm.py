"""A small in-memory NAPALM driver for engine unit tests, registered as platform
``drillfake`` (napalm finds it as the module ``napalm_drillfake``).

A device's running config is a list of lines. A merge adds lines (``no X`` removes X), a
replace sets them. Getters read the config: ``get_state`` returns
``{"lines": [...], "healthy": <no line 'broken'>, "priority": <value of 'priority N'>}``.
A candidate containing ``reject`` makes load raise (a device refusing a config). Every
device operation is logged in ``Network.log`` so tests can assert on what happened.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any

from napalm.base import NetworkDriver


@dataclass
class FakeBox:
    running: list[str] = field(default_factory=list)
    pending_revert: list[str] | None = None  # config before an unconfirmed commit
    fail_get: bool = False  # getters raise (device down)
    fail_commit: bool = False
    delay: float = 0.0  # seconds each get_state takes
    flaky: int = 0  # this many get_state calls report unhealthy before the truth


class Network:
    """All fake devices of one test, by hostname."""

    def __init__(self) -> None:
        self.boxes: dict[str, FakeBox] = {}
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.opens = 0

    def add(self, name: str, lines: list[str]) -> FakeBox:
        self.boxes[name] = FakeBox(list(lines))
        return self.boxes[name]

    def record(self, host: str, what: str) -> None:
        with self.lock:
            self.log.append((host, what))

    def ops(self, what: str) -> list[str]:
        return [h for h, w in self.log if w == what]


CURRENT = Network()


def _merge(lines: list[str], candidate: list[str]) -> list[str]:
    out = list(lines)
    for line in candidate:
        if line.startswith("no "):
            target = line[3:]
            out = [x for x in out if x != target and not x.startswith(target.split(" ")[0] + " ")]
        elif line.split(" ")[0] == "priority":
            out = [x for x in out if not x.startswith("priority ")] + [line]
        elif line not in out:
            out.append(line)
    return out


class DrillFakeDriver(NetworkDriver):  # type: ignore[misc]
    def __init__(
        self,
        hostname: str,
        username: str,
        password: str,
        timeout: int = 60,
        optional_args: dict[str, Any] | None = None,
    ) -> None:
        self.hostname = hostname
        self.candidate: list[str] | None = None
        self.opened = False

    @property
    def box(self) -> FakeBox:
        return CURRENT.boxes[self.hostname]

    def open(self) -> None:
        with CURRENT.lock:
            CURRENT.opens += 1
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def is_alive(self) -> dict[str, bool]:
        return {"is_alive": self.opened}

    def get_config(
        self,
        retrieve: str = "all",
        full: bool = False,
        sanitized: bool = False,
        format: str = "text",
    ) -> dict[str, str]:
        if self.box.fail_get:
            raise ConnectionError("device unreachable")
        return {"running": "\n".join(self.box.running) + "\n", "startup": "", "candidate": ""}

    def _load(self, config: str | None, replace: bool) -> None:
        lines = [x.strip() for x in (config or "").splitlines() if x.strip()]
        if any("reject" in x for x in lines):
            raise ValueError(f"% Unknown command: {next(x for x in lines if 'reject' in x)}")
        self.candidate = lines if replace else _merge(self.box.running, lines)

    def load_merge_candidate(self, filename: str | None = None, config: str | None = None) -> None:
        CURRENT.record(self.hostname, "load_merge")
        self._load(config, replace=False)

    def load_replace_candidate(
        self, filename: str | None = None, config: str | None = None
    ) -> None:
        CURRENT.record(self.hostname, "load_replace")
        self._load(config, replace=True)

    def compare_config(self) -> str:
        if self.candidate is None:
            return ""
        old, new = set(self.box.running), set(self.candidate)
        lines = [f"-{x}" for x in self.box.running if x not in new]
        lines += [f"+{x}" for x in self.candidate if x not in old]
        return "\n".join(lines)

    def discard_config(self) -> None:
        CURRENT.record(self.hostname, "discard")
        self.candidate = None

    def commit_config(self, message: str = "", revert_in: int | None = None) -> None:
        if self.box.pending_revert is not None:
            raise RuntimeError("a commit-confirm is pending")
        if self.box.fail_commit:
            raise RuntimeError("% commit failed")
        assert self.candidate is not None
        CURRENT.record(self.hostname, "commit")
        if revert_in is not None:
            self.box.pending_revert = list(self.box.running)
        self.box.running = list(self.candidate)
        self.candidate = None

    def confirm_commit(self) -> None:
        CURRENT.record(self.hostname, "confirm")
        self.box.pending_revert = None

    def has_pending_commit(self) -> bool:
        return self.box.pending_revert is not None

    def rollback(self) -> None:
        CURRENT.record(self.hostname, "rollback")
        if self.box.pending_revert is not None:
            self.box.running = self.box.pending_revert
            self.box.pending_revert = None

    def get_state(self) -> dict[str, Any]:
        if self.box.fail_get:
            raise ConnectionError("device unreachable")
        CURRENT.record(self.hostname, "get_state")
        time.sleep(self.box.delay)
        if self.box.flaky > 0:
            self.box.flaky -= 1
            return {"lines": [], "healthy": False, "priority": 0}
        priority = next(
            (int(x.split()[1]) for x in self.box.running if x.startswith("priority ")), 0
        )
        return {
            "lines": list(self.box.running),
            "healthy": "broken" not in self.box.running,
            "priority": priority,
        }

    def get_interfaces_ip(self) -> dict[str, Any]:
        return {"eth1": {"ipv4": {"198.51.100.99": {"prefix_length": 30}}}}

    def get_facts(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "vendor": "fake", "uptime": 1.0}

    def cli(self, commands: list[str], encoding: str = "text") -> dict[str, str]:
        return {c: '{"peers": {"198.51.100.1": {"state": "Established"}}}' for c in commands}

    def compliance_report(
        self, validation_file: str | None = None, validation_source: Any = None
    ) -> dict[str, Any]:
        healthy = "broken" not in self.box.running
        return {
            "complies": healthy,
            "skipped": [],
            "get_state": {
                "complies": healthy,
                "present": {
                    "healthy": {
                        "complies": healthy,
                        "nested": False,
                        "expected_value": True,
                        "actual_value": healthy,
                    }
                },
                "missing": [],
                "extra": [],
            },
        }


def install() -> None:
    module = types.ModuleType("napalm_drillfake")
    module.DrillFakeDriver = DrillFakeDriver  # type: ignore[attr-defined]
    sys.modules["napalm_drillfake"] = module
