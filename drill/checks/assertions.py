"""The assertion language over getter results (``assert:`` in check, wait_until and config
``check``).

Paths
-----
A path names values inside a getter result, one segment per level, separated by dots:

* ``facts.hostname`` -- dictionary keys;
* ``interfaces.*.is_up`` -- ``*`` matches every key (or list index) at that level;
* ``vrrp.0.priority`` -- a whole-number segment indexes a list;
* ``global.peers["198.51.100.1"].is_up`` -- a key in double or single quotes inside
  ``[...]`` is taken literally, dots included;
* ``global.peers.198.51.100.1.is_up`` -- unquoted keys containing dots also work: when a
  segment is not a key, the following segments are joined back with dots until one is (the
  longest match wins), so IP addresses as keys need no quoting. Quote when in doubt.
* ``""`` (empty) -- the whole result.

Quantifiers
-----------
Without a quantifier the predicate applies to the single value at ``path`` (a path matching
several values is a failure: say ``all``/``any``). ``all`` and ``any`` apply the predicate to
every value matched and fail when nothing matched (vacuous truth is no proof in a drill).
``count`` applies its predicate to the number of values matched by a wildcard path, or to the
length of the collection at a plain path (0 when absent).

Comparisons
-----------
``equals`` (with ``tolerance``: absolute ``5`` or relative ``'10%'`` of the expected value),
``not_equals``, ``in``, ``not_in``, ``regex`` (searched in the value as text), ``lt``, ``le``,
``gt``, ``ge``, ``range: [low, high]`` (inclusive), ``exists`` (true: the path is present).

>>> from drill.runbook.model import Assertion
>>> data = {"global": {"peers": {"198.51.100.1": {"is_up": False}}}}
>>> evaluate(Assertion(path="global.peers.*.is_up", all={"equals": True}), data, "dc1-edge")
['dc1-edge: global.peers.198.51.100.1.is_up: expected all equals True, got False']
>>> evaluate(Assertion(path='global.peers["198.51.100.1"].is_up', equals=False), data, "r1")
[]
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from drill.runbook.model import Assertion, Predicate

log = logging.getLogger(__name__)

WILDCARD = object()
_MISSING = object()


@dataclass(frozen=True)
class Segment:
    key: str | object  # str, or WILDCARD
    quoted: bool = False


class PathError(ValueError):
    """A path that cannot be parsed."""


def parse_path(path: str) -> list[Segment]:
    """Split a path into segments (a fresh list; parsing is cached).

    >>> [s.key for s in parse_path('a.b["1.2.3.4"].c')]
    ['a', 'b', '1.2.3.4', 'c']
    >>> parse_path("a.*")[1].key is WILDCARD
    True
    """
    return list(_parse(path))


@functools.lru_cache(maxsize=1024)
def _parse(path: str) -> tuple[Segment, ...]:
    # The same few paths are evaluated on every host of every step: parse each once.
    segments: list[Segment] = []
    i, n = 0, len(path)
    current = ""
    while i < n:
        ch = path[i]
        if ch == ".":
            if current:
                segments.append(_plain(current))
            current = ""
            i += 1
        elif ch == "[":
            if current:
                segments.append(_plain(current))
                current = ""
            end, key = _bracket(path, i)
            segments.append(Segment(key, quoted=True))
            i = end
        else:
            current += ch
            i += 1
    if current:
        segments.append(_plain(current))
    return tuple(segments)


def _plain(text: str) -> Segment:
    return Segment(WILDCARD if text == "*" else text)


def _bracket(path: str, start: int) -> tuple[int, str]:
    """Parse ``["key"]``, ``['key']`` or ``[3]`` at ``start``; return (index after, key)."""
    i = start + 1
    if i < len(path) and path[i] in "\"'":
        quote = path[i]
        close = path.find(quote, i + 1)
        if close == -1 or close + 1 >= len(path) or path[close + 1] != "]":
            raise PathError(f"unterminated quoted key in path {path!r}")
        return close + 2, path[i + 1 : close]
    close = path.find("]", i)
    if close == -1:
        raise PathError(f"unterminated '[' in path {path!r}")
    return close + 1, path[i:close]


def resolve(data: Any, path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) the path matches; empty when nothing does.

    >>> resolve({"a": [{"b": 1}, {"b": 2}]}, "a.*.b")
    [('a.0.b', 1), ('a.1.b', 2)]
    >>> resolve({"peers": {"198.51.100.1": {"up": True}}}, "peers.198.51.100.1.up")
    [('peers.198.51.100.1.up', True)]
    """
    return list(_walk(data, list(_parse(path)), []))


