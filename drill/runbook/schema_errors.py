"""Turns pydantic validation errors into one-line located diagnostics.

pydantic's ``loc`` mixes real keys with union bookkeeping (the discriminator tag, or
``literal['auto','none']`` for a union member); the path is re-walked against the data so
every message points at the YAML key or value it is about.
"""

from __future__ import annotations

import difflib
import logging
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from drill.errors import Diagnostic
from drill.runbook.model import STEP_KINDS
from drill.runbook.yamlpos import JsonPath, Positions

logger = logging.getLogger(__name__)

STEP_LISTS = ("prechecks", "steps", "postchecks", "rollback")


def schema_diagnostics(
    error: ValidationError, data: Any, positions: Positions, display: str, root: type[BaseModel]
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    seen_paths: set[JsonPath] = set()
    unmatched: dict[JsonPath, Any] = {}
    for item in error.errors():
        path, branch_applies = _clean(item["loc"], data)
        if not branch_applies:
            unmatched.setdefault(path, item)
            continue
        if path in seen_paths:
            continue  # one message per value, not one per union member
        seen_paths.add(path)
        found.append(_diagnostic(item, path, data, positions, display, root))
    for path, item in unmatched.items():
        if not any(seen[: len(path)] == path for seen in seen_paths):
            # no union member fits the value's shape: say why the first one fails
            found.append(_diagnostic(item, path, data, positions, display, root))
    return found


def _clean(loc: Iterable[int | str], data: Any) -> tuple[JsonPath, bool]:
    """The data path of loc, and whether every union member on the way fits the shape of
    the value (an error from the list member of ``'auto' | list[Step]`` is noise for a
    string)."""
    path: list[str | int] = []
    node = data
    applies = True
    after_index = False
    for element in loc:
        if isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            path.append(element)
            node = node[element]
            after_index = True
            continue
        if (
            after_index
            and isinstance(node, dict)
            and isinstance(node.get("kind"), str)
            and element == node["kind"]
        ):
            after_index = False  # the discriminator tag pydantic adds after a list index
            continue
        after_index = False
        if (
            isinstance(element, str)
            and _is_branch_name(element)
            and not (isinstance(node, dict) and element in node)
        ):
            applies = applies and _branch_applies(element, node)
        elif isinstance(node, dict) and element in node:
            path.append(element)
            node = node[element]
        elif isinstance(node, dict) and not isinstance(element, int):
            path.append(element)  # a missing key: point at its mapping, keep the name
            node = None
        else:
            applies = applies and _branch_applies(str(element), node)
    return tuple(path), applies


# Union members that are models or plain validators (``rto: 30s`` or ``rto: {...}``):
# pydantic names the member in loc; it is bookkeeping, not a key of the data.
_MODEL_BRANCHES = ("RtoSpec", "RtoBound")


def _is_branch_name(element: str) -> bool:
    return element.startswith(("function-plain[", "function-after[")) or element in _MODEL_BRANCHES


def _branch_applies(branch: str, node: Any) -> bool:
    if branch in _MODEL_BRANCHES or branch.startswith("function-after["):
        return isinstance(node, dict)  # a model (with an after-validator)
    if branch.startswith("function-plain["):
        return not isinstance(node, list | dict)  # durations are strings
    if branch.startswith("list["):
        return isinstance(node, list)
    if branch.startswith(("literal[", "str", "float", "int")):
        return not isinstance(node, list | dict)
    return True


def _node(data: Any, path: JsonPath) -> Any:
    node = data
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _diagnostic(
    item: Any,
    path: JsonPath,
    data: Any,
    positions: Positions,
    display: str,
    root: type[BaseModel],
) -> Diagnostic:
    kind = item["type"]
    where = describe(path[:-1], data) if path else "the runbook"
    key = str(path[-1]) if path else ""
    if kind == "extra_forbidden":
        pos = positions.key(path)
        allowed = sorted(allowed_keys(root, path[:-1], data))
        message = f"unknown key '{key}' in {where}{_suggest(key, allowed)}"
    elif kind == "missing":
        pos = positions.value(path[:-1])
        message = f"missing required key '{key}' in {where}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        pos = (
            positions.value((*path, "kind"))
            if kind == "union_tag_invalid"
            else positions.value(path)
        )
        message = _tag_message(item, path, data)
    else:
        pos = positions.value(path)
        message = f"{_field(path, data)}: {_plain(item)}"
    return Diagnostic(display, pos.line, pos.col, message)


