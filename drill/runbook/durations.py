"""Durations as people write them in runbooks: ``500ms``, ``30s``, ``5m``, ``1h``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
JSON_PATTERN = r"^\d+(\.\d+)?(ms|s|m|h)$"


class Duration(float):
    """Seconds, as a float, parsed from a duration string.

    >>> Duration.parse("500ms")
    0.5
    >>> Duration.parse("5m")
    300.0
    >>> str(Duration.parse("1.5s"))
    '1.5s'
    """

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"bad duration {text!r}: use a number and ms, s, m or h (e.g. 30s)")
        return cls(float(match.group(1)) * _UNIT_SECONDS[match.group(2)])

    def __str__(self) -> str:
        seconds = float(self)
        if seconds < 1:
            return f"{seconds * 1000:g}ms"
        return f"{seconds:g}s"

    @classmethod
    def _validate(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool) or not isinstance(value, str):
            raise ValueError("a duration is a string such as 500ms, 30s, 5m or 1h")
        return cls.parse(value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": JSON_PATTERN, "examples": ["500ms", "30s", "5m"]}
