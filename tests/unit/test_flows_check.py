"""``flows check`` verdicts, probe coverage, runbook fields, and ``drill plan``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drill.errors import InputError
from drill.flows.catalog import CatalogBuilder, write_catalog
from drill.flows.check import ProbeTarget, check
from drill.flows.records import FlowRecord
from drill.flows.services import load_services

SERVICES = """\
apiVersion: drill/v1
services:
  - {name: web, site: [dc1, dc2], dr: required, addresses: [192.0.2.10], ports: [80]}
  - {name: app, site: dc1, dr: required, addresses: [192.0.2.11]}
  - {name: app, site: dc2, dr: required, addresses: [192.0.2.12]}
  - {name: ledger, site: dc1, dr: required, addresses: [192.0.2.20], ports: [5432]}
  - {name: reports, site: dc1, dr: deferred, addresses: [192.0.2.30], ports: [8443]}
  - {name: backup, site: dc1, dr: deferred, addresses: [192.0.2.40], ports: [873]}
  - {name: users, site: wan, dr: deferred, addresses: [203.0.113.0/24]}
"""
T0, T1 = "2026-12-01T05:00:00.000Z", "2026-12-01T05:00:30.000Z"


def rec(src: str, dst: str, sport: int, dport: int) -> FlowRecord:
    return FlowRecord(src, dst, sport, dport, 6, 4, 400, T0, T1, "198.18.0.254")


def catalog_of(tmp_path: Path, records: list[FlowRecord]):  # type: ignore[no-untyped-def]
    services = tmp_path / "services.yml"
    services.write_text(SERVICES)
    builder = CatalogBuilder(load_services(services))
    builder.add_all(records)
    return builder.catalog(["flows.jsonl"], str(services))


def test_a_required_service_only_at_the_site_fails(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, [rec("192.0.2.12", "192.0.2.20", 50000, 5432)] * 3)
    result = check(cat, "dc1")
    assert result.exit_code == 1
    (finding,) = result.findings
    assert (finding.reason, finding.blocking) == ("only-there", True)
    assert finding.flow.client.label == "app@dc2" and finding.flow.server.label == "ledger@dc1"
    assert finding.flow.records == 3 and finding.flow.last_seen == T1
    text = "\n".join(result.lines())
    assert "app@dc2 -> ledger@dc1 tcp/5432" in text and "no instance outside dc1" in text
    assert "no probe covers it" in text


def test_pinned_to_an_instance_address_is_named(tmp_path: Path) -> None:
    # users call app1 by its own address, although app also runs at dc2
    cat = catalog_of(tmp_path, [rec("203.0.113.7", "192.0.2.11", 50000, 80)])
    result = check(cat, "dc1")
    (finding,) = result.findings
    assert finding.reason == "pinned" and finding.others == ("dc2",)
    assert finding.blocking  # app is required
    assert "pinned to 192.0.2.11" in finding.why()


def test_moving_vip_and_other_site_are_fine(tmp_path: Path) -> None:
    cat = catalog_of(
        tmp_path,
        [
            rec("203.0.113.7", "192.0.2.10", 50000, 80),  # VIP at dc1+dc2: moves
            rec("192.0.2.11", "192.0.2.12", 50000, 80),  # to dc2: stays
        ],
    )
    result = check(cat, "dc1")
    assert result.findings == () and result.exit_code == 0
    assert check(cat, "dc2").exit_code == 1  # evacuating dc2 strands app@dc1 -> app@dc2


def test_deferred_only_findings_are_listed_but_pass(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, [rec("203.0.113.7", "192.0.2.30", 50000, 8443)])
    result = check(cat, "dc1")
    (finding,) = result.findings
    assert not finding.blocking and result.exit_code == 0
    assert result.lines()[0].startswith("ok: 1 flow(s) still need dc1")


def test_a_required_client_makes_a_deferred_server_blocking(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, [rec("192.0.2.12", "192.0.2.40", 50000, 873)])
    (finding,) = check(cat, "dc1").findings
    assert finding.blocking  # app (required) still calls backup@dc1


def test_flows_between_services_only_at_the_site_go_away_with_it(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, [rec("192.0.2.30", "192.0.2.20", 50000, 5432)])  # reports -> ledger
    result = check(cat, "dc1")
    assert result.findings == () and result.gone_with_site == 1 and result.exit_code == 0


def test_probe_coverage(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, [rec("192.0.2.12", "192.0.2.20", 50000, 5432)])
    targets = [
        ProbeTarget("db-port", "192.0.2.20", 5432),
        ProbeTarget("db-ping", "192.0.2.20", None),
        ProbeTarget("other-port", "192.0.2.20", 80),
        ProbeTarget("vip", "192.0.2.10", 80),
    ]
    (finding,) = check(cat, "dc1", targets).findings
    assert finding.covered_by == ("db-port", "db-ping (address only)")


def test_unknown_site_is_bad_input(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, [])
    with pytest.raises(InputError, match="dc3: no service of the catalog is at that site"):
        check(cat, "dc3")


RUNBOOK = """\
apiVersion: drill/v1
name: evacuate-dc1
evacuate: dc1
flows: {catalog: flows/catalog.json}
probes:
  - name: ledger-port
    kind: packet
    protocol: udp
    port: 5432
    target: "{{ ledger }}"
