"""The assertion language, table-driven: every operator passing and failing, paths with
wildcards and dotted keys, quantifiers, and the exact failure messages."""

from __future__ import annotations

from typing import Any

import pytest

from drill.checks.assertions import evaluate, parse_path, resolve
from drill.runbook.model import Assertion

BGP = {
    "global": {
        "router_id": "198.51.100.254",
        "peers": {
            "198.51.100.1": {"is_up": False, "uptime": 12, "remote_as": 65001},
            "198.51.100.2": {"is_up": True, "uptime": 3600, "remote_as": 65002},
        },
    }
}
DATA = {
    "num": 100,
    "float": 99.5,
    "text": "Established",
    "flag": True,
    "list": [1, 2, 3],
    "vrrp": [{"state": "Master", "priority": 200}, {"state": "Backup", "priority": 100}],
    **BGP,
}

# (assertion, data, failures) -- an empty list means the assertion holds.
CASES: list[tuple[dict[str, Any], Any, list[str]]] = [
    # equals / not_equals
    ({"path": "num", "equals": 100}, DATA, []),
    ({"path": "num", "equals": 101}, DATA, ["h: num: expected equals 101, got 100"]),
    ({"path": "text", "equals": "Established"}, DATA, []),
    (
        {"path": "text", "equals": "Idle"},
        DATA,
        ["h: text: expected equals 'Idle', got 'Established'"],
    ),
    ({"path": "flag", "equals": 1}, DATA, ["h: flag: expected equals 1, got True"]),
    ({"path": "num", "not_equals": 5}, DATA, []),
    ({"path": "num", "not_equals": 100}, DATA, ["h: num: expected not_equals 100, got 100"]),
    # tolerance, absolute and relative
    ({"path": "float", "equals": 100, "tolerance": 1}, DATA, []),
    (
        {"path": "float", "equals": 100, "tolerance": 0.4},
        DATA,
        ["h: float: expected equals 100 ± 0.4, got 99.5"],
    ),
    ({"path": "float", "equals": 100, "tolerance": "1%"}, DATA, []),
    (
        {"path": "float", "equals": 200, "tolerance": "10%"},
        DATA,
        ["h: float: expected equals 200 ± 10%, got 99.5"],
    ),
    (
        {"path": "text", "equals": 1, "tolerance": 1},
        DATA,
        ["h: text: expected equals 1 ± 1, got 'Established'"],
    ),
    # in / not_in
    ({"path": "text", "in": ["Established", "Active"]}, DATA, []),
    ({"path": "text", "in": ["Idle"]}, DATA, ["h: text: expected in ['Idle'], got 'Established'"]),
    ({"path": "text", "not_in": ["Idle"]}, DATA, []),
    (
        {"path": "text", "not_in": ["Established"]},
        DATA,
        ["h: text: expected not_in ['Established'], got 'Established'"],
    ),
    # regex
    ({"path": "text", "regex": "^Estab"}, DATA, []),
    (
        {"path": "text", "regex": "^Idle$"},
        DATA,
        ["h: text: expected regex '^Idle$', got 'Established'"],
    ),
    # lt / le / gt / ge / range
    ({"path": "num", "lt": 101}, DATA, []),
    ({"path": "num", "lt": 100}, DATA, ["h: num: expected lt 100.0, got 100"]),
    ({"path": "num", "le": 100}, DATA, []),
    ({"path": "num", "le": 99}, DATA, ["h: num: expected le 99.0, got 100"]),
    ({"path": "num", "gt": 99}, DATA, []),
    ({"path": "num", "gt": 100}, DATA, ["h: num: expected gt 100.0, got 100"]),
    ({"path": "num", "ge": 100}, DATA, []),
    ({"path": "num", "ge": 101}, DATA, ["h: num: expected ge 101.0, got 100"]),
    ({"path": "text", "gt": 1}, DATA, ["h: text: expected gt 1.0, got 'Established'"]),
    ({"path": "num", "range": [100, 200]}, DATA, []),
    ({"path": "num", "range": [0, 99]}, DATA, ["h: num: expected range [0, 99], got 100"]),
    # exists
    ({"path": "num", "exists": True}, DATA, []),
    ({"path": "nope", "exists": True}, DATA, ["h: nope: expected exists True, got False"]),
    ({"path": "nope", "exists": False}, DATA, []),
    ({"path": "num", "exists": False}, DATA, ["h: num: expected exists False, got True"]),
    ({"path": "nope", "equals": 1}, DATA, ["h: nope: not found"]),
    # several comparisons in one predicate: all must hold
    ({"path": "num", "gt": 1, "lt": 50}, DATA, ["h: num: expected lt 50.0, got 100"]),
    # dotted keys: the spec's message, wildcard, quoted and unquoted literal keys
    (
        {"path": "global.peers.198.51.100.1.is_up", "equals": True},
        DATA,
        ["h: global.peers.198.51.100.1.is_up: expected equals True, got False"],
    ),
    ({"path": 'global.peers["198.51.100.2"].is_up', "equals": True}, DATA, []),
    ({"path": "global.peers['198.51.100.1'].remote_as", "equals": 65001}, DATA, []),
    ({"path": 'global.peers["198.51.100.9"].is_up', "exists": False}, DATA, []),
    (
        {"path": "global.peers.*.is_up", "all": {"equals": True}},
        DATA,
        ["h: global.peers.198.51.100.1.is_up: expected all equals True, got False"],
    ),
    ({"path": "global.peers.*.is_up", "any": {"equals": True}}, DATA, []),
    (
        {"path": "global.peers.*.uptime", "any": {"gt": 10000}},
        DATA,
        ["h: global.peers.*.uptime: expected any gt 10000.0, got [12, 3600]"],
    ),
    ({"path": "global.peers.*.remote_as", "all": {"range": [65000, 65535]}}, DATA, []),
    (
        {"path": "global.missing.*", "all": {"equals": 1}},
        DATA,
        ["h: global.missing.*: matched nothing (expected all values to hold)"],
    ),
    (
        {"path": "global.peers.*.is_up", "equals": True},
        DATA,
        ["h: global.peers.*.is_up: matched 2 values; use all, any or count"],
    ),
    # lists: index and wildcard
    ({"path": "vrrp.0.state", "equals": "Master"}, DATA, []),
    ({"path": "vrrp[1].priority", "equals": 100}, DATA, []),
    ({"path": "vrrp.*.state", "any": {"equals": "Master"}}, DATA, []),
    (
        {"path": "vrrp.*.priority", "all": {"ge": 150}},
        DATA,
        ["h: vrrp.1.priority: expected all ge 150.0, got 100"],
    ),
    # count: number matched by a wildcard, or length of the collection at the path
    ({"path": "global.peers.*", "count": {"equals": 2}}, DATA, []),
    (
        {"path": "global.peers.*.is_up", "count": {"ge": 3}},
        DATA,
        ["h: global.peers.*.is_up: expected count ge 3.0, got 2"],
    ),
    ({"path": "global.peers", "count": {"equals": 2}}, DATA, []),
    ({"path": "list", "count": {"equals": 4}}, DATA, ["h: list: expected count equals 4, got 3"]),
    ({"path": "nothing", "count": {"equals": 0}}, DATA, []),
    # the whole result
    ({"path": "", "count": {"equals": 3}}, [1, 2, 3], []),
    # a custom message is appended
    (
        {"path": "num", "equals": 1, "message": "wrong number"},
        DATA,
        ["h: num: expected equals 1, got 100 (wrong number)"],
    ),
]


@pytest.mark.parametrize(("spec", "data", "failures"), CASES, ids=[str(c[0]) for c in CASES])
def test_assertion(spec: dict[str, Any], data: Any, failures: list[str]) -> None:
    assert evaluate(Assertion.model_validate(spec), data, "h") == failures


def test_integer_keys_from_getters() -> None:
    data = {"groups": {1: {"state": "Master"}}}
    assert evaluate(Assertion(path="groups.1.state", equals="Master"), data, "r") == []


def test_longest_dotted_key_wins() -> None:
    data = {"a": {"1.2": {"x": 1}, "1": {"2": {"x": 2}}}}
    assert resolve(data, "a.1.2.x") == [("a.1.2.x", 2)]  # the plain key path is tried first
    assert resolve(data, 'a["1.2"].x') == [("a.1.2.x", 1)]


@pytest.mark.parametrize("bad", ['a["unterminated', "a[1"])
def test_bad_paths_fail_with_a_message(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_path(bad)
    failures = evaluate(Assertion(path=bad, exists=True), {}, "r")
    assert failures and failures[0].startswith("r: unterminated")
