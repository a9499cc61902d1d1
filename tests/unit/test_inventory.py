"""Inventory reading: nornir's group and data resolution, selectors, ${env:NAME}
credentials, the nornir config-file form, and InitNornir built from nornir_config()."""

from __future__ import annotations

from pathlib import Path

import pytest

from drill.errors import InputError
from drill.runbook.inventory import load_inventory, nornir_config
from drill.runbook.model import TargetSelector

DATA = Path(__file__).resolve().parents[1] / "data"
LAB = DATA / "inventory"
MULTI = DATA / "inventory-multi" / "config.yaml"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_PASSWORD", "from-the-environment")


def test_hosts_groups_and_merged_data() -> None:
    inventory = load_inventory(LAB)
    assert sorted(inventory.hosts) == ["app1", "app2", "dc1-edge", "dc2-edge", "wan"]
    edge = inventory.hosts["dc1-edge"]
    assert edge.groups == ("edge", "routers")  # nested group resolved, nornir's order
    assert edge.platform == "frr"  # from group 'routers' via 'edge'
    assert edge.port == 22
    assert edge.username == "root"  # from defaults
    assert edge.data == {
        "site": "dc1",
        "asn": 64501,
        "loopback": "192.0.2.1",
        "role": "edge",
        "wan_peer": "198.51.100.1",
    }
    assert inventory.hosts["app1"].platform is None
    assert inventory.groups == frozenset({"routers", "edge", "wan", "app"})


def test_secrets_are_not_kept() -> None:
    inventory = load_inventory(LAB)
    assert "from-the-environment" not in repr(inventory)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (TargetSelector(groups=["routers"]), ["dc1-edge", "dc2-edge", "wan"]),
        (TargetSelector(groups=["edge", "app"]), ["app1", "app2", "dc1-edge", "dc2-edge"]),
        (TargetSelector(data={"site": "dc1"}), ["app1", "dc1-edge"]),
        (TargetSelector(data={"site": "dc1", "role": "edge"}), ["dc1-edge"]),
        (TargetSelector(hosts=["wan", "app2"]), ["app2", "wan"]),
        (TargetSelector(hosts=["wan", "app2"], groups=["app"]), ["app2"]),
        (TargetSelector(data={"site": "dc9"}), []),
    ],
)
def test_select(selector: TargetSelector, expected: list[str]) -> None:
    assert load_inventory(LAB).select(selector) == expected


def test_config_file_form() -> None:
    inventory = load_inventory(MULTI)
    assert {h.name: h.platform for h in inventory.hosts.values()} == {
        "edge1": "frr",
        "eos1": "eos",
        "nx1": "nxos",
        "weird1": "vendorx",
    }


def test_unset_env_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRILL_PASSWORD")
    with pytest.raises(InputError) as caught:
        load_inventory(LAB)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{LAB / 'defaults.yaml'}:3:11: error: environment variable 'DRILL_PASSWORD' is not set"
        " (needed by defaults)"
    ]


def test_missing_inventory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{tmp_path / 'hosts.yaml'}:1:1: error: inventory hosts file not found"
    ]


def test_unsupported_plugin(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("inventory:\n  plugin: NetBoxInventory2\n")
    with pytest.raises(InputError) as caught:
        load_inventory(config)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{config}:2:11: error: inventory plugin 'NetBoxInventory2' is not supported"
        " (use SimpleInventory)"
    ]


def test_type_errors_never_echo_secrets(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text("r1:\n  password: [hunter2]\n")
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path)
    assert "hunter2" not in str(caught.value)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{tmp_path / 'hosts.yaml'}:2:13: error: host 'r1': 'password' must be a string"
    ]


def test_nornir_config_builds_nornir_with_env_credentials() -> None:
    from nornir import InitNornir

    config = nornir_config(LAB)
    assert config["logging"] == {"enabled": False}
    assert Path(config["inventory"]["options"]["host_file"]).is_absolute()
    nr = InitNornir(**config)
    host = nr.inventory.hosts["dc1-edge"]
    assert host.password == "from-the-environment"
    assert host.platform == "frr"
    assert host.hostname == "198.18.0.12"
    assert host["role"] == "edge"


def test_nornir_config_keeps_runner_of_config_file() -> None:
    config = nornir_config(MULTI)
    assert config["runner"] == {"plugin": "threaded", "options": {"num_workers": 10}}
    assert config["inventory"]["options"]["host_file"] == str(MULTI.parent / "hosts.yaml")


def test_group_lists_with_non_names_are_type_errors(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text("r1:\n  groups: [{a: 1}, edge]\n")
    (tmp_path / "groups.yaml").write_text("edge: {}\n")
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path)
    assert [str(d) for d in caught.value.diagnostics] == [
        f"{tmp_path / 'hosts.yaml'}:2:11: error: host 'r1': 'groups' must be a list of group names"
    ]
