"""containerlab's inheritance: a node's settings from node > group > kind > defaults.

Mirrors ``types/topology.go`` in containerlab: a scalar comes from the most specific level
that sets it; lists (``exec``, ``binds``) are concatenated from defaults to node with
duplicates dropped; maps (``labels``, ``env``, ``sysctls``) are merged with the most specific
level winning. ``kind`` resolves node > the node's own group > the defaults' group >
defaults; ``group`` resolves node > ``kinds[kind].group`` > defaults. ``mgmt-ipv4`` is a
node-only setting (containerlab reads it from the node definition alone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap

log = logging.getLogger(__name__)


def _mapping(value: Any) -> CommentedMap | None:
    return value if isinstance(value, CommentedMap) else None


def _level(table: CommentedMap, name: Any) -> CommentedMap | None:
    """``table[name]`` when ``name`` is a string naming a mapping there (bad input: None)."""
    return _mapping(table.get(name)) if isinstance(name, str) else None


def _name(level: CommentedMap | None, key: str) -> Any:
    return level.get(key) if level is not None else None


@dataclass(frozen=True)
class Layers:
    """The four levels a node's settings come from; absent levels are None."""

    node: CommentedMap
    group: CommentedMap | None
    kind: CommentedMap | None
    defaults: CommentedMap | None
    kind_name: Any
    group_name: Any

    def most_specific_first(self) -> Iterator[CommentedMap]:
        return (m for m in (self.node, self.group, self.kind, self.defaults) if m is not None)

    def scalar(self, key: str) -> tuple[Any, CommentedMap | None]:
        """The value of ``key`` and the level (mapping) that set it."""
        for level in self.most_specific_first():
            if key in level and level[key] is not None:
                return level[key], level
        return None, None

    def list_items(self, key: str) -> list[tuple[Any, CommentedMap]]:
        """Items of the list ``key`` from defaults to node, each with the level that set it.

        A level whose value is not a list is returned as a single item for the caller to
        report (its position is the level's ``key``).
        """
        out: list[tuple[Any, CommentedMap]] = []
        for level in reversed(list(self.most_specific_first())):
            value = level.get(key)
            if value is None:
                continue
            if isinstance(value, list):
                out += [(item, level) for item in value]
            else:
                out.append((value, level))
        return out

    def merged_map(self, key: str) -> tuple[dict[Any, Any], list[CommentedMap]]:
        """The maps ``key`` merged (most specific wins), and the levels that were not maps."""
        merged: dict[Any, Any] = {}
        bad: list[CommentedMap] = []
        for level in reversed(list(self.most_specific_first())):
            value = level.get(key)
            if value is None:
                continue
            if isinstance(value, dict):
                merged.update(value)
            else:
                bad.append(level)
        return merged, bad


def node_layers(topo: CommentedMap, raw: CommentedMap) -> Layers:
    """Resolve a node's kind and group the way containerlab does, and collect its levels."""
    defaults = _mapping(topo.get("defaults"))
    groups = _mapping(topo.get("groups")) or CommentedMap()
    kinds = _mapping(topo.get("kinds")) or CommentedMap()
    kind = raw.get("kind")
    if not kind:
        kind = _name(_level(groups, raw.get("group")), "kind")
    if not kind and defaults is not None:
        kind = _name(_level(groups, defaults.get("group")), "kind")
    if not kind and defaults is not None:
        kind = defaults.get("kind")
    kind_level = _level(kinds, kind)
    group = raw.get("group")
    if group is None and kind_level is not None:
        group = kind_level.get("group")
    if group is None and defaults is not None:
        group = defaults.get("group")
    group_level = _level(groups, group)
    return Layers(raw, group_level, kind_level, defaults, kind, group)


def dedup(items: list[str]) -> list[str]:
    """Keep the first of each value, in order (containerlab's MergeStringSlices).

    >>> dedup(["a", "b", "a"])
    ['a', 'b']
    """
    return list(dict.fromkeys(items))
