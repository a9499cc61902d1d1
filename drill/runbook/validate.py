"""Semantic checks of a schema-valid runbook against its inventory, its files and the
platforms' capabilities. Nothing here connects to anything; every problem is collected."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drill.checks.assertions import PathError, parse_path
from drill.errors import Diagnostic, DrillError, InputError
from drill.runbook import platforms, templates
from drill.runbook.includes import OutsideTree, include_path
from drill.runbook.inventory import Inventory
from drill.runbook.model import (
    ApprovalStep,
    CheckSpec,
    CheckStep,
    CommandStep,
    ConfigStep,
    FaultStep,
    IsolateSpec,
    PacketProbe,
    PauseStep,
    Runbook,
    TargetSelector,
    ValidateStep,
    WaitUntilStep,
)
from drill.runbook.replace_safety import empty_problem
from drill.runbook.schema_errors import describe
from drill.runbook.templates import LIMIT_MESSAGE, Origin
from drill.runbook.walk import StepRef, iter_steps
from drill.runbook.yamlpos import (
    JsonPath,
    ParsedYaml,
    YamlError,
    block_scalar_origin,
    parse,
    read_text,
)

logger = logging.getLogger(__name__)

VANTAGE = re.compile(r"^(local|netns:[A-Za-z0-9_.-]+|lab:[^:]+:[A-Za-z0-9_.-]+)$")


@dataclass
class Checker:
    """One validation pass: the inputs, and the diagnostics found so far."""

    display: str
    parsed: ParsedYaml
    model: Runbook
    inventory: Inventory
    base_dir: Path
    vars: dict[str, Any]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _rendered: set[tuple[str, int, int, str]] = field(default_factory=set)

    # --- reporting ---------------------------------------------------------------------

    def at(self, path: JsonPath, message: str, *, key: bool = False) -> None:
        positions = self.parsed.positions
        pos = positions.key(path) if key else positions.value(path)
        self.diagnostics.append(Diagnostic(self.display, pos.line, pos.col, message))

    def where(self, path: JsonPath) -> str:
        return describe(path, self.parsed.data)

    # --- hosts -------------------------------------------------------------------------

    def resolve_on(self, entries: Iterable[str]) -> list[str]:
        return resolve_on(entries, self.model.targets, self.inventory)

    def hosts_of(self, ref: StepRef) -> list[str]:
        return self.resolve_on(effective_on(ref))


def effective_on(ref: StepRef) -> list[str]:
    """A step's `on`; an inline rollback step without one acts on its parent's hosts."""
    current: StepRef | None = ref
    while current is not None:
        if current.step.on:
            return list(current.step.on)
        current = current.parent
    return []


def resolve_on(
    entries: Iterable[str], targets: dict[str, TargetSelector], inventory: Inventory
) -> list[str]:
    """Target names and host names to host names, sorted and deduplicated."""
    hosts: set[str] = set()
    for entry in entries:
        if entry in targets:
            hosts.update(inventory.select(targets[entry]))
        elif entry in inventory.hosts:
            hosts.add(entry)
    return sorted(hosts)


def check(checker: Checker) -> None:
    """Run every semantic check; raise InputError when anything was found."""
    _check_targets(checker)
    _check_probes(checker)
    _check_unique_names(checker)
    for ref in iter_steps(checker.model):
        _check_step(checker, ref)
    _check_isolate(checker)
    if checker.diagnostics:
        raise InputError(checker.diagnostics)


# --- targets and probes ---------------------------------------------------------------


def _check_targets(c: Checker) -> None:
    inventory = c.inventory
    for name, selector in c.model.targets.items():
        path: JsonPath = ("targets", name)
        if name in inventory.hosts:
            c.at(path, f"target '{name}' has the name of a host: rename one of them", key=True)
        if selector.hosts is None and selector.groups is None and selector.data is None:
            c.at(path, f"target '{name}' has no criteria: give hosts, groups or data", key=True)
            continue
        bad = False
        for index, host in enumerate(selector.hosts or []):
            if host not in inventory.hosts:
                hint = _suggest(host, inventory.hosts)
                c.at((*path, "hosts", index), f"target '{name}': unknown host '{host}'{hint}")
                bad = True
        for index, group in enumerate(selector.groups or []):
            if group not in inventory.groups:
                hint = _suggest(group, inventory.groups)
                c.at((*path, "groups", index), f"target '{name}': unknown group '{group}'{hint}")
                bad = True
        if not bad and not inventory.select(selector):
            where = "the inventory is empty" if not inventory.hosts else "no host matches"
            c.at(path, f"target '{name}' selects no host ({where})", key=True)


def _check_probes(c: Checker) -> None:
    first: dict[str, int] = {}
    for index, probe in enumerate(c.model.probes):
        path: JsonPath = ("probes", index)
        _check_vantage(c, (*path, "from"), probe.from_)
        if isinstance(probe, PacketProbe) and (probe.protocol == "udp") != (probe.port is not None):
            problem = "a udp probe needs 'port'" if probe.port is None else "'port' is for udp only"
            c.at(path, f"probe '{probe.name}': {problem}")
        line = c.parsed.positions.value((*path, "name")).line
        if probe.name in first:
            message = (
                f"duplicate probe name '{probe.name}' (first used at line {first[probe.name]})"
            )
            c.at((*path, "name"), message)
        first.setdefault(probe.name, line)


def _check_vantage(c: Checker, path: JsonPath, value: str | None) -> None:
    if value is not None and not VANTAGE.match(value):
        c.at(
            path,
            f"{c.where(path[:-1])}: bad vantage point '{value}' "
            "(use local, netns:NAME or lab:LABDIR:NODE)",
        )


def _check_unique_names(c: Checker) -> None:
    first: dict[str, int] = {}
    for ref in iter_steps(c.model):
        name = ref.step.name
        line = c.parsed.positions.value((*ref.path, "name")).line
        if name in first:
            c.at(
                (*ref.path, "name"),
                f"duplicate step name '{name}' (first used at line {first[name]})",
            )
        else:
            first[name] = line


# --- steps ----------------------------------------------------------------------------


def _needs_hosts(ref: StepRef) -> bool:
    step = ref.step
    if isinstance(step, ConfigStep | ValidateStep):
        return True
    return isinstance(step, CheckStep | WaitUntilStep) and step.getter is not None


def _hostless(ref: StepRef) -> bool:
    """Steps for which `on` would be silently ignored."""
    step = ref.step
    if isinstance(step, PauseStep | ApprovalStep | CommandStep | FaultStep):
        return True
    return (
        isinstance(step, CheckStep | WaitUntilStep)
        and step.getter is None
        and bool(step.http or step.traceroute)
    )


def _check_step(c: Checker, ref: StepRef) -> None:
    step = ref.step
    name = f"step '{step.name}'"
    hosts = _check_on(c, ref)
    if _needs_hosts(ref) and not effective_on(ref):
        c.at(ref.path, f"{name} (kind {step.kind}) needs 'on': the targets or hosts it acts on")
    if step.on and _hostless(ref):
        c.at((*ref.path, "on"), f"{name} acts on no host: remove 'on'", key=True)
    if isinstance(step, CommandStep):
        _check_vantage(c, (*ref.path, "from"), step.from_)
        _render_command(c, ref, step)
    if isinstance(step, WaitUntilStep) and step.interval > step.timeout:
        c.at((*ref.path, "interval"), f"{name}: 'interval' is longer than 'timeout'")
    if isinstance(step, CheckStep | WaitUntilStep):
        _check_spec(c, ref, step, ref.path, hosts)
    if isinstance(step, ConfigStep):
        _check_config(c, ref, step, hosts)
        if step.check is not None:
            _check_spec(c, ref, step.check, (*ref.path, "check"), hosts)
    if isinstance(step, ValidateStep):
        _check_file(c, (*ref.path, "file"), step.file, name, "validation file", parse_yaml=True)
        _check_platforms(c, ref, hosts, feature=None)
    if isinstance(step, FaultStep):
        _check_fault(c, ref, step, name)


def _check_fault(c: Checker, ref: StepRef, step: FaultStep, name: str) -> None:
    """The lab's topology is read (not touched) so a wrong node or link fails validation."""
    from drill.lab.faults import resolve_link
    from drill.lab.lab import Lab

    try:
        lab = Lab(c.base_dir / step.lab)
    except DrillError as exc:
        c.at((*ref.path, "lab"), f"{name}: lab '{step.lab}': {exc}")
        return
    for index, node in enumerate(step.nodes):
        if node not in lab.plan.nodes:
            hint = _suggest(node, lab.plan.nodes)
            c.at((*ref.path, "nodes", index), f"{name}: no node '{node}' in lab {lab.name}{hint}")
    for index, link in enumerate(step.links):
        try:
            resolve_link(lab, link)
        except InputError as exc:
            c.at((*ref.path, "links", index), f"{name}: {str(exc).removeprefix('error: ')}")


