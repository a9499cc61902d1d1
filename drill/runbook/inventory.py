"""Reads a nornir SimpleInventory (a directory, or a nornir config file naming the files)
without connecting to anything, resolving groups and data the way nornir does.

Credentials may come from the environment: any string value may contain
``${env:NAME}``; it is replaced at load time, and an unset variable is a located error.
Resolved secrets are never kept in the Inventory and never printed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drill.errors import Diagnostic, InputError
from drill.names import name_problem
from drill.runbook.envsubst import ATTRS as _ATTRS
from drill.runbook.envsubst import (
    TRANSFORM_NAME,
    env_references,
    register_transform,
    substitute_env,
)
from drill.runbook.model import TargetSelector
from drill.runbook.yamlpos import (
    JsonPath,
    ParsedYaml,
    Pos,
    YamlError,
    one_line,
    parse,
    read_text,
)
from drill.secrets import remember, secret_values

logger = logging.getLogger(__name__)

_ELEMENT_KEYS = frozenset({*_ATTRS, "groups", "data", "connection_options"})
_CONNECTION_KEYS = frozenset({*_ATTRS, "extras"})
# A host with more groups than this (nested ones included) is a mistake or an attack: the
# work to resolve an inventory stays within hosts x this.
MAX_GROUPS_PER_HOST = 256
_HOST_KEY_POLICIES = frozenset({"strict", "accept-new", "ignore"})


@dataclass(frozen=True)
class InventoryFiles:
    host_file: Path
    group_file: Path
    defaults_file: Path
    passthrough: dict[str, Any] = field(default_factory=dict)  # runner, core... of a config


@dataclass(frozen=True)
class InventoryHost:
    """One host as nornir would see it, minus secrets."""

    name: str
    hostname: str | None
    platform: str | None
    port: int | None
    username: str | None
    groups: tuple[str, ...]  # nornir's extended_groups() order: nested groups included
    data: dict[str, Any]  # nornir's extended_data(): host, then groups, then defaults

    def template_view(self) -> dict[str, Any]:
        """What templates see as ``host``."""
        return {
            "name": self.name,
            "hostname": self.hostname,
            "platform": self.platform,
            "groups": list(self.groups),
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Inventory:
    path: Path | None
    hosts: dict[str, InventoryHost]
    groups: frozenset[str]

    @classmethod
    def empty(cls) -> Inventory:
        return cls(None, {}, frozenset())

    def select(self, selector: TargetSelector) -> list[str]:
        """Host names matching every criterion given (hosts: any name listed; groups: member
        of any group listed, nested groups count; data: every key equals), sorted."""
        return sorted(name for name, host in self.hosts.items() if _matches(host, selector))


def _matches(host: InventoryHost, selector: TargetSelector) -> bool:
    if selector.hosts is not None and host.name not in selector.hosts:
        return False
    if selector.groups is not None and not set(selector.groups) & set(host.groups):
        return False
    if selector.data is not None:
        for key, wanted in selector.data.items():
            if key not in host.data or host.data[key] != wanted:
                return False
    return True


# --- locating the files ---------------------------------------------------------------


def inventory_files(path: Path) -> InventoryFiles:
    """The three SimpleInventory files for a directory or a nornir config file. Relative
    file names in a config file are relative to the config file's directory."""
    display = str(path)
    if path.is_dir():
        return InventoryFiles(path / "hosts.yaml", path / "groups.yaml", path / "defaults.yaml", {})
    if not path.exists():
        raise InputError([Diagnostic(display, 1, 1, "inventory not found")])
    parsed = _parse_file(path)
    config = parsed.data
    if not isinstance(config, dict) or not isinstance(config.get("inventory"), dict):
        message = (
            "not a nornir config file (no 'inventory' mapping): give a SimpleInventory "
            "directory or a nornir config file"
        )
        raise InputError([_at(display, parsed, (), message)])
    inventory = config.get("inventory", {})
    plugin = inventory.get("plugin", "SimpleInventory")
    if plugin != "SimpleInventory":
        message = f"inventory plugin {plugin!r} is not supported (use SimpleInventory)"
        raise InputError([_at(display, parsed, ("inventory", "plugin"), message)])
    options = inventory.get("options") or {}
    if not isinstance(options, dict):
        message = "'inventory.options' must be a mapping"
        raise InputError([_at(display, parsed, ("inventory", "options"), message)])
    base = path.parent

    def option(key: str, default: str) -> Path:
        value = options.get(key, default)
        if not isinstance(value, str):
            message = f"'inventory.options.{key}' must be a file name"
            raise InputError([_at(display, parsed, ("inventory", "options", key), message)])
        return base / Path(value).expanduser()

    keep = {k: v for k, v in config.items() if k in ("runner", "core", "ssh", "user_defined")}
    return InventoryFiles(
        option("host_file", "hosts.yaml"),
        option("group_file", "groups.yaml"),
        option("defaults_file", "defaults.yaml"),
        keep,
    )


