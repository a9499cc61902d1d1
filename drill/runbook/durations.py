"""Durations as people write them in runbooks: ``500ms``, ``30s``, ``5m``, ``1h``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# ASCII digits only: ``\d`` would accept Arabic-Indic and other digits that float() reads.
_PATTERN = re.compile(r"^\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h)\s*$", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
JSON_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
MAX_SECONDS = 7 * 24 * 3600.0  # no drill waits a week: a bigger value is a typo


class Duration(float):
    """Seconds, as a float, parsed from a duration string.

    >>> Duration.parse("500ms")
    0.5
    >>> Duration.parse("5m")
    300.0
    >>> str(Duration.parse("1.5s"))
    '1.5s'
    >>> Duration.parse("8d")
    Traceback (most recent call last):
    ...
    ValueError: bad duration '8d': use a number and ms, s, m or h (e.g. 30s)
    """

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"bad duration {text!r}: use a number and ms, s, m or h (e.g. 30s)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if seconds > MAX_SECONDS:
            raise ValueError(f"duration {text.strip()!r} is longer than the limit of 7 days")
        return cls(seconds)

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


def positive(value: Duration | None) -> Duration | None:
    """For timeouts and intervals: zero means "never wait" or "poll without pause"."""
    if value is not None and value <= 0:
        raise ValueError("must be longer than 0s")
    return value
