"""``${env:NAME}`` in inventory values: found (to report unset variables, located),
substituted at load time, and resolved inside nornir's own inventory objects by a
registered transform function, so the nornir the engine builds sees the same values."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from drill.runbook.yamlpos import JsonPath

logger = logging.getLogger(__name__)

ENV_PATTERN = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
TRANSFORM_NAME = "drill_env_credentials"
ATTRS = ("hostname", "port", "username", "password", "platform")


def env_references(value: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str]]:
    if isinstance(value, str):
        for match in ENV_PATTERN.finditer(value):
            yield path, match.group(1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from env_references(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from env_references(item, (*path, index))


def substitute_env(value: Any) -> Any:
    """Replace ``${env:NAME}`` in strings (recursively); an unset variable raises KeyError
    naming the variable (callers report it; validation has found it before)."""
    if isinstance(value, str):
        return ENV_PATTERN.sub(lambda m: os.environ[m.group(1)], value)
    if isinstance(value, dict):
        return {k: substitute_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v) for v in value]
    return value


def _transform(host: Any, **_: Any) -> None:
    """nornir transform function: resolve ``${env:NAME}`` on a host, its groups and the
    defaults, in place (idempotent, so shared groups may be seen many times)."""
    for obj in [host, *host.extended_groups(), host.defaults]:
        _substitute_attrs(obj, object.__getattribute__)
        obj.data = substitute_env(obj.data)
        for conn in (obj.connection_options or {}).values():
            _substitute_attrs(conn, getattr)
            conn.extras = substitute_env(conn.extras)


def _substitute_attrs(obj: Any, get: Callable[[Any, str], Any]) -> None:
    for attr_name in ATTRS:
        value = get(obj, attr_name)
        if isinstance(value, str) and ENV_PATTERN.search(value):
            setattr(obj, attr_name, substitute_env(value))


def register_transform() -> None:
    from nornir.core.plugins.inventory import TransformFunctionRegister

    if TRANSFORM_NAME not in TransformFunctionRegister.available:
        TransformFunctionRegister.register(TRANSFORM_NAME, _transform)