def nornir_config(path: Path) -> dict[str, Any]:
    """Keyword arguments for ``InitNornir(**nornir_config(path))``: the same files this
    module reads, absolute, with nornir's log file off and ``${env:NAME}`` resolved by a
    registered transform function."""
    files = inventory_files(path)
    register_transform()
    config: dict[str, Any] = dict(files.passthrough)
    config["inventory"] = {
        "plugin": "SimpleInventory",
        "options": {
            "host_file": str(files.host_file.resolve()),
            "group_file": str(files.group_file.resolve()),
            "defaults_file": str(files.defaults_file.resolve()),
        },
        "transform_function": TRANSFORM_NAME,
    }
    config["logging"] = {"enabled": False}
    return config


# --- reading --------------------------------------------------------------------------


def load_inventory(path: Path) -> Inventory:
    """Read and resolve the inventory at path; all problems raise one InputError."""
    try:
        return _load(path)
    except InputError as exc:
        raise InputError(one_line(exc.diagnostics)) from None


def _load(path: Path) -> Inventory:
    files = inventory_files(path)
    reader = _Reader()
    if not files.host_file.is_file():
        raise InputError([Diagnostic(str(files.host_file), 1, 1, "inventory hosts file not found")])
    hosts = reader.elements(files.host_file, "host")
    groups = reader.elements(files.group_file, "group") if files.group_file.is_file() else {}
    defaults = reader.defaults(files.defaults_file) if files.defaults_file.is_file() else {}
    reader.check_groups(hosts, groups)
    if reader.diagnostics:
        raise InputError(reader.diagnostics)
    for element in [*hosts.values(), *groups.values()]:
        remember(secret_values(substitute_env(element.raw)))
    remember(secret_values(substitute_env(defaults)))
    ancestry = group_ancestry(groups)
    resolved = {
        name: _resolve(name, raw, groups, defaults, ancestry) for name, raw in hosts.items()
    }
    return Inventory(path, resolved, frozenset(groups))


@dataclass
class _Element:
    raw: dict[str, Any]
    parsed: ParsedYaml
    display: str
    path: JsonPath


