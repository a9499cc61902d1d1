"""Loads a runbook: YAML with positions -> model -> semantic validation against the
inventory, files and platforms. Every problem found is reported at once, located, as one
InputError; nothing connects to any device."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drill.errors import Diagnostic, InputError
from drill.runbook import templates, validate
from drill.runbook.includes import OutsideTree, include_path
from drill.runbook.inventory import Inventory, load_inventory
from drill.runbook.model import CheckSpec, CommandStep, ConfigStep, Runbook, Step
from drill.runbook.schema_errors import schema_diagnostics
from drill.runbook.templates import Origin
from drill.runbook.walk import StepRef, iter_steps
from drill.runbook.yamlpos import (
    JsonPath,
    ParsedYaml,
    YamlError,
    block_scalar_origin,
    one_line,
    parse,
    read_text,
    sort_diagnostics,
)
from drill.secrets import remember, secret_values

logger = logging.getLogger(__name__)

COMMAND_LINE = "<command line>"


@dataclass(frozen=True)
class LoadedRunbook:
    """A validated runbook, with everything the engine needs to run it."""

    path: Path
    text: str
    sha256: str
    model: Runbook
    inventory: Inventory
    vars: dict[str, Any]
    inventory_path: Path | None
    parsed: ParsedYaml = field(repr=False)
    step_refs: tuple[StepRef, ...] = field(repr=False)
    _hosts: dict[int, tuple[str, ...]] = field(repr=False)

    def locate(self, json_path: JsonPath) -> tuple[int, int]:
        """(line, col) of the value at json_path, e.g. ("steps", 2, "config")."""
        pos = self.parsed.positions.value(tuple(json_path))
        return pos.line, pos.col

    def ref_for(self, step: Step) -> StepRef:
        for ref in self.step_refs:
            if ref.step is step:
                return ref
        raise KeyError(f"step {step.name!r} is not part of this runbook")

    def hosts_for(self, step: Step) -> list[str]:
        """The step's `on` as host names, sorted and deduplicated (an inline rollback step
        without `on` acts on its parent step's hosts)."""
        found = self._hosts.get(id(step))
        if found is not None:
            return list(found)
        return validate.resolve_on(step.on, self.model.targets, self.inventory)

    def all_hosts(self) -> list[str]:
        """Every host some step acts on."""
        return sorted({h for hosts in self._hosts.values() for h in hosts})

    def host_view(self, host: str | None) -> dict[str, Any] | None:
        return self.inventory.hosts[host].template_view() if host is not None else None

    def template_context(self, host: str | None) -> dict[str, Any]:
        """What templates see: vars, host (when given), mode, runbook."""
        return templates.runbook_context(self.model, self.vars, self.host_view(host))

    def config_source(self, step: ConfigStep) -> tuple[str, Origin]:
        """A config step's template text and where it lives (for located errors)."""
        if step.template is not None:
            file = self.path.parent / step.template
            try:
                include_path(self.path.parent, step.template)
            except OutsideTree as exc:
                raise InputError(f"error: {file}: {exc}") from None
            return read_text(file, str(file)), Origin(str(file), 1, 1)
        ref = self.ref_for(step)
        line, col = block_scalar_origin(self.parsed, (*ref.path, "config"))
        return step.config or "", Origin(str(self.path), line, col)

    def render_config(self, step: ConfigStep, host: str) -> str:
        """The configuration a config step sends to host."""
        text, origin = self.config_source(step)
        return templates.render_in(text, origin, self.model, self.vars, self.host_view(host))

    def render_check(self, spec: CheckSpec, host: str | None) -> CheckSpec:
        """A copy of a check (a check/wait_until step, or a config step's ``check``) whose
        string ``args``, ``commands``, ``http`` and ``traceroute`` are rendered for host."""
        base = self._spec_path(spec)
        view = self.host_view(host)

        def text(path: JsonPath, value: str) -> str:
            line, col = block_scalar_origin(self.parsed, (*base, *path))
            origin = Origin(str(self.path), line, col)
            return templates.render_in(value, origin, self.model, self.vars, view)

        update: dict[str, Any] = {
            "args": {
                k: text(("args", k), v) if isinstance(v, str) else v for k, v in spec.args.items()
            }
        }
        if spec.commands is not None:
            update["commands"] = [text(("commands", i), c) for i, c in enumerate(spec.commands)]
        if spec.http is not None:
            update["http"] = text(("http",), spec.http)
        if spec.traceroute is not None:
            update["traceroute"] = text(("traceroute",), spec.traceroute)
        return spec.model_copy(update=update)

    def render_command(self, step: CommandStep) -> CommandStep:
        """A copy of a command step with ``argv`` and ``env`` values rendered (no host)."""
        base = self.ref_for(step).path

        def text(path: JsonPath, value: str) -> str:
            line, col = block_scalar_origin(self.parsed, (*base, *path))
            origin = Origin(str(self.path), line, col)
            return templates.render_in(value, origin, self.model, self.vars, None)

        argv = [text(("argv", i), a) for i, a in enumerate(step.argv)]
        env = {k: text(("env", k), v) for k, v in step.env.items()}
        return step.model_copy(update={"argv": argv, "env": env})

    def _spec_path(self, spec: CheckSpec) -> JsonPath:
        for ref in self.step_refs:
            if ref.step is spec:
                return ref.path
            if isinstance(ref.step, ConfigStep) and ref.step.check is spec:
                return (*ref.path, "check")
        raise KeyError("this check is not part of this runbook")