def _check_isolate(c: Checker) -> None:
    """The site must be one the lab knows and cut off from something; the vantage points
    name inventory hosts. The catalog may come from --catalog, so its absence is the run's
    error, not the runbook's."""
    spec = c.model.isolate
    if spec is None:
        return
    path: JsonPath = ("isolate",)
    site = spec.site or c.model.evacuate
    if site is None:
        c.at(path, "isolate: no site to cut off: set isolate.site or the runbook's evacuate")
    for host, where in spec.vantage.items():
        if host not in c.inventory.hosts:
            hint = _suggest(host, c.inventory.hosts)
            c.at(
                (*path, "vantage", host), f"isolate.vantage: unknown host '{host}'{hint}", key=True
            )
        _check_vantage(c, (*path, "vantage", host), where)
    _check_cut(c, spec)
    if spec.lab is None:
        return
    from drill.lab.isolation import site_links
    from drill.lab.lab import Lab

    try:
        lab = Lab(c.base_dir / spec.lab)
    except DrillError as exc:
        c.at((*path, "lab"), f"isolate: lab '{spec.lab}': {exc}")
        return
    if site is not None:
        try:
            site_links(lab, site)
        except InputError as exc:
            at: JsonPath = (*path, "site") if spec.site else ("evacuate",)
            c.at(at, f"isolate: {str(exc).removeprefix('error: ')}")