class _Reader:
    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def elements(self, path: Path, what: str) -> dict[str, _Element]:
        parsed = self._parse(path)
        if parsed is None:
            return {}
        display = str(path)
        if parsed.data is None:
            if what == "host":
                self.diagnostics.append(Diagnostic(display, 1, 1, "inventory has no hosts"))
            return {}
        if not isinstance(parsed.data, dict):
            self.diagnostics.append(_at(display, parsed, (), f"expected a mapping of {what}s"))
            return {}
        found: dict[str, _Element] = {}
        for name, raw in parsed.data.items():
            key = (name,)
            problem = name_problem(str(name), f"{what} name")
            if problem is not None:
                self.diagnostics.append(_key_at(display, parsed, key, problem))
                continue
            if raw is None:
                raw = {}
            if not isinstance(raw, dict):
                message = f"{what} {name!r} must be a mapping"
                self.diagnostics.append(_at(display, parsed, key, message))
                continue
            self._check_element(parsed, display, key, raw, f"{what} {name!r}", _ELEMENT_KEYS)
            found[str(name)] = _Element(raw, parsed, display, key)
        return found

    def defaults(self, path: Path) -> dict[str, Any]:
        parsed = self._parse(path)
        if parsed is None or parsed.data is None:
            return {}
        display = str(path)
        if not isinstance(parsed.data, dict):
            self.diagnostics.append(_at(display, parsed, (), "defaults must be a mapping"))
            return {}
        allowed = _ELEMENT_KEYS - {"groups"}
        self._check_element(parsed, display, (), parsed.data, "defaults", allowed)
        return parsed.data

    def _parse(self, path: Path) -> ParsedYaml | None:
        try:
            parsed = _parse_file(path)
        except InputError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return None
        self.diagnostics.extend(parsed.soft)
        return parsed

    def _check_element(
        self,
        parsed: ParsedYaml,
        display: str,
        base: JsonPath,
        raw: dict[str, Any],
        what: str,
        allowed: frozenset[str],
    ) -> None:
        for key, value in raw.items():
            path = (*base, key)
            if key not in allowed:
                message = f"unknown key {key!r} in {what} (known: {', '.join(sorted(allowed))})"
                self.diagnostics.append(_key_at(display, parsed, path, message))
                continue
            problem = _type_problem(key, value)
            if problem:
                self.diagnostics.append(_at(display, parsed, path, f"{what}: {problem}"))
        for path, name in env_references(raw, base):
            if name not in os.environ:
                message = f"environment variable {name!r} is not set (needed by {what})"
                self.diagnostics.append(_at(display, parsed, path, message))

    def check_groups(self, hosts: dict[str, _Element], groups: dict[str, _Element]) -> None:
        for element in [*hosts.values(), *groups.values()]:
            members = element.raw.get("groups") or []
            if not isinstance(members, list):
                continue
            for index, group in enumerate(members):
                if not isinstance(group, str):
                    continue  # reported as a type problem already
                if group not in groups:
                    known = ", ".join(sorted(groups)) or "none defined"
                    message = f"unknown group {group!r} (groups: {known})"
                    path = (*element.path, "groups", index)
                    self.diagnostics.append(_at(element.display, element.parsed, path, message))
        stuck = _not_acyclic(groups)
        for name in [g for g in groups if g in stuck][:20]:
            if _in_cycle(name, groups):
                element = groups[name]
                message = f"group {name!r} is its own ancestor (cycle in 'groups')"
                path = (*element.path, "groups")
                self.diagnostics.append(_at(element.display, element.parsed, path, message))
        if stuck:
            return
        ancestry = group_ancestry(groups)
        for element in [*hosts.values(), *groups.values()]:
            count = len(_extended_groups(_group_names(element.raw), groups, ancestry))
            if count > MAX_GROUPS_PER_HOST:
                message = (
                    f"{count} groups with nested ones (the limit is {MAX_GROUPS_PER_HOST}): "
                    "flatten the group graph"
                )
                path = (*element.path, "groups")
                self.diagnostics.append(_at(element.display, element.parsed, path, message))


def _type_problem(key: str, value: Any) -> str | None:
    expected: dict[str, tuple[type[Any], ...]] = {
        "hostname": (str,),
        "username": (str,),
        "password": (str,),
        "platform": (str,),
        "port": (int,),
        "groups": (list,),
        "data": (dict,),
        "connection_options": (dict,),
    }
    if value is None or key not in expected:
        return None
    if isinstance(value, bool) or not isinstance(value, expected[key]):
        names = {str: "a string", int: "an integer", list: "a list", dict: "a mapping"}
        # Never echo the value: it may be a secret.
        return f"'{key}' must be {names[expected[key][0]]}"
    if key == "port" and not 0 < value < 65536:
        return "'port' must be between 1 and 65535"
    if key == "groups" and not all(isinstance(g, str) for g in value):
        return "'groups' must be a list of group names"
    if key == "connection_options":
        for conn in value.values():
            if not isinstance(conn, dict) or set(conn) - _CONNECTION_KEYS:
                return f"each connection option must be a mapping of {sorted(_CONNECTION_KEYS)}"
            problem = _connection_problem(conn)
            if problem:
                return problem
    return None


def _connection_problem(conn: dict[str, Any]) -> str | None:
    """NAPALM connection options: what the driver would choke on at connect time."""
    port = conn.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        return "connection option 'port' must be an integer"
    if isinstance(port, int) and not 0 < port < 65536:
        return "connection option 'port' must be between 1 and 65535"
    extras = conn.get("extras")
    if extras is None:
        return None
    if not isinstance(extras, dict):
        return "'extras' must be a mapping"
    optional = extras.get("optional_args")
    if optional is None:
        return None
    if not isinstance(optional, dict):
        return "'optional_args' must be a mapping"
    port = optional.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        return "optional_args 'port' must be an integer"
    if isinstance(port, int) and not 0 < port < 65536:
        return "optional_args 'port' must be between 1 and 65535"
    for name in ("timeout", "command_timeout"):
        value = optional.get(name)
        bad_type = isinstance(value, bool) or not isinstance(value, int | float)
        if value is not None and (bad_type or not 0 < value <= 3600):
            return f"optional_args '{name}' must be a number of seconds (0 < {name} <= 3600)"
    policy = optional.get("host_key_policy")
    if policy is not None and policy not in _HOST_KEY_POLICIES:
        return f"optional_args 'host_key_policy' must be one of {sorted(_HOST_KEY_POLICIES)}"
    return None


