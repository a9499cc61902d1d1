"""Property-based fuzzing of the loader: whatever the input, the outcome is a LoadedRunbook
or an InputError carrying located diagnostics, never another exception."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drill.errors import InputError
from drill.runbook.loader import LoadedRunbook, load_runbook

DATA = Path(__file__).resolve().parents[1] / "data"
GOOD_NAMES = sorted(p.name for p in (DATA / "runbooks").glob("*.yml"))
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_counter = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the good runbooks and their inventory, so mutants resolve their files."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(DATA / "runbooks", root / "runbooks")
    shutil.copytree(DATA / "inventory", root / "inventory")
    return root


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_PASSWORD", "fuzz")


def _outcome(workdir: Path, content: bytes) -> LoadedRunbook | InputError:
    path = workdir / "runbooks" / f"mutant-{next(_counter)}.yml"
    path.write_bytes(content)
    try:
        return load_runbook(path)
    except InputError as exc:
        assert exc.diagnostics, "an InputError must carry diagnostics"
        for diagnostic in exc.diagnostics:
            assert diagnostic.line >= 1 and diagnostic.col >= 1
            assert "\n" not in diagnostic.message
        return exc
    finally:
        path.unlink()


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(workdir: Path, content: bytes) -> None:
    _outcome(workdir, content)


@FUZZ
@given(st.text(max_size=2000))
def test_random_text(workdir: Path, text: str) -> None:
    _outcome(workdir, text.encode("utf-8", "surrogatepass"))


YAML_NOISE = st.sampled_from(
    [
        "\t",
        ": ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a",
        "!!",
        "|",
        ">",
        "'",
        '"',
        "#",
        "\n",
        "  ",
        "---",
        "...",
        "{{",
        "}}",
        "{%",
        "on",
        "kind: ",
        "name: x",
        "\x00",
        "\u2028",
        "%",
    ]
)


@st.composite
def mutated_text(draw: st.DrawFn) -> bytes:
    text = (DATA / "runbooks" / draw(st.sampled_from(GOOD_NAMES))).read_text()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line"]))
        if action == "insert":
            text = text[:at] + draw(st.one_of(YAML_NOISE, st.text(max_size=10))) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif action == "replace":
            text = text[:at] + draw(YAML_NOISE) + text[at + 1 :]
        else:
            lines = text.splitlines(keepends=True) or [""]
            index = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: index + 1] + lines[index:])
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(mutated_text())
def test_mutated_runbook_text(workdir: Path, content: bytes) -> None:
    _outcome(workdir, content)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "30s",
            "5m",
            "1d",
            "local",
            "netns:x",
            "edges",
            "dc1-edge",
            "get_vrrp",
            "config",
            "check",
            "{{ vars.x }}",
            "{{ host.data.asn }}",
            "{% if %}",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_data(draw: st.DrawFn) -> bytes:
    data = yaml.safe_load((DATA / "runbooks" / draw(st.sampled_from(GOOD_NAMES))).read_text())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(VALUES)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return yaml.safe_dump(data, sort_keys=False).encode()


@FUZZ
@given(mutated_data())
def test_mutated_runbook_data(workdir: Path, content: bytes) -> None:
    _outcome(workdir, content)


def test_unmutated_copies_load(workdir: Path) -> None:
    """The mutants start from runbooks that are valid in the fuzz directory."""
    for name in GOOD_NAMES:
        content = (DATA / "runbooks" / name).read_bytes()
        assert isinstance(_outcome(workdir, content), LoadedRunbook)


ELEMENT_KEYS = st.sampled_from(
    ["hostname", "platform", "port", "username", "password", "groups", "data", "connection_options"]
)
ELEMENT = st.dictionaries(
    ELEMENT_KEYS,
    st.one_of(VALUES, st.lists(st.sampled_from(["g1", "g2", "g3"]), max_size=3)),
    max_size=4,
)
INVENTORY_NOISE = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda data: yaml.safe_dump(data),
        st.dictionaries(st.sampled_from(["r1", "r2", "g1", "g2", "g3"]), ELEMENT, max_size=4),
    ),
    st.builds(
        lambda data: yaml.safe_dump(data),
        st.dictionaries(
            st.sampled_from(["r1", "r2", "edge", "hostname", "groups", "data", "port"]),
            VALUES,
            max_size=4,
        ),
    ),
)


@FUZZ
@given(hosts=INVENTORY_NOISE, groups=INVENTORY_NOISE, defaults=INVENTORY_NOISE)
def test_random_inventories(workdir: Path, hosts: str, groups: str, defaults: str) -> None:
    from drill.runbook.inventory import Inventory, load_inventory

    directory = workdir / f"inventory-{next(_counter)}"
    directory.mkdir()
    for name, text in (("hosts", hosts), ("groups", groups), ("defaults", defaults)):
        (directory / f"{name}.yaml").write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        assert isinstance(load_inventory(directory), Inventory)
    except InputError as exc:
        assert exc.diagnostics
    finally:
        shutil.rmtree(directory)


# --- templates ----------------------------------------------------------------------------

TEMPLATE_ATOMS = st.sampled_from(
    [
        "1",
        "9",
        "999",
        "10**9",
        "'x'",
        "'%0999d'",
        "vars.l",
        "vars.m",
        "vars.s",
        "host.name",
        "host.data",
        "range(99999)",
        "lipsum(99)",
        "[1, 2]",
        "{'a': 1}",
        "namespace(s='x')",
        "none",
        "loop",
        "''.__class__",
    ]
)
TEMPLATE_OPS = st.sampled_from(
    ["*", "**", "+", "~", "%", "//", "/", "-", " and ", " in ", "|join(", "|center(", "|indent("]
)
TEMPLATE_CALLS = st.sampled_from(
    [
        ".center",
        ".ljust",
        ".zfill",
        ".replace('', ",
        ".join",
        ".format",
        ".extend",
        ".append",
        ".update",
        "|list",
        "|format",
        "|batch",
        "|slice",
        "|replace('x', ",
    ]
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.integers(0, 3)) == 0:
        return draw(TEMPLATE_ATOMS)
    left = draw(expressions(depth + 1))
    right = draw(expressions(depth + 1))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        op = draw(TEMPLATE_OPS)
        closing = ")" if op.endswith("(") else ""
        return f"({left}{op}{right}{closing})"
    if kind == 1:
        call = draw(TEMPLATE_CALLS)
        if call.startswith("|") and not call.endswith("("):
            return f"({left}{call})"
        prefix = "" if call.endswith("(") or call.endswith(", ") else "("
        return f"({left}{call}{prefix}{right}))"
    return f"[{left}, {right}][0]"


@st.composite
def templates(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        expr = draw(expressions())
        shape = draw(st.integers(0, 3))
        if shape == 0:
            parts.append("{{ " + expr + " }}")
        elif shape == 1:
            parts.append(
                "{% for i in " + expr + " %}{% for j in " + expr + " %}x{% endfor %}{% endfor %}"
            )
        elif shape == 2:
            parts.append(
                "{% set ns = namespace(v=" + expr + ") %}{% for i in range(70) %}"
                "{% set ns.v = ns.v ~ ns.v %}{% endfor %}{{ ns.v|length }}"
            )
        else:
            parts.append(draw(st.sampled_from(["{%", "{{", "}}", "{% endfor %}", "text\n"])))
    return "".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates())
def test_random_templates_are_bounded(text: str) -> None:
    """Whatever a template says, rendering ends within the time budget (plus slack for a
    loaded machine) with text or one located InputError, never another exception."""
    import time

    from drill.runbook.bounds import MAX_SECONDS
    from drill.runbook.templates import Origin, build_context, render

    context = build_context(
        vars_={"l": [1, 2], "m": {"a": 1}, "s": "ab"},
        host={"name": "r1", "data": {"asn": 65001}},
        mode="planned",
        runbook={"name": "fuzz"},
    )
    started = time.monotonic()
    try:
        out = render(text, context, origin=Origin("fuzz.yml", 3, 5))
        assert isinstance(out, str)
    except InputError as exc:
        assert len(exc.diagnostics) == 1
        assert exc.diagnostics[0].file == "fuzz.yml" and exc.diagnostics[0].line >= 3
        assert "\n" not in exc.diagnostics[0].message
    assert time.monotonic() - started < MAX_SECONDS * 3