def _check_cut(c: Checker, spec: IsolateSpec) -> None:
    """Each device takes one cut step: the driver refuses a commit while one is pending, and
    the cut is committed under the revert timer of ``for`` (so no ``confirm`` of its own)."""
    owner: dict[str, str] = {}
    for index, step in enumerate(spec.cut):
        path: JsonPath = ("isolate", "cut", index)
        if step.confirm is not None:
            c.at((*path, "confirm"), f"isolate.cut '{step.name}': no confirm: the cut is "
                 "committed with a revert timer of isolate.for and never confirmed")  # fmt: skip
        if step.batch is not None:
            c.at((*path, "batch"), f"isolate.cut '{step.name}': no batch: a site is cut at once")
        for host in c.hosts_of(StepRef(path, step)):
            if host in owner:
                c.at(path, f"isolate.cut '{step.name}': {host} is already cut by "
                     f"'{owner[host]}' (one cut step per device)")  # fmt: skip
            owner.setdefault(host, step.name)


def _check_on(c: Checker, ref: StepRef) -> list[str]:
    entries = ref.step.on
    raw = _node(c.parsed.data, (*ref.path, "on"))
    for index, entry in enumerate(entries):
        if entry in c.model.targets or entry in c.inventory.hosts:
            continue
        path = (*ref.path, "on", index) if isinstance(raw, list) else (*ref.path, "on")
        known = [*c.model.targets, *c.inventory.hosts]
        hint = _suggest(entry, known) or (
            f" (targets: {', '.join(sorted(c.model.targets)) or 'none'};"
            f" hosts: {', '.join(sorted(c.inventory.hosts)) or 'none'})"
        )
        c.at(path, f"unknown target or host '{entry}' in step '{ref.step.name}'{hint}")
    return c.hosts_of(ref)


def _check_config(c: Checker, ref: StepRef, step: ConfigStep, hosts: list[str]) -> None:
    name = f"step '{step.name}'"
    _check_platforms(c, ref, hosts, feature=None)
    if step.confirm is not None:
        _check_platforms(c, ref, hosts, feature="commit_confirm", path_key="confirm")
    if step.mode == "replace":
        _check_platforms(c, ref, hosts, feature="replace", path_key="mode")
    rendered: dict[str | None, str] = {}
    if step.config is not None:
        path = (*ref.path, "config")
        line, col = block_scalar_origin(c.parsed, path)
        rendered = _render_for_hosts(c, step.config, Origin(c.display, line, col), hosts)
    elif step.template is not None:
        path = (*ref.path, "template")
        text = _check_file(c, path, step.template, name, "template file")
        if text is not None:
            display = str(Path(c.display).parent / step.template)
            rendered = _render_for_hosts(c, text, Origin(display, 1, 1), hosts)
    if step.mode == "replace" and not step.allow_wipe:
        empty = sorted(str(h) for h, text in rendered.items() if empty_problem(text))
        if empty:
            source = "config" if step.config is not None else "template"
            problem = empty_problem("") or ""
            c.at((*ref.path, source), f"{name} (for {', '.join(empty)}): {problem}")