def _tag_message(item: Any, path: JsonPath, data: Any) -> str:
    ctx = item.get("ctx") or {}
    what = "probe" if path[:1] == ("probes",) else "step"
    expected = str(ctx.get("expected_tags", "")).replace("'", "") or (
        "packet, service, session" if what == "probe" else ", ".join(STEP_KINDS)
    )
    if item["type"] == "union_tag_not_found":
        return f"missing 'kind' in {describe(path, data)} (one of: {expected})"
    return f"unknown {what} kind '{ctx.get('tag')}' in {describe(path, data)} (known: {expected})"


def _plain(item: Any) -> str:
    if item["type"] == "string_pattern_mismatch":
        return "use letters, digits, '.', '_' and '-', starting with a letter or digit"
    msg = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = msg.replace("Input should be", "must be").replace("Input", "value")
    value = item.get("input")
    if (
        item["type"] == "literal_error"
        and isinstance(value, str | int | float)
        and len(str(value)) < 60
    ):
        msg += f" (got {value!r})"
    return msg


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(allowed)})" if allowed else ""


def describe(path: JsonPath, data: Any) -> str:
    """Human name for the object at path: "step 'drain-dc1'", "'check' of step 'x'"..."""
    owner_end = _owner_end(path)
    if owner_end == 0:
        inner = _dotted(path)
        return f"'{inner}'" if inner else "the runbook"
    owner = _owner_name(path[:owner_end], data)
    rest = _dotted(path[owner_end:])
    return f"'{rest}' of {owner}" if rest else owner


def _field(path: JsonPath, data: Any) -> str:
    owner_end = _owner_end(path)
    if owner_end == 0:
        return f"'{_dotted(path)}'"
    owner = _owner_name(path[:owner_end], data)
    rest = _dotted(path[owner_end:])
    return f"{owner}, '{rest}'" if rest else owner


def _owner_end(path: JsonPath) -> int:
    """Length of the path prefix naming the innermost step, probe or target."""
    end = 0
    for index in range(len(path) - 1):
        here, nxt = path[index], path[index + 1]
        if here in STEP_LISTS and isinstance(nxt, int):
            end = index + 2
        elif index == 0 and (here == "targets" or (here == "probes" and isinstance(nxt, int))):
            end = 2
    return end


def _owner_name(prefix: JsonPath, data: Any) -> str:
    node = _node(data, prefix)
    label = {"probes": "probe", "targets": "target"}.get(str(prefix[0]), "step")
    if label == "target":
        return f"target '{prefix[-1]}'"
    name = node.get("name") if isinstance(node, dict) else None
    if isinstance(name, str) and name:
        return f"{label} '{name}'"
    return f"{label} {_dotted(prefix)}"


def _dotted(path: JsonPath) -> str:
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else (f".{element}" if text else element)
    return text


# --- which keys a mapping may hold ------------------------------------------------------


def allowed_keys(root: type[BaseModel], path: JsonPath, data: Any) -> set[str]:
    model = _model_at(root, path, data)
    if model is None:
        return set()
    return {field.alias or name for name, field in model.model_fields.items()}


def _model_at(root: type[BaseModel], path: JsonPath, data: Any) -> type[BaseModel] | None:
    current: Any = root
    node = data
    for key in path:
        model = _pick(current, node)
        current = _field_type(model, key) if model is not None else _item_type(current, key)
        if current is None:
            return None
        node = _node(node, (key,))
    return _pick(current, node)


def _field_type(model: type[BaseModel], key: Any) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field.annotation
    return None


def _item_type(annotation: Any, key: Any) -> Any:
    for candidate in _union_members(annotation):
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin is list and isinstance(key, int):
            return args[0]
        if origin is dict and not isinstance(key, int):
            return args[1]
    return None


def _union_members(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        members: list[Any] = []
        for arg in typing.get_args(annotation):
            members.extend(_union_members(arg))
        return members
    return [annotation]


def _pick(annotation: Any, node: Any) -> type[BaseModel] | None:
    """The model class of annotation that node is meant to be (by 'kind' for unions)."""
    models = [
        m for m in _union_members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)
    ]
    if len(models) <= 1:
        return models[0] if models else None
    kind = node.get("kind") if isinstance(node, dict) else None
    for model in models:
        field = model.model_fields.get("kind")
        if field is not None and kind in typing.get_args(field.annotation):
            return model
    return None