def load_runbook(
    path: Path,
    *,
    inventory_override: Path | None = None,
    var_overrides: dict[str, str] | None = None,
) -> LoadedRunbook:
    """Read, parse and validate the runbook at path; raise InputError with every problem."""
    try:
        return _load(path, inventory_override, var_overrides)
    except InputError as exc:
        raise InputError(one_line(exc.diagnostics)) from None


def _load(
    path: Path, inventory_override: Path | None, var_overrides: dict[str, str] | None
) -> LoadedRunbook:
    display = str(path)
    try:
        text = read_text(path, display)
        parsed = parse(text, display)
    except YamlError as exc:
        raise InputError(exc.diagnostics) from None
    data = parsed.data
    if data is None:
        message = "empty runbook: expected a mapping with apiVersion, name and steps"
        raise InputError([Diagnostic(display, 1, 1, message)])
    if not isinstance(data, dict):
        pos = parsed.positions.value(())
        message = f"a runbook is a mapping (apiVersion, name, steps...), not a {_kind(data)}"
        raise InputError([Diagnostic(display, pos.line, pos.col, message)])
    found = list(parsed.soft)
    try:
        model = Runbook.model_validate(data)
    except ValidationError as exc:
        found += schema_diagnostics(exc, data, parsed.positions, display, Runbook)
        raise InputError(sort_diagnostics(found)) from None
    vars_ = _merge_vars(model, var_overrides or {}, parsed, display, found)
    remember(secret_values(vars_))
    inventory, inventory_path = _inventory(model, path, parsed, inventory_override, found)
    if inventory is None:
        raise InputError(sort_diagnostics(found))
    checker = validate.Checker(display, parsed, model, inventory, path.parent, vars_)
    try:
        validate.check(checker)
    except InputError as exc:
        found += exc.diagnostics
    if found:
        raise InputError(sort_diagnostics(found))
    refs = tuple(iter_steps(model))
    hosts = {id(ref.step): tuple(checker.hosts_of(ref)) for ref in refs}
    logger.debug("loaded %s: %d steps, %d hosts", display, len(refs), len(inventory.hosts))
    return LoadedRunbook(
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        model=model,
        inventory=inventory,
        vars=vars_,
        inventory_path=inventory_path,
        parsed=parsed,
        step_refs=refs,
        _hosts=hosts,
    )


def _kind(value: Any) -> str:
    names: dict[type[Any], str] = {list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def _inventory(
    model: Runbook,
    path: Path,
    parsed: ParsedYaml,
    override: Path | None,
    found: list[Diagnostic],
) -> tuple[Inventory | None, Path | None]:
    """The inventory given by -i, else by the runbook's `inventory` (relative to it)."""
    if override is not None:
        target = override
        where = Diagnostic(str(override), 1, 1, "inventory not found (given with -i)")
    elif model.inventory is not None:
        target = Path(os.path.normpath(path.parent / model.inventory))
        pos = parsed.positions.value(("inventory",))
        message = f"inventory '{model.inventory}' not found (looked for {target})"
        where = Diagnostic(str(path), pos.line, pos.col, message)
    else:
        return Inventory.empty(), None
    if not target.exists():
        found.append(where)
        return None, None
    try:
        return load_inventory(target), target
    except InputError as exc:
        found += exc.diagnostics or [Diagnostic(str(target), 1, 1, str(exc))]
        return None, None


def parse_var_args(items: list[str]) -> dict[str, str]:
    """``--var k=v`` arguments to a dict; a malformed one is an InputError."""
    result: dict[str, str] = {}
    problems = []
    for index, item in enumerate(items, start=1):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            message = f"--var expects NAME=VALUE, got {item!r}"
            problems.append(Diagnostic(COMMAND_LINE, 1, index, message))
            continue
        result[key.strip()] = value
    if problems:
        raise InputError(problems)
    return result


def _merge_vars(
    model: Runbook,
    overrides: dict[str, str],
    parsed: ParsedYaml,
    display: str,
    found: list[Diagnostic],
) -> dict[str, Any]:
    """Runbook vars with --var overrides. An override must name a declared variable (a typo
    must not silently leave the default) and takes the declared value's type."""
    merged = dict(model.vars)
    for key, text in overrides.items():
        pos = parsed.positions.key(("vars",)) if "vars" in parsed.data else None
        line, col = (pos.line, pos.col) if pos else (1, 1)
        if key not in model.vars:
            declared = ", ".join(sorted(model.vars)) or "none"
            message = f"--var {key}: the runbook declares no such variable (declared: {declared})"
            found.append(Diagnostic(display, line, col, message))
            continue
        try:
            merged[key] = _coerce(model.vars[key], text)
        except ValueError as exc:
            declared_at = parsed.positions.key(("vars", key))
            message = f"--var {key}: {exc}"
            found.append(Diagnostic(display, declared_at.line, declared_at.col, message))
    return merged


def _coerce(declared: Any, text: str) -> Any:
    if isinstance(declared, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() == "true"
    if isinstance(declared, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if isinstance(declared, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if isinstance(declared, list | dict):
        raise ValueError("lists and mappings cannot be set from the command line")
    return text
