"""Template rendering: strict, sandboxed, and errors located in the file that holds the
template (inline config: the line inside the YAML block scalar)."""

# ruff: noqa: E501 - expected diagnostics are compared verbatim

from __future__ import annotations

import pytest

from drill.errors import InputError
from drill.runbook.templates import Origin, build_context, render

CONTEXT = build_context(
    vars_={"vrid": 10, "peers": ["198.51.100.1", "198.51.100.2"]},
    host={
        "name": "dc1-edge",
        "hostname": "198.18.0.12",
        "platform": "frr",
        "groups": ["edge"],
        "data": {"site": "dc1", "asn": 64501},
    },
    mode="planned",
    runbook={"name": "dc1-to-dc2"},
)
INLINE = Origin("rb.yml", 20, 7)  # template line 1 is line 20 of rb.yml, indented 6


def _error(text: str, origin: Origin = INLINE) -> str:
    with pytest.raises(InputError) as caught:
        render(text, CONTEXT, origin=origin)
    (diagnostic,) = caught.value.diagnostics
    return str(diagnostic)


def test_renders_context_names() -> None:
    text = (
        "hostname {{ host.name }}\n"
        "router bgp {{ host.data.asn }}\n"
        "{% for p in vars.peers %} neighbor {{ p }} remote-as 64500\n{% endfor %}"
        "! {{ mode }} {{ runbook.name }} vrid {{ vars.vrid }}\n"
    )
    assert render(text, CONTEXT, origin=INLINE) == (
        "hostname dc1-edge\n"
        "router bgp 64501\n"
        " neighbor 198.51.100.1 remote-as 64500\n"
        " neighbor 198.51.100.2 remote-as 64500\n"
        "! planned dc1-to-dc2 vrid 10\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "{{ nope }}",
            "rb.yml:20:10: error: undefined variable 'nope' (templates see: vars, host, mode, runbook)",
        ),
        (
            "a\nb {{ vars.vird }}",
            "rb.yml:21:12: error: undefined 'vars.vird' (vars has: peers, vrid)",
        ),
        (
            "x\ny\n  {{ host.data.role }}",
            "rb.yml:22:12: error: undefined 'host.data.role' (host.data has: asn, site)",
        ),
        (
            "{{ host.nmae }}",
            "rb.yml:20:10: error: undefined 'host.nmae' (host has: data, groups, hostname, name, platform)",
        ),
        (
            "a\n{% if %}",
            "rb.yml:21:7: error: template syntax: Expected an expression, got 'end of statement block'",
        ),
        (
            "{{ 1 // 0 }}",
            "rb.yml:20:7: error: template error: ZeroDivisionError: integer division or modulo by zero",
        ),
    ],
)
def test_located_errors(text: str, expected: str) -> None:
    assert _error(text) == expected


def test_template_file_lines_are_its_own() -> None:
    origin = Origin("templates/drain.j2")
    assert _error("line\nline\n{{ vars.x }}\n", origin).startswith("templates/drain.j2:3:4: error:")


@pytest.mark.parametrize(
    "text",
    [
        "{{ vars.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ 'x' * 100000000 }}",
        "{{ 10 ** 100000 }}",
        "{% for i in range(10**9) %}{% endfor %}",
    ],
)
def test_sandbox_refuses(text: str) -> None:
    error = _error(text)
    assert ": error: template error: SecurityError" in error or ": error: template exceeds" in error
