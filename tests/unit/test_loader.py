"""Loader tests: good runbooks load; every file of the bad corpus (tests/data/bad/) fails
with exactly the expected located lines, through the loader and through the real CLI."""

# ruff: noqa: E501 - the expected diagnostics are compared verbatim, one per line

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drill.errors import InputError
from drill.runbook.loader import LoadedRunbook, load_runbook, parse_var_args
from drill.runbook.model import CheckStep, CommandStep, ConfigStep

REPO = Path(__file__).resolve().parents[2]
BAD = Path("tests/data/bad")
GOOD = Path("tests/data/runbooks")
SECRET = "s3cr3t-never-printed"
LINE = re.compile(r"^[^:]+:\d+:\d+: error: ")

EXPECTED: dict[str, list[str]] = {
    "rollback-steps.yml": [
        "tests/data/bad/rollback-steps.yml:12:13: error: unknown target or host 'dc1-egde' in step 'undo-on-typo-host' (did you mean 'dc1-edge'?)",
        "tests/data/bad/rollback-steps.yml:17:23: error: undefined 'vars.old_name' (vars has: nothing) (rendering for host 'dc1-edge')",
        "tests/data/bad/rollback-steps.yml:18:9: error: step 'undo-then-check': a check without 'assert' proves nothing: add assertions",
    ],
    "useless-on.yml": [
        "tests/data/bad/useless-on.yml:7:5: error: step 'wait' acts on no host: remove 'on'",
        "tests/data/bad/useless-on.yml:11:5: error: step 'web' acts on no host: remove 'on'",
        "tests/data/bad/useless-on.yml:15:5: error: step 'cmd' acts on no host: remove 'on'",
    ],
    "assertions.yml": [
        "tests/data/bad/assertions.yml:8:9: error: step 'a', 'assert[0]': 'tolerance' applies to 'equals' only",
        "tests/data/bad/assertions.yml:13:20: error: step 'a', 'assert[1].tolerance': tolerance 'ten percent': use a number (absolute) or e.g. '10%'",
        "tests/data/bad/assertions.yml:15:16: error: step 'a', 'assert[2].range': range [0.9, 0.1]: low is above high",
        "tests/data/bad/assertions.yml:16:9: error: step 'a', 'assert[3]': use one of all/any/count, not all, any",
        "tests/data/bad/assertions.yml:20:16: error: step 'a', 'assert[4].regex': invalid regex '(unclosed': missing ), unterminated subpattern at position 0",
    ],
    "probe-udp.yml": [
        "tests/data/bad/probe-udp.yml:4:5: error: probe 'no-port': a udp probe needs 'port'",
        "tests/data/bad/probe-udp.yml:8:5: error: probe 'no-port': 'port' is for udp only",
        "tests/data/bad/probe-udp.yml:8:11: error: duplicate probe name 'no-port' (first used at line 4)",
        "tests/data/bad/probe-udp.yml:12:11: error: probe 'no-port': bad vantage point 'netns:' (use local, netns:NAME or lab:LABDIR:NODE)",
    ],
    "alias-bomb.yml": [
        "tests/data/bad/alias-bomb.yml:5:10: error: YAML aliases (*a) are not allowed",
    ],
    "non-mapping-values.yml": [
        "tests/data/bad/non-mapping-values.yml:3:6: error: 'rto': a duration is a string such as 500ms, 30s, 5m or 1h",
    ],
    "bad-durations.yml": [
        "tests/data/bad/bad-durations.yml:3:6: error: 'rto': bad duration '5 minutes': use a number and ms, s, m or h (e.g. 30s)",
        "tests/data/bad/bad-durations.yml:7:15: error: step 'a', 'duration': a duration is a string such as 500ms, 30s, 5m or 1h",
        "tests/data/bad/bad-durations.yml:10:15: error: step 'b', 'duration': bad duration '1d': use a number and ms, s, m or h (e.g. 30s)",
        "tests/data/bad/bad-durations.yml:11:14: error: step 'b', 'timeout': bad duration '-5s': use a number and ms, s, m or h (e.g. 30s)",
    ],
    "binary.yml": [
        "tests/data/bad/binary.yml:1:25: error: not UTF-8 text: invalid byte 0xc0 (is this a binary file?)",
    ],
    "check-spec.yml": [
        "tests/data/bad/check-spec.yml:5:5: error: step 'nothing-to-read': give exactly one of 'getter', 'http' or 'traceroute'",
        "tests/data/bad/check-spec.yml:10:5: error: step 'two-sources': give exactly one of 'getter', 'http' or 'traceroute' (got http, traceroute)",
        "tests/data/bad/check-spec.yml:14:5: error: step 'cli-without-commands': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/check-spec.yml:17:13: error: step 'cli-without-commands': getter 'cli' needs 'commands'",
        "tests/data/bad/check-spec.yml:18:5: error: step 'typo-getter': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/check-spec.yml:21:13: error: step 'typo-getter': unknown getter 'get_bgp_neighbours' (did you mean 'get_bgp_neighbors'?)",
        "tests/data/bad/check-spec.yml:25:11: error: step 'bad-site': bad vantage point 'netns' (use local, netns:NAME or lab:LABDIR:NODE)",
        "tests/data/bad/check-spec.yml:26:17: error: step 'bad-site': no inventory host has site 'dc9'",
        "tests/data/bad/check-spec.yml:27:5: error: step 'apps-have-no-platform': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/check-spec.yml:27:5: error: step 'apps-have-no-platform': host 'app1' has no platform in the inventory",
        "tests/data/bad/check-spec.yml:34:15: error: step 'interval-too-long': 'interval' is longer than 'timeout'",
        "tests/data/bad/check-spec.yml:36:5: error: step 'from-with-getter': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/check-spec.yml:40:11: error: step 'from-with-getter': 'from' applies to http and traceroute checks, not getters",
    ],
    "comments-only.yml": [
        "tests/data/bad/comments-only.yml:1:1: error: empty runbook: expected a mapping with apiVersion, name and steps",
    ],
    "deep-nesting.yml": [
        "tests/data/bad/deep-nesting.yml:4:36: error: nesting deeper than 32 levels",
    ],
    "duplicate-keys.yml": [
        "tests/data/bad/duplicate-keys.yml:7:5: error: duplicate key 'duration' (first defined at line 6)",
        "tests/data/bad/duplicate-keys.yml:8:1: error: duplicate key 'name' (first defined at line 2)",
    ],
    "duplicate-names.yml": [
        "tests/data/bad/duplicate-names.yml:8:11: error: duplicate step name 'wait' (first used at line 4)",
        "tests/data/bad/duplicate-names.yml:15:15: error: duplicate step name 'run' (first used at line 11)",
    ],
    "empty.yml": [
        "tests/data/bad/empty.yml:1:1: error: empty runbook: expected a mapping with apiVersion, name and steps",
    ],
    "evil-tag.yml": [
        "tests/data/bad/evil-tag.yml:2:7: error: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ],
    "invalid-utf8.yml": [
        "tests/data/bad/invalid-utf8.yml:2:10: error: not UTF-8 text: invalid byte 0xe9 (is this a binary file?)",
    ],
    "inventory-bad-types.yml": [
        "tests/data/bad/inventories/bad-types/hosts.yaml:2:13: error: host 'r1': 'hostname' must be a string",
        "tests/data/bad/inventories/bad-types/hosts.yaml:4:9: error: host 'r1': 'port' must be between 1 and 65535",
        "tests/data/bad/inventories/bad-types/hosts.yaml:5:13: error: host 'r1': 'password' must be a string",
        "tests/data/bad/inventories/bad-types/hosts.yaml:6:3: error: unknown key 'colour' in host 'r1' (known: connection_options, data, groups, hostname, password, platform, port, username)",
        "tests/data/bad/inventories/bad-types/hosts.yaml:7:5: error: host 'r2' must be a mapping",
    ],
    "inventory-broken-yaml.yml": [
        "tests/data/bad/inventories/broken-yaml/hosts.yaml:4:1: error: invalid YAML: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at line 3)",
    ],
    "inventory-env-unset.yml": [
        "tests/data/bad/inventories/env-unset/hosts.yaml:4:13: error: environment variable 'DRILL_TEST_SURELY_UNSET_USER' is not set (needed by host 'r1')",
        "tests/data/bad/inventories/env-unset/hosts.yaml:5:13: error: environment variable 'DRILL_TEST_SURELY_UNSET_PASSWORD' is not set (needed by host 'r1')",
    ],
    "inventory-unknown-group.yml": [
        "tests/data/bad/inventories/unknown-group/groups.yaml:2:11: error: group 'edge' is its own ancestor (cycle in 'groups')",
        "tests/data/bad/inventories/unknown-group/groups.yaml:4:11: error: group 'loop' is its own ancestor (cycle in 'groups')",
        "tests/data/bad/inventories/unknown-group/hosts.yaml:4:18: error: unknown group 'routerz' (groups: edge, loop)",
    ],
    "missing-files.yml": [
        "tests/data/bad/missing-files.yml:8:15: error: step 'a': template file 'templates/nope.j2' not found (looked in tests/data/bad/templates)",
        "tests/data/bad/missing-files.yml:12:11: error: step 'b': validation file 'validation/nope.yml' not found (looked in tests/data/bad/validation)",
    ],
    "missing-inventory.yml": [
        "tests/data/bad/missing-inventory.yml:3:12: error: inventory 'inventories/nope' not found (looked for tests/data/bad/inventories/nope)",
    ],
    "not-mapping.yml": [
        "tests/data/bad/not-mapping.yml:1:1: error: a runbook is a mapping (apiVersion, name, steps...), not a list",
    ],
    "platforms.yml": [
        "tests/data/bad/platforms.yml:11:5: error: step 'drain': host 'nx1' (platform nxos) does not support commit-confirm ('confirm:')",
        "tests/data/bad/platforms.yml:12:5: error: step 'vrrp': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/platforms.yml:15:13: error: step 'vrrp': host 'eos1' (platform eos) has no getter 'get_vrrp'",
        "tests/data/bad/platforms.yml:16:5: error: step 'replace-all': host 'weird1' has unknown platform 'vendorx' (known: eos, frr, ios, iosxr, iosxr_netconf, junos, linux, mock, nxos, nxos_ssh)",
    ],
    "syntax.yml": [
        "tests/data/bad/syntax.yml:7:1: error: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 6)",
    ],
    "tabs.yml": [
        "tests/data/bad/tabs.yml:5:1: error: tab character in indentation: YAML indentation must use spaces",
    ],
    "template-syntax.yml": [
        "tests/data/bad/template-syntax.yml:10:7: error: template syntax: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
    ],
    "two-documents.yml": [
        "tests/data/bad/two-documents.yml:3:1: error: expected one YAML document, found a second one",
    ],
    "undefined-var.yml": [
        "tests/data/bad/templates/undefined.j2:3:49: error: undefined 'host.data.wan_as' (host.data has: asn, loopback, role, site, wan_peer) (rendering for host 'dc1-edge')",
        "tests/data/bad/undefined-var.yml:12:41: error: undefined 'vars.priority' (vars has: vrid) (rendering for host 'dc1-edge')",
        "tests/data/bad/undefined-var.yml:17:5: error: step 'check-arg': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/undefined-var.yml:21:29: error: undefined 'host.data.service_ip' (host.data has: asn, loopback, role, site, wan_peer) (rendering for host 'dc2-edge')",
    ],
    "unknown-hosts.yml": [
        "tests/data/bad/unknown-hosts.yml:5:3: error: target 'dc3' selects no host (no host matches)",
        "tests/data/bad/unknown-hosts.yml:6:20: error: target 'edges': unknown group 'edgez' (did you mean 'edge'?)",
        "tests/data/bad/unknown-hosts.yml:7:3: error: target 'nothing' has no criteria: give hosts, groups or data",
        "tests/data/bad/unknown-hosts.yml:9:5: error: step 'a': a check without 'assert' proves nothing: add assertions",
        "tests/data/bad/unknown-hosts.yml:11:10: error: unknown target or host 'dc1-edje' in step 'a' (did you mean 'dc1-edge'?)",
        "tests/data/bad/unknown-hosts.yml:13:5: error: step 'b' (kind validate) needs 'on': the targets or hosts it acts on",
        "tests/data/bad/unknown-hosts.yml:15:11: error: step 'b': validation file: '../runbooks/validation/edges.yml' is outside the runbook's directory (files must be in the runbook's directory tree)",
    ],
    "unknown-keys.yml": [
        "tests/data/bad/unknown-keys.yml:3:1: error: unknown key 'descripton' in the runbook (did you mean 'description'?)",
        "tests/data/bad/unknown-keys.yml:8:5: error: unknown key 'on_falure' in step 'drain-dc1' (did you mean 'on_failure'?)",
        "tests/data/bad/unknown-keys.yml:14:9: error: unknown key 'equal' in 'assert[0]' of step 'b' (did you mean 'equals'?)",
    ],
    "unknown-kind.yml": [
        "tests/data/bad/unknown-kind.yml:5:11: error: unknown step kind 'sleep' in step 'a' (known: config, check, wait_until, validate, pause, approval, command, fault)",
        "tests/data/bad/unknown-kind.yml:7:5: error: missing 'kind' in step 'b' (one of: config, check, wait_until, validate, pause, approval, command, fault)",
        "tests/data/bad/unknown-kind.yml:11:11: error: unknown probe kind 'icmp' in probe 'p' (known: packet, service, session)",
    ],
    "wrong-types.yml": [
        "tests/data/bad/wrong-types.yml:1:13: error: 'apiVersion': must be 'drill/v1' (got 'drill/v2')",
        "tests/data/bad/wrong-types.yml:2:7: error: 'name': use letters, digits, '.', '_' and '-', starting with a letter or digit",
        "tests/data/bad/wrong-types.yml:3:7: error: 'mode': must be 'planned', 'unplanned' or 'rehearsal' (got 'maybe')",
        "tests/data/bad/wrong-types.yml:8:11: error: probe 'p', 'rate': must be a valid integer",
        "tests/data/bad/wrong-types.yml:13:14: error: step 'a', 'retries': must be greater than or equal to 0",
        "tests/data/bad/wrong-types.yml:14:17: error: step 'a', 'on_failure': must be 'rollback', 'continue' or 'stop' (got 'explode')",
        "tests/data/bad/wrong-types.yml:17:11: error: step 'b', 'argv': must be a valid list",
        "tests/data/bad/wrong-types.yml:22:9: error: step 'c', 'assert[0]': put comparisons inside 'all', not beside it",
        "tests/data/bad/wrong-types.yml:25:9: error: step 'c', 'assert[1]': an assertion needs a comparison or one of all/any/count",
    ],
}


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in diagnostics are shown as given: run from the repository root."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DRILL_PASSWORD", SECRET)
    monkeypatch.delenv("DRILL_TEST_SURELY_UNSET_USER", raising=False)
    monkeypatch.delenv("DRILL_TEST_SURELY_UNSET_PASSWORD", raising=False)