def _in_cycle(start: str, groups: dict[str, _Element]) -> bool:
    seen: set[str] = set()
    todo = [g for g in _parents(start, groups)]
    while todo:
        current = todo.pop()
        if current == start:
            return True
        if current in seen:
            continue
        seen.add(current)
        todo.extend(_parents(current, groups))
    return False


def _parents(name: str, groups: dict[str, _Element]) -> list[str]:
    element = groups.get(name)
    return [g for g in _group_names(element.raw) if g in groups] if element else []


def _group_names(raw: dict[str, Any]) -> list[str]:
    """The group names an element lists; malformed lists are reported elsewhere."""
    members = raw.get("groups")
    return [g for g in members if isinstance(g, str)] if isinstance(members, list) else []


def _not_acyclic(groups: dict[str, _Element]) -> set[str]:
    """Groups left over by a topological sort (on or below a cycle); O(groups + edges)."""
    children: dict[str, list[str]] = {name: [] for name in groups}
    pending = {name: 0 for name in groups}
    for name in groups:
        for parent in _parents(name, groups):
            children[parent].append(name)
            pending[name] += 1
    ready = [name for name, count in pending.items() if count == 0]
    while ready:
        current = ready.pop()
        for child in children[current]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    return {name for name, count in pending.items() if count > 0}


def group_ancestry(groups: dict[str, _Element]) -> dict[str, tuple[str, ...]]:
    """Each group's nested groups in nornir's order, computed once per group (a diamond
    or a deep chain costs groups x ancestors, not an exponential walk). Needs no cycle."""
    memo: dict[str, tuple[str, ...]] = {}
    for start in groups:
        stack = [start]
        while stack:
            name = stack[-1]
            parents = _parents(name, groups)
            todo = [p for p in parents if p not in memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if name in memo:
                continue
            memo[name] = tuple(_merge_order(parents, memo))
    return memo


def _merge_order(names: list[str], memo: dict[str, tuple[str, ...]]) -> list[str]:
    """nornir's extended_groups(): depth first, in declaration order, no repeats."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
        for parent in memo.get(name, ()):
            seen.setdefault(parent, None)
        if len(seen) > MAX_GROUPS_PER_HOST:
            break
    return list(seen)


def _extended_groups(
    names: list[str],
    groups: dict[str, _Element],
    ancestry: dict[str, tuple[str, ...]] | None = None,
) -> list[str]:
    memo = ancestry if ancestry is not None else group_ancestry(groups)
    return _merge_order([n for n in names if n in groups], memo)


def _resolve(
    name: str,
    host: _Element,
    groups: dict[str, _Element],
    defaults: dict[str, Any],
    ancestry: dict[str, tuple[str, ...]],
) -> InventoryHost:
    own_groups = [g for g in _group_names(host.raw) if g in groups]
    extended = _extended_groups(own_groups, groups, ancestry)
    chain = [host.raw, *(groups[g].raw for g in extended), defaults]

    def attr(key: str) -> Any:
        for layer in chain:
            if layer.get(key) is not None:
                return substitute_env(layer[key])
        return None

    data: dict[str, Any] = {}
    for layer in chain:
        for key, value in (layer.get("data") or {}).items():
            data.setdefault(key, substitute_env(value))
    return InventoryHost(
        name=name,
        hostname=attr("hostname"),
        platform=attr("platform"),
        port=attr("port"),
        username=attr("username"),
        groups=tuple(extended),
        data=data,
    )


# --- helpers --------------------------------------------------------------------------


def _parse_file(path: Path) -> ParsedYaml:
    display = str(path)
    try:
        return parse(read_text(path, display), display)
    except YamlError as exc:
        raise InputError(exc.diagnostics) from None


def _at(display: str, parsed: ParsedYaml, path: JsonPath, message: str) -> Diagnostic:
    pos: Pos = parsed.positions.value(path)
    return Diagnostic(display, pos.line, pos.col, message)


def _key_at(display: str, parsed: ParsedYaml, path: JsonPath, message: str) -> Diagnostic:
    pos = parsed.positions.key(path)
    return Diagnostic(display, pos.line, pos.col, message)