def _walk(value: Any, segments: list[Segment], trail: list[str]) -> Iterator[tuple[str, Any]]:
    if not segments:
        yield ".".join(trail), value
        return
    head, rest = segments[0], segments[1:]
    if head.key is WILDCARD:
        for key, child in _children(value):
            yield from _walk(child, rest, [*trail, key])
        return
    assert isinstance(head.key, str)
    child = _child(value, head.key)
    if child is not _MISSING:
        yield from _walk(child, rest, [*trail, head.key])
        return
    if head.quoted or not isinstance(value, dict):
        return
    # Unquoted keys with dots (IP addresses): join following segments, longest match first.
    plain = [s for s in rest if isinstance(s.key, str) and not s.quoted]
    for length in range(len(plain), 0, -1):
        if any(s.key is WILDCARD or s.quoted for s in rest[:length]):
            continue
        joined = ".".join([head.key, *(str(s.key) for s in rest[:length])])
        if joined in value:
            yield from _walk(value[joined], rest[length:], [*trail, joined])
            return


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield str(key), child
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield str(index), child


def _child(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        # JSON keys are strings, but NAPALM getters sometimes use ints (VRRP groups, ASNs).
        if key.lstrip("-").isdigit() and int(key) in value:
            return value[int(key)]
        return _MISSING
    if isinstance(value, list | tuple) and key.isdigit() and int(key) < len(value):
        return value[int(key)]
    return _MISSING


# --- predicates -------------------------------------------------------------------------


def show(value: Any) -> str:
    """Values in messages: strings quoted, everything else as Python prints it."""
    return repr(value) if isinstance(value, str) else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _tolerance(expected: float, tolerance: str | float) -> float:
    if isinstance(tolerance, str):
        text = tolerance.strip()
        if text.endswith("%"):
            return abs(expected) * float(text[:-1]) / 100.0
        return float(text)
    return float(tolerance)


def _equals(actual: Any, expected: Any, tolerance: str | float | None) -> bool:
    if tolerance is not None:
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return math.isclose(a, e, rel_tol=0.0, abs_tol=_tolerance(e, tolerance) + 1e-12)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or (type(actual) is type(expected) and actual == expected)
    return bool(actual == expected)


def _compare(op: str, actual: Any, bound: float) -> bool:
    a = _number(actual)
    if a is None:
        return False
    return {
        "lt": a < bound,
        "le": a <= bound,
        "gt": a > bound,
        "ge": a >= bound,
    }[op]


ORDER = ("equals", "not_equals", "in_", "not_in", "regex", "lt", "le", "gt", "ge", "range")


def failed_comparisons(pred: Predicate, actual: Any) -> list[str]:
    """The comparisons of ``pred`` (other than ``exists``) that ``actual`` does not satisfy,
    each as ``"<op> <expected>"``."""
    fields = pred.model_fields_set
    failed: list[str] = []
    for name in ORDER:
        if name not in fields:
            continue
        expected = getattr(pred, name)
        if not _holds(name, actual, expected, pred.tolerance):
            label = "in" if name == "in_" else name
            shown = show(expected) if name != "range" else f"[{expected[0]:g}, {expected[1]:g}]"
            if name == "equals" and pred.tolerance is not None:
                tol = pred.tolerance
                shown += f" ± {tol:g}" if isinstance(tol, float) else f" ± {tol}"
            failed.append(f"{label} {shown}")
    return failed


def _holds(name: str, actual: Any, expected: Any, tolerance: str | float | None) -> bool:
    if name == "equals":
        return _equals(actual, expected, tolerance)
    if name == "not_equals":
        return not _equals(actual, expected, None)
    if name == "in_":
        return any(_equals(actual, e, None) for e in expected)
    if name == "not_in":
        return not any(_equals(actual, e, None) for e in expected)
    if name == "regex":
        return actual is not None and re.search(expected, str(actual)) is not None
    if name == "range":
        a = _number(actual)
        return a is not None and expected[0] <= a <= expected[1]
    return _compare(name, actual, float(expected))


# --- assertions -------------------------------------------------------------------------


def evaluate(assertion: Assertion, data: Any, host: str = "") -> list[str]:
    """Check one assertion against one getter result; return failure messages (empty: holds).

    Messages read ``HOST: PATH: expected OP EXPECTED, got ACTUAL``.
    """
    prefix = f"{host}: " if host else ""
    try:
        matches = resolve(data, assertion.path)
    except PathError as exc:
        return [f"{prefix}{exc}"]
    wildcard = any(s.key is WILDCARD for s in _parse(assertion.path))
    shown_path = assertion.path or "(result)"
    if assertion.count is not None:
        failures = _count(assertion.count, matches, wildcard, shown_path)
    elif assertion.all is not None or assertion.any is not None:
        failures = _quantified(assertion, matches, shown_path)
    else:
        failures = _single(assertion, matches, shown_path)
    suffix = f" ({assertion.message})" if assertion.message else ""
    return [f"{prefix}{f}{suffix}" for f in failures]


def _exists_failure(pred: Predicate, present: bool, path: str) -> list[str]:
    if "exists" in pred.model_fields_set and pred.exists is not None and pred.exists != present:
        return [f"{path}: expected exists {pred.exists}, got {present}"]
    return []


def _single(pred: Predicate, matches: list[tuple[str, Any]], path: str) -> list[str]:
    if len(matches) > 1:
        return [f"{path}: matched {len(matches)} values; use all, any or count"]
    failures = _exists_failure(pred, bool(matches), path)
    comparisons = set(pred.model_fields_set) & set(ORDER)
    if not comparisons:
        return failures
    if not matches:
        return [*failures, f"{path}: not found"]
    where, actual = matches[0]
    failed = failed_comparisons(pred, actual)
    return failures + [f"{where}: expected {f}, got {show(actual)}" for f in failed]


def _quantified(assertion: Assertion, matches: list[tuple[str, Any]], path: str) -> list[str]:
    quantifier = "all" if assertion.all is not None else "any"
    pred = assertion.all if assertion.all is not None else assertion.any
    assert pred is not None
    if not matches:
        if "exists" in pred.model_fields_set and pred.exists is False:
            return []
        return [f"{path}: matched nothing (expected {quantifier} values to hold)"]
    results: list[tuple[str, Any, list[str]]] = []
    for where, actual in matches:
        failed = failed_comparisons(pred, actual)
        if "exists" in pred.model_fields_set and pred.exists is False:
            failed.append("exists False")
        results.append((where, actual, failed))
    if quantifier == "all":
        return [
            f"{where}: expected all {f}, got {show(actual)}"
            for where, actual, failed in results
            for f in failed
        ]
    if any(not failed for _, _, failed in results):
        return []
    wanted = " and ".join(dict.fromkeys(f for _, _, failed in results for f in failed))
    got = ", ".join(show(actual) for _, actual, _ in results)
    return [f"{path}: expected any {wanted}, got [{got}]"]


def _count(pred: Predicate, matches: list[tuple[str, Any]], wildcard: bool, path: str) -> list[str]:
    if wildcard:
        number = len(matches)
    elif not matches:
        number = 0
    else:
        value = matches[0][1]
        number = len(value) if isinstance(value, dict | list | tuple | str) else 1
    return [f"{path}: expected count {f}, got {number}" for f in failed_comparisons(pred, number)]
