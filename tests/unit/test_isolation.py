"""A lab site cut off under a lab-side timer (drill.lab.isolation), without a running lab:
which links a site cut takes, the nftables text that holds the timer, reading the time left
back from nft, the state record, and the CLI's bad input. The cut itself, the timer lifting
it with no drill process left and ``--clear`` are tested on the payment lab
(tests/lab/test_payment_isolation.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drill.errors import ExitCode, InputError
from drill.lab.isolation import cut_rules, parse_expires, site_links, sites
from drill.lab.lab import Lab
from drill.lab.state import FaultRecord, LabState
from drill.lab.status import render_status

REPO = Path(__file__).resolve().parents[2]
PAYMENT = REPO / "labs" / "payment-dr"
TWO_DC = REPO / "labs" / "two-dc"


def _links(lab: Lab, site: str) -> set[frozenset[str]]:
    return {frozenset((str(v.a), str(v.b))) for v in site_links(lab, site)}


def test_payment_dc1_is_cut_at_the_wan_the_routed_dci_and_the_stretched_vlan() -> None:
    lab = Lab(PAYMENT)
    assert sites(lab.plan) == ["dc1", "dc2", "wan"]
    assert _links(lab, "dc1") == {
        frozenset(("wan:eth1", "dc1-edge:eth1")),
        frozenset(("dc1-edge:eth2", "dc2-edge:eth2")),
        frozenset(("br-dc1:dci-l2", "br-dc2:dci-l2")),
    }
    assert _links(lab, "dc2") == {
        frozenset(("wan:eth2", "dc2-edge:eth1")),
        frozenset(("dc1-edge:eth2", "dc2-edge:eth2")),
        frozenset(("br-dc1:dci-l2", "br-dc2:dci-l2")),
    }
    # The client is in the wan site too: its link to wan stays.
    assert _links(lab, "wan") == {
        frozenset(("wan:eth1", "dc1-edge:eth1")),
        frozenset(("wan:eth2", "dc2-edge:eth1")),
    }


def test_two_dc_dc1_is_cut_from_the_unlabelled_bridge_too() -> None:
    lab = Lab(TWO_DC)
    assert _links(lab, "dc1") == {
        frozenset(("wan:eth1", "dc1-edge:eth1")),
        frozenset(("dc1-edge:eth2", "dc2-edge:eth2")),
        frozenset(("dc1-edge:eth3", "br-dci:dci-dc1e")),
        frozenset(("app1:eth1", "br-dci:dci-app1")),
    }


def test_an_unknown_site_names_the_sites_there_are() -> None:
    with pytest.raises(InputError) as info:
        site_links(Lab(PAYMENT), "dc3")
    message = str(info.value)
    assert "\n" not in message
    assert "`dc3`" in message and "dc1, dc2, wan" in message


def test_a_site_with_no_link_elsewhere_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "t.clab.yml").write_text(
        "name: isotest\n"
        "mgmt: {network: isotest, ipv4-subnet: 198.18.7.0/24}\n"
        "topology:\n"
        "  nodes:\n"
        "    a: {kind: linux, labels: {drill.site: here}}\n"
        "    b: {kind: linux, labels: {drill.site: here}}\n"
        "    c: {kind: linux, labels: {drill.site: there}}\n"
        "  links:\n"
        '    - endpoints: ["a:eth1", "b:eth1"]\n'
    )
    with pytest.raises(InputError) as info:
        site_links(Lab(tmp_path), "here")
    assert "has no link to another site (sites: here, there)" in str(info.value)


def test_cut_rules_hold_the_timer_in_a_set_element_per_interface() -> None:
    text = cut_rules("dc1", ["eth1", "eth2", "eth1"], 4.0)
    lines = text.splitlines()
    # Replaces an earlier cut of the same site in the same transaction (new timer).
    assert lines[:3] == [
        "add table netdev drill_site_dc1",
        "delete table netdev drill_site_dc1",
        "table netdev drill_site_dc1 {",
    ]
    assert 'elements = { "eth1" timeout 4000ms, "eth2" timeout 4000ms }' in text
    for iface in ("eth1", "eth2"):
        assert (
            f'chain in_{iface} {{ type filter hook ingress device "{iface}" priority -500; '
            "policy accept; iifname @cut drop; }"
        ) in text
        assert (
            f'chain out_{iface} {{ type filter hook egress device "{iface}" priority -500; '
            "policy accept; oifname @cut drop; }"
        ) in text
    assert text.count("chain ") == 4  # the repeated eth1 is cut once


@pytest.mark.parametrize(
    ("seconds", "timeout"), [(0.0004, "1ms"), (1.5, "1500ms"), (60, "60000ms")]
)
def test_cut_rules_timeouts_are_whole_milliseconds(seconds: float, timeout: str) -> None:
    assert f'"dci-l2" timeout {timeout}' in cut_rules("dc1", ["dci-l2"], seconds)


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_cut_without_a_timer_is_refused(seconds: float) -> None:
    with pytest.raises(InputError):
        cut_rules("dc1", ["eth1"], seconds)


@pytest.mark.parametrize(
    ("listing", "seconds"),
    [
        ('{ "eth1" timeout 4s expires 3s999ms }', 3.999),
        ('{ "eth1" timeout 1d expires 23h59m59s5ms }', 86399.005),
        ('{ "eth1" timeout 5s expires 120ms, "eth2" timeout 5s expires 4s }', 4.0),
        ("set cut {\n\t\ttype ifname\n\t\tflags timeout\n\t}", None),
        ("", None),
    ],
)
def test_time_left_is_read_from_nft_listing(listing: str, seconds: float | None) -> None:
    assert parse_expires(listing) == seconds


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a scratch network namespace)")
def test_the_kernel_takes_the_rules_and_reports_the_timer() -> None:
    """The text is valid nft on this kernel (netdev egress hook, ifname set with timeouts)
    and ``nft list set`` shows the element's time left in the form parse_expires reads."""
    ns = f"drill-isotest-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(
            ["ip", "-n", ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth2"],
            check=True,
        )
        for rules in (cut_rules("dc1", ["eth1", "eth2"], 600), cut_rules("dc1", ["eth1"], 300)):
            subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True
            )
        listing = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "list", "set", "netdev", "drill_site_dc1", "cut"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        left = parse_expires(listing)
        # The second cut replaced the first: one element, with the second timer.
        assert '"eth2"' not in listing, listing
        assert left is not None and 0 < left <= 300, listing
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_old_state_files_without_expiry_still_load() -> None:
    old = {
        "name": "x",
        "topology": "t",
        "faults": [{"kind": "link", "target": "a:b", "mode": "down"}],
    }
    state = LabState.from_json(json.dumps(old))
    assert state.faults == [FaultRecord("link", "a:b", "down", expires_at=None)]
    new = LabState.from_json(
        json.dumps({**old, "faults": [{"kind": "site", "target": "dc1", "mode": "blackhole",
                                       "expires_at": 1796000000.5}]})
    )  # fmt: skip
    assert new.faults[0].expires_at == 1796000000.5 and new.faults[0].key == "site dc1"


