"""Build what the engine needs for a unit test: a nornir with fake devices and a
LoadedRunbook-like object from YAML text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import (
    ConnectionOptions,
    Defaults,
    Groups,
    Host,
    Hosts,
    Inventory,
)
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.plugins.runners import ThreadedRunner
from ruamel.yaml import YAML

from drill.runbook.model import ConfigStep, Runbook, StepBase
from drill.runbook.templates import Origin
from engine_data import fake_napalm

PASSWORD = "s3cret-pass"


@dataclass
class FakeLoaded:
    path: Path
    text: str
    model: Runbook
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def config_source(self, step: ConfigStep) -> tuple[str, Origin]:
        if step.template is not None:
            path = self.path.parent / step.template
            return path.read_text(encoding="utf-8"), Origin(str(path))
        return step.config or "", Origin(str(self.path))

    def hosts_for(self, step: StepBase) -> list[str]:
        hosts: list[str] = []
        for name in step.on:
            target = self.model.targets.get(name)
            hosts.extend(target.hosts or [] if target else [name])
        return list(dict.fromkeys(hosts))


def load(text: str, directory: Path) -> FakeLoaded:
    path = directory / "runbook.yml"
    path.write_text(text)
    # YAML 1.2 like the loader: 'on' is a key, not a boolean.
    model = Runbook.model_validate(YAML(typ="safe").load(text))
    return FakeLoaded(path, text, model, dict(model.vars))


def nornir_for(
    names: list[str], data: dict[str, dict[str, Any]] | None = None, workers: int = 5
) -> Nornir:
    fake_napalm.install()
    ConnectionPluginRegister.auto_register()
    hosts = Hosts()
    for name in names:
        hosts[name] = Host(
            name=name,
            hostname=name,
            username="admin",
            password=PASSWORD,
            platform="drillfake",
            data=(data or {}).get(name, {}),
            connection_options={"napalm": ConnectionOptions(extras={"optional_args": {}})},
        )
    inventory = Inventory(hosts=hosts, groups=Groups(), defaults=Defaults())
    return Nornir(inventory=inventory, runner=ThreadedRunner(num_workers=workers), config=Config())
