"""Catalog aggregation: client/server orientation, counters, cross-site, unknown endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drill.errors import InputError
from drill.flows.catalog import CatalogBuilder, load_catalog, server_is_dst, write_catalog
from drill.flows.records import FlowRecord
from drill.flows.services import load_services

SERVICES = """\
apiVersion: drill/v1
services:
  - {name: web, site: [dc1, dc2], dr: required, addresses: [192.0.2.10], ports: [8080]}
  - {name: app, site: dc1, dr: required, addresses: [192.0.2.11]}
  - {name: app, site: dc2, dr: required, addresses: [192.0.2.12]}
  - {name: db, site: dc1, dr: required, addresses: [192.0.2.20], ports: [40000]}
  - {name: users, site: wan, dr: deferred, addresses: [203.0.113.0/24]}
"""


def rec(src: str, dst: str, sport: int, dport: int, proto: int = 6, **kw: object) -> FlowRecord:
    fields: dict[str, object] = {
        "packets": 10,
        "bytes": 1000,
        "first_seen": "2026-12-01T05:00:00.000Z",
        "last_seen": "2026-12-01T05:00:01.000Z",
        "exporter": "198.18.0.12",
    }
    fields.update(kw)
    return FlowRecord(src, dst, sport, dport, proto, **fields)  # type: ignore[arg-type]


@pytest.fixture
def table(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "services.yml"
    path.write_text(SERVICES)
    return load_services(path)


@pytest.mark.parametrize(
    ("src", "dst", "sport", "dport", "proto", "server_is_dst"),
    [
        # a port the services file lists wins, even over a lower port on the other side
        ("192.0.2.11", "192.0.2.20", 443, 40000, 6, True),
        ("192.0.2.20", "192.0.2.11", 40000, 443, 6, False),
        ("203.0.113.5", "192.0.2.10", 80, 8080, 6, True),
        # well-known (< 1024) against ephemeral
        ("192.0.2.11", "192.0.2.12", 51000, 22, 6, True),
        ("192.0.2.12", "192.0.2.11", 22, 51000, 6, False),
        # both high or both low: the lower port is the server's
        ("192.0.2.11", "192.0.2.12", 50123, 5432, 6, True),
        ("192.0.2.12", "192.0.2.11", 5432, 50123, 17, False),
        ("192.0.2.12", "192.0.2.11", 123, 123, 17, True),
        # ICMP: echo request (type 8) points at the server, echo reply (0) the other way
        ("192.0.2.11", "192.0.2.12", 0, 8 * 256, 1, True),
        ("192.0.2.12", "192.0.2.11", 0, 0, 1, False),
        ("2001:db8::1", "2001:db8::2", 0, 129 * 256, 58, False),
        # no ports (VRRP, GRE): as recorded
        ("192.0.2.11", "224.0.0.18", 0, 0, 112, True),
    ],
)
def test_which_end_is_the_server(  # type: ignore[no-untyped-def]
    table, src: str, dst: str, sport: int, dport: int, proto: int, server_is_dst: bool
) -> None:
    r = rec(src, dst, sport, dport, proto)
    assert server_is_dst_(r, table) is server_is_dst


def server_is_dst_(r: FlowRecord, table) -> bool:  # type: ignore[no-untyped-def]
    return server_is_dst(r, table.lookup(r.src_addr), table.lookup(r.dst_addr))


def test_request_and_response_merge_into_one_flow(table) -> None:  # type: ignore[no-untyped-def]
    builder = CatalogBuilder(table)
    builder.add_all(
        [
            rec("192.0.2.12", "192.0.2.20", 51000, 40000, last_seen="2026-12-01T05:00:09.000Z"),
            rec("192.0.2.20", "192.0.2.12", 40000, 51000, packets=5, bytes=300),
            rec("192.0.2.12", "192.0.2.20", 51001, 40000, first_seen="2026-12-01T04:59:00.000Z"),
        ]
    )
    catalog = builder.catalog(["f.jsonl"], "s.yml")
    assert len(catalog.flows) == 1
    flow = catalog.flows[0]
    assert (flow.client.label, flow.server.label, flow.proto, flow.port) == (
        "app@dc2",
        "db@dc1",
        6,
        40000,
    )
    assert (flow.records, flow.packets, flow.bytes) == (3, 25, 2300)
    assert flow.first_seen == "2026-12-01T04:59:00.000Z"
    assert flow.last_seen == "2026-12-01T05:00:09.000Z"
    assert flow.cross_site is True
    assert flow.server.addresses == ["192.0.2.20"]
    assert flow.exporters == ["198.18.0.12"]


def test_same_site_and_spanning_entries_are_not_cross_site(table) -> None:  # type: ignore[no-untyped-def]
    builder = CatalogBuilder(table)
    builder.add(rec("192.0.2.11", "192.0.2.20", 51000, 40000))  # app@dc1 -> db@dc1
    builder.add(rec("192.0.2.12", "192.0.2.10", 51000, 8080))  # app@dc2 -> web@dc1+dc2
    builder.add(rec("203.0.113.9", "192.0.2.11", 51000, 80))  # users@wan -> app@dc1
    flows = {(f.client.label, f.server.label): f.cross_site for f in builder.catalog([], "").flows}
    assert flows == {
        ("app@dc1", "db@dc1"): False,
        ("app@dc2", "web@dc1+dc2"): False,
        ("users@wan", "app@dc1"): True,
    }


def test_unknown_endpoints_are_findings_with_evidence(table) -> None:  # type: ignore[no-untyped-def]
    builder = CatalogBuilder(table)
    builder.add(rec("192.0.2.11", "198.51.100.77", 51000, 443, bytes=700))
    builder.add(rec("198.51.100.77", "192.0.2.11", 443, 51000, bytes=5000))
    builder.add(rec("198.51.100.99", "192.0.2.20", 50000, 40000, bytes=10))
    catalog = builder.catalog([], "")
    unknown = {u.address: u for u in catalog.unknown_endpoints}
    assert sorted(unknown) == ["198.51.100.77", "198.51.100.99"]
    ext = unknown["198.51.100.77"]
    assert (ext.as_server, ext.as_client, ext.bytes) == (2, 0, 5700)
    assert ext.peers == ["app@dc1"]
    assert unknown["198.51.100.99"].as_client == 1
    assert unknown["198.51.100.99"].peers == ["db@dc1"]
    # unknown ends collapse into one catalog flow per known peer, port and protocol
    labels = sorted((f.client.label, f.server.label, f.port) for f in catalog.flows)
    assert labels == [("(unknown)", "db@dc1", 40000), ("app@dc1", "(unknown)", 443)]


def test_catalog_round_trip_embeds_the_services(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    builder = CatalogBuilder(table)
    builder.add(rec("192.0.2.12", "192.0.2.20", 51000, 40000))
    path = tmp_path / "catalog.json"
    write_catalog(builder.catalog(["a.jsonl"], "s.yml"), path)
    loaded = load_catalog(path)
    assert [s.name for s in loaded.services] == ["web", "app", "app", "db", "users"]
    assert loaded.table().lookup("192.0.2.20").label == "db@dc1"  # type: ignore[union-attr]
    assert loaded.source.records == 1


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{\n  "version": 1,\n  oops\n}', "catalog.json:3:3"),
        ("[]", "catalog.json:1:1"),
        ('{"version": 2}', "catalog.json:1:1"),
        ("\x89PNG\x00", "catalog.json:1:1"),
    ],
)
def test_bad_catalog_is_a_located_input_error(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(text, errors="surrogateescape")
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(f"{tmp_path}/{where}: error: ")


def _good_catalog(table, tmp_path: Path) -> dict:  # type: ignore[no-untyped-def]
    builder = CatalogBuilder(table)
    builder.add(rec("192.0.2.12", "192.0.2.20", 51000, 40000))
    path = tmp_path / "good.json"
    write_catalog(builder.catalog(["a.jsonl"], "s.yml"), path)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["flows"][0].update(port=70000), "flows.0.port"),
        (lambda c: c["flows"][0].update(proto=-1), "flows.0.proto"),
        (lambda c: c["flows"][0]["server"].update(addresses=["db.example"]), "is not an IP"),
        (lambda c: c["flows"][0].update(records=-5), "flows.0.records"),
    ],
)
def test_catalog_values_a_probe_would_use_are_checked_on_load(  # type: ignore[no-untyped-def]
    table, tmp_path: Path, mutate, message: str
) -> None:
    """A port or address no probe could use fails when the catalog is read (preflight),
    not in the middle of an isolation."""
    data = _good_catalog(table, tmp_path)
    mutate(data)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert message in str(caught.value)


def test_catalog_that_never_ends_or_blocks_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(InputError) as caught:
            load_catalog(path)  # no writer, no end: refused at once, never a hang
        assert "not a regular file" in str(caught.value)


def test_catalog_with_a_number_past_the_digit_limit_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"version": ' + "9" * 5000 + "}")
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(f"{path}:1:1: error: bad JSON")


def test_catalog_cli_over_bad_flow_files_exits_2_without_traceback(tmp_path: Path, table) -> None:  # type: ignore[no-untyped-def]
    services = tmp_path / "services.yml"
    good = json.dumps(
        {
            "src_addr": "192.0.2.12", "dst_addr": "192.0.2.20", "src_port": 51000,
            "dst_port": 40000, "proto": 6, "packets": 1, "bytes": 60,
            "first_seen": "2026-12-01T05:00:00.000Z", "last_seen": "2026-12-01T05:00:00.000Z",
        }
    )  # fmt: skip
    cases = {
        "not-json": (good + "\n{oops\n", ":2:2: error: not a JSON record"),
        "bad-addr": (good.replace("192.0.2.20", "192.0.2.999") + "\n", ":1:1: error: `dst_addr`"),
        "no-zone": (good.replace(".000Z", "") + "\n", ":1:1: error: `first_seen`"),
        "port": (good.replace("51000", "70000") + "\n", ":1:1: error: `src_port`"),
        "extra": (good.replace("{", '{"colour": 1, ', 1) + "\n", ":1:1: error: unknown field"),
        "list": ("[1, 2]\n", ":1:1: error: a flow record is a JSON object"),
        "binary": ("\udcff\udcfe\x00\n", ":1:1: error: not UTF-8"),
    }
    for name, (body, expected) in cases.items():
        flows = tmp_path / f"{name}.jsonl"
        flows.write_text(body, errors="surrogateescape")
        done = subprocess.run(
            [sys.executable, "-m", "drill", "flows", "catalog", str(flows),
             "--services", str(services), "-o", str(tmp_path / "c.json")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stderr.strip() == f"{flows}{expected}" or done.stderr.startswith(
            f"{flows}{expected}"
        ), (name, done.stderr)
        assert not (tmp_path / "c.json").exists()


def _write_records(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            r = rec(f"198.51.100.{i % 200}", "192.0.2.20", 40000 + i % 20000, 40000, bytes=i)
            out.write(r.to_json() + "\n")
            back = rec("192.0.2.20", "192.0.2.12", 40000, 50000 + i % 10000, bytes=1)
            out.write(back.to_json() + "\n")


def test_parallel_workers_give_the_same_catalog(table, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from drill.flows import parallel

    flows = tmp_path / "flows.jsonl"
    _write_records(flows, 3000)
    single = parallel.catalog_files([flows], table, workers=1).catalog([], "").model_dump()
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    multi = parallel.catalog_files([flows], table, workers=3).catalog([], "").model_dump()
    for doc in (single, multi):
        doc["source"].pop("generated")
    assert multi == single
    assert multi["source"]["records"] == 6000


def test_parallel_errors_keep_the_file_line_number(table, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from drill.flows import parallel

    flows = tmp_path / "flows.jsonl"
    _write_records(flows, 3000)
    lines = flows.read_text().splitlines(keepends=True)
    lines[5000] = lines[5000].replace('"proto":6', '"proto":600')
    flows.write_text("".join(lines))
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    with pytest.raises(InputError) as caught:
        parallel.catalog_files([flows], table, workers=3)
    assert str(caught.value).startswith(f"{flows}:5001:1: error: `proto`")