def _report(remaining: float | None) -> dict[str, object]:
    return {
        "lab": "payment-dr", "up": True, "converged": True, "nodes": {}, "problems": [],
        "faults": [
            {"kind": "site", "target": "dc1", "mode": "blackhole", "expires_at": 1.0,
             "remaining": remaining},
            {"kind": "link", "target": "wan:eth1:dc1-edge:eth1", "mode": "down",
             "expires_at": None},
        ],
    }  # fmt: skip


def test_status_says_when_the_lab_timer_lifts_the_cut() -> None:
    assert (
        "faults: site dc1 blackhole (lifts in 2.5 s), link wan:eth1:dc1-edge:eth1 down"
        in render_status(_report(2.5))
    )
    assert "faults: site dc1 blackhole expired (lifted by the lab timer), link" in render_status(
        _report(0.0)
    )


def _cli(*args: str) -> tuple[int, str]:
    """Through drill's real entry point, where errors become exit codes."""
    from drill.cli.app import main

    out = io.StringIO()
    argv = sys.argv
    sys.argv = ["drill", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            main()
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    finally:
        sys.argv = argv
    return 0, out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["site", "dc1"], "a site cut needs --for DURATION"),
        (["site", "dc1", "--for", "5x"], "bad duration '5x'"),
        (["site", "dc1", "--for", "0s"], "longer than 0s"),
        (["site", "dc1", "--for", "200h"], "limit of 7 days"),
        (["site", "dc1", "--for", "5s", "--mode", "down"], "--mode blackhole only"),
        (["site", "dc3", "--for", "5s"], "sites: dc1, dc2, wan"),
        (["link", "wan:dc1-edge", "--for", "5s"], "--for is for `site`"),
        (["--clear", "--for", "5s"], "--for is for cutting a site"),
    ],
)
def test_bad_site_fault_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, out = _cli("lab", "fault", str(PAYMENT), *args)
    assert code == int(ExitCode.INVALID_INPUT), out
    assert message in out, out
    assert len(out.strip().splitlines()) == 1, out
    assert "Traceback" not in out