def _errors(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_runbook(path, **kwargs)
    return [str(d) for d in caught.value.diagnostics]


def test_every_corpus_file_has_expected_lines() -> None:
    on_disk = {p.name for p in (REPO / BAD).glob("*.yml")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_runbook_diagnostics(name: str) -> None:
    assert _errors(BAD / name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_runbook_through_cli(name: str) -> None:
    env = dict(os.environ, DRILL_PASSWORD=SECRET)
    done = subprocess.run(
        [sys.executable, "-m", "drill", "validate", str(BAD / name)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines == EXPECTED[name]
    assert all(LINE.match(line) for line in lines)
    assert "Traceback" not in done.stderr
    assert SECRET not in done.stderr


def test_huge_file_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    filler = "# " + "x" * 1000 + "\n"
    huge.write_text("apiVersion: drill/v1\nname: huge\n" + filler * 1100)
    size = huge.stat().st_size
    assert _errors(huge) == [
        f"{huge}:1:1: error: file is too large ({size} bytes; the limit is 1048576 bytes)"
    ]


def test_huge_file_through_cli(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    huge.write_bytes(b"a: [" + b"1, " * 600_000 + b"]\n")
    done = subprocess.run(
        [sys.executable, "-m", "drill", "validate", str(huge)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert LINE.match(done.stderr)
    assert "Traceback" not in done.stderr


def test_all_errors_of_a_step_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(
        "apiVersion: drill/v1\n"
        "name: many\n"
        "steps:\n"
        "  - name: a\n"
        "    kind: pause\n"
        "    duration: soon\n"
        "    retries: 1000\n"
        "    when_mode: [always]\n"
    )
    assert _errors(path) == [
        f"{path}:6:15: error: step 'a', 'duration': bad duration 'soon': use a number and ms, s, m or h (e.g. 30s)",
        f"{path}:7:14: error: step 'a', 'retries': must be less than or equal to 100",
        f"{path}:8:17: error: step 'a', 'when_mode[0]': must be 'planned', 'unplanned' or 'rehearsal' (got 'always')",
    ]


def test_yaml_11_booleans_are_strings(tmp_path: Path) -> None:
    """`on` must stay a key (YAML 1.1 reads it as True); yes/no are plain words."""
    path = tmp_path / "rb.yml"
    path.write_text(
        "apiVersion: drill/v1\nname: words\nowner: no\nvars: {answer: yes, t: true}\nsteps: []\n"
    )
    loaded = load_runbook(path)
    assert loaded.model.owner == "no"
    assert loaded.vars == {"answer": "yes", "t": True}


# --- good runbooks ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((REPO / GOOD).glob("*.yml")), ids=lambda p: p.name)
def test_good_runbooks_load(path: Path) -> None:
    loaded = load_runbook(path.relative_to(REPO))
    assert isinstance(loaded, LoadedRunbook)
    assert loaded.text == path.read_text()
    assert len(loaded.sha256) == 64


def test_worked_example_hosts_and_vars() -> None:
    loaded = load_runbook(GOOD / "dc1-to-dc2.yml")
    by_name = {ref.step.name: ref.step for ref in loaded.step_refs}
    assert loaded.hosts_for(by_name["bgp-up"]) == ["dc1-edge", "dc2-edge", "wan"]
    assert loaded.hosts_for(by_name["drain-dc1"]) == ["dc1-edge"]
    assert loaded.hosts_for(by_name["path-avoids-dc1"]) == []
    assert loaded.all_hosts() == ["dc1-edge", "dc2-edge", "wan"]
    assert loaded.inventory_path == Path("tests/data/inventory")
    assert loaded.locate(("steps", 1, "name")) == (56, 11)  # "  - name: drain-dc1"


def test_rendered_config_and_context() -> None:
    loaded = load_runbook(GOOD / "dc1-to-dc2.yml", var_overrides={"drained_priority": "20"})
    by_name = {ref.step.name: ref.step for ref in loaded.step_refs}
    lower = by_name["lower-vrrp-dc1"]
    drain = by_name["drain-dc1"]
    assert isinstance(lower, ConfigStep) and isinstance(drain, ConfigStep)
    assert loaded.render_config(lower, "dc1-edge") == "interface eth2\n vrrp 10 priority 20\n"
    assert "router bgp 64501\n bgp graceful-shutdown" in loaded.render_config(drain, "dc1-edge")
    context = loaded.template_context("dc1-edge")
    assert context["host"]["data"]["role"] == "edge"
    assert context["runbook"]["name"] == "dc1-to-dc2"


def test_inline_rollback_step_acts_on_parent_hosts() -> None:
    loaded = load_runbook(GOOD / "validate-and-rollback.yml")
    by_name = {ref.step.name: ref for ref in loaded.step_refs}
    assert by_name["untag-routes"].parent is by_name["tag-routes"]
    assert loaded.hosts_for(by_name["untag-routes"].step) == ["dc1-edge", "dc2-edge"]


def test_inventory_override(tmp_path: Path) -> None:
    path = tmp_path / "rb.yml"
    path.write_text(
        "apiVersion: drill/v1\nname: o\nsteps:\n"
        "  - {name: c, kind: check, on: eos1, getter: get_facts, assert: [{path: vendor, exists: true}]}\n"
    )
    loaded = load_runbook(path, inventory_override=Path("tests/data/inventory-multi/config.yaml"))
    assert loaded.hosts_for(loaded.model.steps[0]) == ["eos1"]
    assert _errors(path, inventory_override=Path("nowhere")) == [
        "nowhere:1:1: error: inventory not found (given with -i)"
    ]


# --- --var ------------------------------------------------------------------------------


def test_var_overrides_are_typed_and_must_exist() -> None:
    path = GOOD / "dc1-to-dc2.yml"
    loaded = load_runbook(path, var_overrides={"vrrp_vrid": "12", "service_ip": "203.0.113.20"})
    assert loaded.vars["vrrp_vrid"] == 12
    assert loaded.vars["service_ip"] == "203.0.113.20"
    assert _errors(path, var_overrides={"vrrp_vird": "12", "vrrp_vrid": "twelve"}) == [
        f"{path}:16:1: error: --var vrrp_vird: the runbook declares no such variable (declared: drained_priority, service_ip, vrrp_interface, vrrp_vrid)",
        f"{path}:18:3: error: --var vrrp_vrid: expected an integer, got 'twelve'",
    ]


def test_var_argument_syntax() -> None:
    assert parse_var_args(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InputError) as caught:
        parse_var_args(["ok=1", "broken"])
    assert [str(d) for d in caught.value.diagnostics] == [
        "<command line>:1:2: error: --var expects NAME=VALUE, got 'broken'"
    ]


# --- the CLI ----------------------------------------------------------------------------


def test_validate_ok_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drill", "validate", str(GOOD / "dc1-to-dc2.yml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, DRILL_PASSWORD=SECRET),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "tests/data/runbooks/dc1-to-dc2.yml: ok (2 prechecks, 5 steps, 1 postchecks, 3 hosts)\n"
    )


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from drill.cli.runbook_commands import schema_command

    schema_command()
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"].startswith("drill runbook")
    assert {"apiVersion", "name", "steps", "targets", "probes"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


# --- nothing connects -------------------------------------------------------------------


def test_validation_never_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    import paramiko

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validation tried to connect")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(paramiko.SSHClient, "connect", refuse)
    for path in sorted(GOOD.glob("*.yml")):
        load_runbook(path)
    for name in EXPECTED:
        with pytest.raises(InputError):
            load_runbook(BAD / name)


def test_render_check_and_command() -> None:
    loaded = load_runbook(GOOD / "dc1-to-dc2.yml")
    by_name = {ref.step.name: ref.step for ref in loaded.step_refs}
    path_check = by_name["path-avoids-dc1"]
    assert isinstance(path_check, CheckStep)
    assert loaded.render_check(path_check, None).traceroute == "203.0.113.10"
    drain = by_name["drain-dc1"]
    assert isinstance(drain, ConfigStep) and drain.check is not None
    assert loaded.render_check(drain.check, "dc1-edge").getter == "get_bgp_neighbors"
    minimal = load_runbook(GOOD / "minimal.yml")
    announce = minimal.model.steps[0]
    assert isinstance(announce, CommandStep)
    assert minimal.render_command(announce).argv == ["echo", "drill minimal starting"]


def test_docs_worked_example_validates_against_the_lab_inventory(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "runbook.md").read_text()
    marker = docs.index("<!-- worked-example")
    start = docs.index("```yaml\n", marker) + len("```yaml\n")
    example = tmp_path / "dc1-to-dc2.yml"
    example.write_text(docs[start : docs.index("```\n", start)])
    loaded = load_runbook(example, inventory_override=REPO / "labs" / "two-dc" / "inventory")
    assert loaded.model.name == "dc1-to-dc2"
    assert loaded.all_hosts() == ["dc1-edge", "dc2-edge", "wan"]


def test_inventory_file_that_is_not_a_nornir_config(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("dc1-edge:\n  hostname: 192.0.2.1\n")
    assert _errors(GOOD / "minimal.yml", inventory_override=hosts) == [
        f"{hosts}:1:1: error: not a nornir config file (no 'inventory' mapping): give a"
        " SimpleInventory directory or a nornir config file"
    ]


def test_endless_device_file_is_refused() -> None:
    assert _errors(Path("/dev/zero")) == [
        "/dev/zero:1:1: error: not a regular file (a FIFO, a device, a directory or stdin):"
        " give a file"
    ]


def test_messages_stay_on_one_line(tmp_path: Path) -> None:
    """Keys come from the file and may hold line breaks; each diagnostic is one line."""
    path = tmp_path / "rb.yml"
    path.write_text('apiVersion: drill/v1\nname: x\n"bad\\nkey": 1\n')
    assert _errors(path) == [
        f"{path}:3:1: error: unknown key 'bad\\nkey' in the runbook (known: apiVersion,"
        " description, evacuate, flows, inventory, isolate, mode, name, owner, postchecks,"
        " prechecks, probes, rto, steps, targets, vars)"
    ]