vars:
  ledger: 192.0.2.20
steps:
  - name: wait
    kind: pause
    duration: 10ms
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drill", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def runbook(tmp_path: Path) -> Path:
    cat = catalog_of(tmp_path, [rec("192.0.2.12", "192.0.2.20", 50000, 5432)])
    (tmp_path / "flows").mkdir()
    write_catalog(cat, tmp_path / "flows" / "catalog.json")
    ok = catalog_of(tmp_path, [rec("192.0.2.11", "192.0.2.12", 50000, 80)])
    write_catalog(ok, tmp_path / "ok.json")
    path = tmp_path / "runbook.yml"
    path.write_text(RUNBOOK)
    return path


def test_check_cli_uses_the_runbook_fields(runbook: Path) -> None:
    done = _cli("flows", "check", str(runbook))
    assert done.returncode == 1, done.stderr
    assert "[required] app@dc2 -> ledger@dc1 tcp/5432" in done.stdout
    assert "covered by ledger-port" in done.stdout  # the var in the probe target is rendered


def test_check_cli_flags_override_the_runbook(runbook: Path, tmp_path: Path) -> None:
    done = _cli("flows", "check", str(runbook), "--catalog", str(tmp_path / "ok.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: 0 flow(s) still need dc1")
    done = _cli("flows", "check", str(runbook), "--evacuate", "dc2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["site"] == "dc2"


def test_check_cli_bad_input_exits_2(runbook: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    for args, expected in [
        (["--catalog", str(bad)], f"{bad}:1:2: error: bad JSON"),
        (["--catalog", str(tmp_path / "missing.json")], "cannot read file"),
        (["--evacuate", "mars"], "--evacuate mars"),
    ]:
        done = _cli("flows", "check", str(runbook), *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr
    plain = tmp_path / "plain.yml"
    plain.write_text(
        RUNBOOK.replace("evacuate: dc1\n", "").replace("flows: {catalog: flows/catalog.json}\n", "")
    )
    done = _cli("flows", "check", str(plain))
    assert done.returncode == 2 and "no site to evacuate or no catalog" in done.stderr
    typo = tmp_path / "typo.yml"
    typo.write_text(RUNBOOK.replace("flows: {catalog:", "flows: {catalogue:"))
    done = _cli("flows", "check", str(typo))
    assert done.returncode == 2 and f"{typo}:4:" in done.stderr, done.stderr


def test_plan_shows_the_same_findings(runbook: Path) -> None:
    done = _cli("plan", str(runbook))
    assert done.returncode == 0, done.stderr
    assert "flows that still need dc1" in done.stdout
    assert "app@dc2 -> ledger@dc1 tcp/5432" in done.stdout
    doc = json.loads(_cli("plan", str(runbook), "--json").stdout)
    assert doc["flows"]["verdict"] == "fail"
    assert doc["flows"]["findings"][0]["server"] == "ledger@dc1"


def test_every_probe_kind_names_its_target() -> None:
    """Packet, service and session probes each cover their destination (a session probe its
    address and port); the shipped payment runbook carries all three kinds."""
    from drill.flows.check import probe_targets
    from drill.runbook.model import Runbook

    model = Runbook.model_validate(
        {
            "apiVersion": "drill/v1",
            "name": "kinds",
            "probes": [
                {"name": "p", "kind": "packet", "target": "192.0.2.10"},
                {"name": "s", "kind": "service", "url": "http://{{ vip }}:8080/"},
                {"name": "t", "kind": "session", "target": "192.0.2.26", "port": 7007},
            ],
            "steps": [{"name": "wait", "kind": "pause", "duration": "0s"}],
        }
    )
    found = probe_targets(model, {"vip": "192.0.2.10"})
    assert [(t.name, t.address, t.port) for t in found] == [
        ("p", "192.0.2.10", None),
        ("s", "192.0.2.10", 8080),
        ("t", "192.0.2.26", 7007),
    ]