def _check_spec(
    c: Checker, ref: StepRef, spec: CheckSpec, path: JsonPath, hosts: list[str]
) -> None:
    name = f"step '{ref.step.name}'"
    sources = [
        k
        for k, v in (("getter", spec.getter), ("http", spec.http), ("traceroute", spec.traceroute))
        if v is not None
    ]
    if len(sources) != 1:
        given = f" (got {', '.join(sources)})" if sources else ""
        c.at(path, f"{name}: give exactly one of 'getter', 'http' or 'traceroute'{given}")
    if spec.getter == "cli" and not spec.commands:
        c.at((*path, "getter"), f"{name}: getter 'cli' needs 'commands'")
    if spec.commands is not None and spec.getter != "cli":
        c.at((*path, "commands"), f"{name}: 'commands' needs getter 'cli'")
    if spec.avoid_site is not None:
        if spec.traceroute is None:
            c.at((*path, "avoid_site"), f"{name}: 'avoid_site' applies to 'traceroute' only")
        elif not any(h.data.get("site") == spec.avoid_site for h in c.inventory.hosts.values()):
            c.at((*path, "avoid_site"), f"{name}: no inventory host has site '{spec.avoid_site}'")
    if spec.from_ is not None and spec.getter is not None:
        c.at((*path, "from"), f"{name}: 'from' applies to http and traceroute checks, not getters")
    _check_vantage(c, (*path, "from"), spec.from_)
    _check_assertions(c, spec, path, name)
    if spec.getter is not None and spec.getter != "cli":
        if spec.getter not in platforms.known_getters():
            hint = _suggest(spec.getter, platforms.known_getters())
            c.at((*path, "getter"), f"{name}: unknown getter '{spec.getter}'{hint}")
        else:
            _check_platforms(c, ref, hosts, feature=None, getter=spec.getter, base=path)
    elif spec.getter == "cli":
        _check_platforms(c, ref, hosts, feature="cli", base=path, path_key="getter")
    _render_spec(c, spec, path, hosts if spec.getter is not None else [])


def _check_assertions(c: Checker, spec: CheckSpec, path: JsonPath, name: str) -> None:
    """A check must assert something, and its paths must parse, before any change."""
    proves = bool(spec.assert_) or (spec.traceroute is not None and spec.avoid_site is not None)
    sources = [v for v in (spec.getter, spec.http, spec.traceroute) if v is not None]
    if len(sources) != 1:
        pass  # reported as "give exactly one of"
    elif spec.getter is not None and not proves:
        c.at(path, f"{name}: a check without 'assert' proves nothing: add assertions")
    elif spec.traceroute is not None and not proves:
        c.at(path, f"{name}: a traceroute check needs 'assert' or 'avoid_site'")
    for index, assertion in enumerate(spec.assert_):
        try:
            parse_path(assertion.path)
        except PathError as exc:
            c.at((*path, "assert", index, "path"), f"{name}: bad assertion path: {exc}")


def _render_spec(c: Checker, spec: CheckSpec, path: JsonPath, hosts: list[str]) -> None:
    """String check arguments are templates too: render them now, per host."""
    texts: list[tuple[JsonPath, str]] = []
    texts += [((*path, "args", k), v) for k, v in spec.args.items() if isinstance(v, str)]
    texts += [((*path, "commands", i), v) for i, v in enumerate(spec.commands or [])]
    texts += [
        ((*path, key), v) for key, v in (("http", spec.http), ("traceroute", spec.traceroute)) if v
    ]
    for value_path, text in texts:
        line, col = block_scalar_origin(c.parsed, value_path)
        _render_for_hosts(c, text, Origin(c.display, line, col), hosts)


def _render_command(c: Checker, ref: StepRef, step: CommandStep) -> None:
    """argv and env values are templates (rendered without a host)."""
    texts = [((*ref.path, "argv", i), v) for i, v in enumerate(step.argv)]
    texts += [((*ref.path, "env", k), v) for k, v in step.env.items()]
    for value_path, text in texts:
        line, col = block_scalar_origin(c.parsed, value_path)
        _render_for_hosts(c, text, Origin(c.display, line, col), [])


