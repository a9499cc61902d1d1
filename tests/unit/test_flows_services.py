"""Services file: longest-prefix matching, located errors, the JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drill.errors import InputError
from drill.flows.services import load_services

REPO = Path(__file__).resolve().parents[2]

BASE = """\
apiVersion: drill/v1
services:
  - name: servers
    site: dc1
    dr: deferred
    addresses: [192.0.2.0/24, 2001:db8:1::/48]
  - name: db
    site: dc1
    dr: required
    addresses: [192.0.2.128/25]
    ports: [5432]
  - name: db-primary
    site: dc1
    dr: required
    addresses: [192.0.2.130, 2001:db8:1:5::/64]
  - name: vip
    site: [dc1, dc2]
    dr: required
    addresses: [192.0.2.10]
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "services.yml"
    path.write_text(text)
    return load_services(path)


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("192.0.2.130", "db-primary@dc1"),  # /32 beats /25 beats /24
        ("192.0.2.131", "db@dc1"),
        ("192.0.2.5", "servers@dc1"),
        ("192.0.2.10", "vip@dc1+dc2"),
        ("2001:db8:1:5::9", "db-primary@dc1"),  # /64 beats /48
        ("2001:db8:1:6::9", "servers@dc1"),
        ("198.51.100.7", None),
        ("2001:db8:2::1", None),
    ],
)
def test_longest_prefix_wins(tmp_path: Path, address: str, label: str | None) -> None:
    table = _load(tmp_path, BASE)
    found = table.lookup(address)  # type: ignore[attr-defined]
    assert (found.label if found else None) == label


def test_ports_and_sites_are_kept(tmp_path: Path) -> None:
    table = _load(tmp_path, BASE)
    db = table.lookup("192.0.2.200")  # type: ignore[attr-defined]
    assert db.ports == frozenset({(5432, 6)})
    assert table.lookup("192.0.2.10").sites == ("dc1", "dc2")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "where", "message"),
    [
        (
            (
                "dr: required\n    addresses: [192.0.2.128/25]",
                "dr: later\n    addresses: [192.0.2.128/25]",
            ),
            (9, 9),
            "dr",
        ),
        (("addresses: [192.0.2.130,", "addresses: [192.0.2.300,"), (15, 17), "192.0.2.300"),
        (("addresses: [192.0.2.128/25]", "addresses: [192.0.2.129/25]"), (10, 17), "host bits"),
        (("    ports: [5432]", "    ports: [99999]"), (11, 13), "99999"),
        (("  - name: vip\n", "  - name: vip\n    colour: red\n"), (17, 5), "colour"),
        (("addresses: [192.0.2.10]", "addresses: [192.0.2.0/24]"), (19, 17), "already listed"),
        (
            (
                "  - name: db-primary\n    site: dc1\n    dr: required",
                "  - name: db\n    site: dc1\n    dr: deferred",
            ),
            (14, 9),
            "is `dr: required`",
        ),
    ],
)
def test_errors_are_located(
    tmp_path: Path, patch: tuple[str, str], where: tuple[int, int], message: str
) -> None:
    text = BASE.replace(*patch)
    assert text != BASE
    with pytest.raises(InputError) as caught:
        _load(tmp_path, text)
    first = caught.value.diagnostics[0]
    assert (first.line, first.col) == where, str(caught.value)
    assert message in first.message
    assert str(first).startswith(f"{tmp_path / 'services.yml'}:{where[0]}:{where[1]}: error: ")


@pytest.mark.parametrize(
    "text", ["", "- a list\n", "apiVersion: drill/v1\nservices: []\n", "a: [unclosed\n", "\x00bin"]
)
def test_not_a_services_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError):
        _load(tmp_path, text)


def test_shipped_two_dc_services_file_loads() -> None:
    table = load_services(REPO / "labs" / "two-dc" / "services.yml")
    assert table.lookup("192.0.2.10").label == "web@dc1+dc2"  # type: ignore[union-attr]
    assert table.lookup("ff02::2").name == "link-local"  # type: ignore[union-attr]


def test_shipped_payment_services_file_loads() -> None:
    table = load_services(REPO / "labs" / "payment-dr" / "services.yml")
    settlement = table.lookup("192.0.2.27")
    assert settlement is not None and (settlement.label, settlement.dr) == (
        "settlement@dc1",
        "deferred",
    )
    for address in ("192.0.2.32", "192.0.2.31", "192.0.2.33", "192.0.2.34", "192.0.2.35"):
        found = table.lookup(address)
        assert found is not None and found.sites == ("dc2",) and found.dr == "required", address
    assert table.lookup("192.0.2.12").label == "dc2-srv@dc2"  # type: ignore[union-attr]
    assert table.lookup("203.0.113.10").name == "customers"  # type: ignore[union-attr]


def test_schema_command_prints_the_services_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drill", "schema", "services"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert "services" in schema["properties"]
    entry = schema["$defs"]["ServiceSpec"]["properties"]
    assert entry["dr"]["enum"] == ["required", "deferred"]
    runbook = json.loads(
        subprocess.run(
            [sys.executable, "-m", "drill", "schema"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert "evacuate" in runbook["properties"] and "flows" in runbook["properties"]
