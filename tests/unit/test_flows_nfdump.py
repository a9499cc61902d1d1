"""Normalization of real nfdump output recorded on labs/two-dc (golden files), and bad exports.

The data under data/flows/ came from the lab's own softflowd exporters (IPFIX from dc1-edge
and the br-dci bridge, NetFlow v9 from dc2-edge), collected by nfcapd and printed by
``TZ=UTC nfdump -R DIR -o json`` / ``-o csv``; two-dc.nfcapd is the nfcapd file itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drill.errors import InputError
from drill.flows.nfdump import read_export
from drill.flows.records import FIELDS, read_jsonl

DATA = Path(__file__).parent / "data" / "flows"
GOLDEN = DATA / "two-dc.normalized.jsonl"


def test_nfdump_json_normalizes_to_the_golden_records() -> None:
    got = [r.to_json() for r in read_export(DATA / "two-dc.nfdump.json", UTC)]
    assert got == GOLDEN.read_text().splitlines()
    assert len(got) == 78


def test_golden_records_cover_both_protocols_families_and_exporters() -> None:
    records = list(read_jsonl(GOLDEN))
    assert {r.exporter for r in records} == {"198.18.0.12", "198.18.0.13", "198.18.0.254"}
    assert {6, 17, 58, 112} <= {r.proto for r in records}
    assert any(":" in r.src_addr for r in records)  # IPv6 (src6_addr)
    assert all(r.first_seen <= r.last_seen for r in records)
    http = [r for r in records if r.dst_addr == "192.0.2.10" and r.dst_port == 80]
    assert http and http[0].src_addr == "203.0.113.10" and http[0].input_if == 3
    db = [r for r in records if r.dst_port == 5432]
    assert db and {r.exporter for r in db} == {"198.18.0.254"}  # seen only on the stretched VLAN


def test_nfdump_csv_gives_the_same_records_at_second_precision() -> None:
    from_csv = list(read_export(DATA / "two-dc.nfdump.csv", UTC))
    from_json = list(read_export(DATA / "two-dc.nfdump.json", UTC))
    assert len(from_csv) == len(from_json)
    for c, j in zip(from_csv, from_json, strict=True):
        for name in FIELDS:
            if name in ("first_seen", "last_seen"):
                continue
            assert getattr(c, name) == getattr(j, name), name
        assert c.first_seen[:19] == j.first_seen[:19]


def test_times_without_zone_take_the_given_zone() -> None:
    seoul = next(iter(read_export(DATA / "two-dc.nfdump.json", ZoneInfo("Asia/Seoul"))))
    utc = next(iter(read_export(DATA / "two-dc.nfdump.json", UTC)))
    assert utc.first_seen == "2026-12-01T05:22:03.130Z"
    assert seoul.first_seen == "2026-11-30T20:22:03.130Z"


def test_ndjson_and_one_line_array_are_read(tmp_path: Path) -> None:
    objects = json.loads((DATA / "two-dc.nfdump.json").read_text())[:3]
    ndjson = tmp_path / "x.ndjson"
    ndjson.write_text("".join(json.dumps(o) + "\n" for o in objects))
    array = tmp_path / "x.json"
    array.write_text(json.dumps(objects))
    expected = GOLDEN.read_text().splitlines()[:3]
    assert [r.to_json() for r in read_export(ndjson, UTC)] == expected
    assert [r.to_json() for r in read_export(array, UTC)] == expected


def test_empty_window_has_no_records(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[\nNo matching flows\n]\n")
    assert list(read_export(empty, UTC)) == []


def _broken(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    lines = (DATA / "two-dc.nfdump.json").read_text().splitlines(keepends=True)
    csv_lines = (DATA / "two-dc.nfdump.csv").read_text().splitlines(keepends=True)
    cases = {
        "truncated.json": ("".join(lines[:40]), ":30:1: error: nfdump JSON record is not closed"),
        "bad-addr.json": (
            "".join(lines).replace('"198.51.100.10"', '"198.51.100.300"', 1),
            ":2:1: error: `dst4_addr/dst6_addr`",
        ),
        "bad-json.json": ("".join(lines[:5]) + '\t"x" : ,\n}\n', ":6:8: error: bad JSON"),
        "columns.csv": ("sa,da\n1,2\n", ":1:1: error: not an nfdump CSV export"),
        "short-row.csv": ("".join(csv_lines[:2]) + "1,2,3\n", ":3:1: error: 3 columns"),
        "proto.csv": ("".join(csv_lines[:2]).replace(",TCP,", ",XTP,", 1), ":2:1: error: `pr`"),
    }
    out = {}
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        out[name] = (path, expected)
    out["nfcapd"] = (DATA / "two-dc.nfcapd", ":1:1: error: not UTF-8 text (is this an nfcapd")
    return out


def test_bad_exports_are_located_input_errors(tmp_path: Path) -> None:
    for name, (path, expected) in _broken(tmp_path).items():
        with pytest.raises(InputError) as caught:
            list(read_export(path, UTC))
        assert str(caught.value).startswith(f"{path}{expected}"), (name, str(caught.value))


def test_import_cli_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "flows.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "drill", "flows", "import", str(DATA / "two-dc.nfdump.csv"),
         "-o", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 78
    path = _broken(tmp_path)["nfcapd"][0]
    for args in (
        [str(path)],
        [str(tmp_path / "missing.json")],
        [str(DATA / "two-dc.nfdump.json"), "--timezone", "Mars/Olympus"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "drill", "flows", "import", *args, "-o", str(tmp_path / "o")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
        assert not (tmp_path / "o").exists()