def _render_for_hosts(
    c: Checker, text: str, origin: Origin, hosts: list[str]
) -> dict[str | None, str]:
    """Render text for each host (or once without one); returns what rendered."""
    targets: list[str | None] = list(hosts) if hosts else [None]
    rendered: dict[str | None, str] = {}
    for host in targets:
        view = c.inventory.hosts[host].template_view() if host else None
        try:
            rendered[host] = templates.render_in(text, origin, c.model, c.vars, view)
        except InputError as exc:
            over = any(LIMIT_MESSAGE in d.message for d in exc.diagnostics)
            for d in exc.diagnostics:
                key = (d.file, d.line, d.col, d.message)
                if key in c._rendered:
                    continue  # the same mistake for every host: say it once
                c._rendered.add(key)
                per_host = host and not d.message.startswith("template syntax")
                suffix = f" (rendering for host '{host}')" if per_host else ""
                c.diagnostics.append(Diagnostic(d.file, d.line, d.col, d.message + suffix))
            if over:
                break  # a template over a limit is over it for every host: say it once
    return rendered


def _check_platforms(
    c: Checker,
    ref: StepRef,
    hosts: list[str],
    *,
    feature: str | None,
    getter: str | None = None,
    base: JsonPath | None = None,
    path_key: str | None = None,
) -> None:
    """Every targeted host has a platform drill knows, and that platform can do this."""
    base = base if base is not None else ref.path
    name = f"step '{ref.step.name}'"
    for host in hosts:
        platform = c.inventory.hosts[host].platform
        row = platforms.capabilities(platform)
        if platform is None:
            c.at(ref.path, f"{name}: host '{host}' has no platform in the inventory")
            continue
        if row is None:
            known = ", ".join(sorted(platforms.PLATFORMS))
            c.at(
                ref.path,
                f"{name}: host '{host}' has unknown platform '{platform}' (known: {known})",
            )
            continue
        if not row.napalm:
            c.at(ref.path, f"{name}: host '{host}' (platform {platform}) has no NAPALM driver")
            continue
        if feature is not None and not getattr(row, feature):
            what = platforms.FEATURES[feature]
            at = (*base, path_key) if path_key else base
            c.at(
                at, f"{name}: host '{host}' (platform {platform}) does not support {what}", key=True
            )
        if getter is not None and not row.supports_getter(getter):
            c.at(
                (*base, "getter"),
                f"{name}: host '{host}' (platform {platform}) has no getter '{getter}'",
            )


def _check_file(
    c: Checker, path: JsonPath, relative: str, name: str, what: str, *, parse_yaml: bool = False
) -> str | None:
    """The text of a file named relative to the runbook, or None (and a diagnostic)."""
    try:
        target = include_path(c.base_dir, relative)
    except OutsideTree as exc:
        c.at(path, f"{name}: {what}: {exc} (files must be in the runbook's directory tree)")
        return None
    if not target.is_file():
        looked = (c.base_dir / relative).parent
        c.at(path, f"{name}: {what} '{relative}' not found (looked in {looked})")
        return None
    display = str(Path(c.display).parent / relative)
    try:
        text = read_text(target, display)
        if parse_yaml:
            problem = _napalm_validation_problem(parse(text, display).data)
            if problem:
                c.at(
                    path, f"{name}: {what} '{relative}' is not a NAPALM validation file: {problem}"
                )
                return None
    except YamlError as exc:
        c.diagnostics.extend(exc.diagnostics)
        return None
    return text


def _napalm_validation_problem(data: Any) -> str | None:
    """NAPALM's format: a list of one-key mappings ``- get_x: {...}`` (or ``_mode``)."""
    if not isinstance(data, list) or not data:
        return "expected a list of '- get_...: {...}' entries"
    for index, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or len(entry) != 1:
            return f"entry {index} must be a mapping with one getter name"
        (key,) = entry
        if not isinstance(key, str) or not (key.startswith("get_") or key == "_mode"):
            return f"entry {index}: {str(key)[:40]!r} is not a getter name (get_...)"
    return None


# --- helpers --------------------------------------------------------------------------


def _suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _node(data: Any, path: JsonPath) -> Any:
    node = data
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node
