"""Secret masking: table-driven, one row per syntax seen in FRR/IOS/EOS/Junos configs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drill.secrets import (
    LINE_RULES,
    REDACTED,
    Secret,
    is_secret_key,
    mask_lines,
    mask_literals,
    mask_secrets,
    redact_mapping,
)

# (sent, expected): the secret value goes, the line's structure stays.
MASKED = [
    # FRR
    ("password zebra", "password <redacted>"),
    ("enable password zebra", "enable password <redacted>"),
    (" neighbor 198.51.100.1 password s3cr3t", " neighbor 198.51.100.1 password <redacted>"),
    (" neighbor PEERS password s3cr3t", " neighbor PEERS password <redacted>"),
    (" ip ospf authentication-key abcdefgh", " ip ospf authentication-key <redacted>"),
    (" ip ospf message-digest-key 1 md5 K3y!", " ip ospf message-digest-key 1 md5 <redacted>"),
    (
        " ipv6 ospf6 authentication keyid 1 hash-algo sha256 key K3y",
        " ipv6 ospf6 authentication keyid 1 hash-algo sha256 key <redacted>",
    ),
    (" area-password clear isisPW", " area-password clear <redacted>"),
    (" domain-password md5 isisPW", " domain-password md5 <redacted>"),
    (" isis password clear isisPW", " isis password clear <redacted>"),
    (" ip rip authentication string ripPW", " ip rip authentication string <redacted>"),
    ("  key-string chainKey", "  key-string <redacted>"),
    # IOS / IOS-XE
    ("enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0", "enable secret 5 <redacted>"),
    ("enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0", "enable secret 9 <redacted>"),
    (
        "username admin privilege 15 password 0 cisco",
        "username admin privilege 15 password 0 <redacted>",
    ),
    (
        " neighbor 198.51.100.1 password 7 0822455D0A16",
        " neighbor 198.51.100.1 password 7 <redacted>",
    ),
    (" key-string 7 105A1D0D0A15", " key-string 7 <redacted>"),
    ("snmp-server community public RO 99", "snmp-server community <redacted> RO 99"),
    (
        "snmp-server host 198.51.100.9 version 2c trapComm",
        "snmp-server host 198.51.100.9 version 2c <redacted>",
    ),
    ("tacacs-server key 7 0802455D0A16", "tacacs-server key 7 <redacted>"),
    ("radius-server host 192.0.2.5 key radKey", "radius-server host 192.0.2.5 key <redacted>"),
    (" key 7 0802455D0A16", " key 7 <redacted>"),
    (
        "crypto isakmp key ikeKey address 203.0.113.1",
        "crypto isakmp key <redacted> address 203.0.113.1",
    ),
    (
        " pre-shared-key address 203.0.113.1 key ikeKey",
        " pre-shared-key address 203.0.113.1 key <redacted>",
    ),
    (" pre-shared-key local ikeKey", " pre-shared-key local <redacted>"),
    ("ntp authentication-key 1 md5 ntpKey 7", "ntp authentication-key 1 md5 <redacted> 7"),
    (
        " standby 1 authentication md5 key-string hsrpK",
        " standby 1 authentication md5 key-string <redacted>",
    ),
    (" vrrp 1 authentication text vrrpK", " vrrp 1 authentication text <redacted>"),
    # EOS
    (
        "username admin role network-admin secret sha512 $6$Ab$Cd",
        "username admin role network-admin secret sha512 <redacted>",
    ),
    ("enable password sha512 $6$Ab$Cd", "enable password sha512 <redacted>"),
    # Junos, hierarchical and set style
    (
        '    encrypted-password "$6$abc$def"; ## SECRET-DATA',
        '    encrypted-password "<redacted>"; ## SECRET-DATA',
    ),
    (
        '  authentication-key "$9$xyz"; ## SECRET-DATA',
        '  authentication-key "<redacted>"; ## SECRET-DATA',
    ),
    ('  secret "$9$xyz";', '  secret "<redacted>";'),
    ("  secret $9$xyz;", "  secret <redacted>;"),
    ('  pre-shared-key ascii-text "$9$xyz";', '  pre-shared-key ascii-text "<redacted>";'),
    ("    community public {", "    community <redacted> {"),
    (
        "set snmp community public authorization read-only",
        "set snmp community <redacted> authorization read-only",
    ),
    (
        'set system root-authentication encrypted-password "$6$a$b"',
        'set system root-authentication encrypted-password "<redacted>"',
    ),
    (
        'set system login user ops authentication plain-text-password-value "pw1"',
        'set system login user ops authentication plain-text-password-value "<redacted>"',
    ),
    (" wpa-psk ascii 0 wifiKey", " wpa-psk ascii 0 <redacted>"),
    # unified diffs keep their markers
    ("+ neighbor 198.51.100.1 password newPW", "+ neighbor 198.51.100.1 password <redacted>"),
    ("- neighbor 198.51.100.1 password oldPW", "- neighbor 198.51.100.1 password <redacted>"),
    ("+    community public {", "+    community <redacted> {"),
    # key/value and URLs, as they show up in error messages and probe definitions
    ("password=hunter2 user=root", "password=<redacted> user=root"),
    (
        "{'username': 'root', 'password': 'hunter2'}",
        "{'username': 'root', 'password': '<redacted>'}",
    ),
    ('{"secret": "hunter2"}', '{"secret": "<redacted>"}'),
    ("GET https://ops:hunter2@192.0.2.10/health", "GET https://ops:<redacted>@192.0.2.10/health"),
    ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer <redacted>"),
]

# Lines that carry no secret must come back unchanged.
UNCHANGED = [
    "service password-encryption",
    "security passwords min-length 8",
    "no neighbor 198.51.100.1 password",
    " ip ospf authentication message-digest",
    "key chain OSPF",
    " key 1",
    " set community 65535:0",
    "bgp community-list standard GSHUT permit 65535:0",
    " neighbor 198.51.100.1 remote-as 65001",
    "ssh: password authentication failed for root",
    "router bgp 65000",
    "interface eth1\n ip address 198.18.1.1/30",
]


@pytest.mark.parametrize(("sent", "expected"), MASKED)
def test_secret_lines_lose_only_their_value(sent: str, expected: str) -> None:
    assert mask_secrets(sent) == expected


@pytest.mark.parametrize("sent", UNCHANGED)
def test_lines_without_secrets_are_left_alone(sent: str) -> None:
    assert mask_secrets(sent) == sent


def test_a_value_never_reaches_across_a_newline() -> None:
    text = (
        "router bgp 65000\n no neighbor 198.51.100.1 password\n neighbor 198.51.100.1 remote-as 1"
    )
    assert mask_secrets(text) == text


def test_multiline_config_masks_each_line() -> None:
    config = (
        "router bgp 65000\n"
        " neighbor 198.51.100.1 password one\n"
        " neighbor 198.51.100.2 password two\n"
        "!\n"
    )
    masked = mask_secrets(config)
    assert "one" not in masked.split() and "two" not in masked.split()
    assert masked.count(REDACTED) == 2
    assert masked.count("\n") == config.count("\n")


def test_pem_private_key_body_is_masked() -> None:
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"
    masked = mask_secrets(pem)
    assert "b3BlbnNzaC1rZXk" not in masked
    assert masked.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert masked.endswith("-----END OPENSSH PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("auth failed for root with lab-pw", ["lab-pw"], "auth failed for root with <redacted>"),
        ("x lab-pw y lab-pw", ["lab-pw"], "x <redacted> y <redacted>"),
        ("abcdef", ["abc", "abcdef"], "<redacted>"),
        ("nothing here", ["", "absent"], "nothing here"),
        ("a.b*c", ["b*"], "a.<redacted>c"),  # regex metacharacters are literal
    ],
)
def test_literal_secrets_are_masked_anywhere(text: str, secrets: list[str], expected: str) -> None:
    assert mask_literals(text, secrets) == expected


def test_mask_secrets_applies_literals_and_rules() -> None:
    text = "error from 198.18.0.11: bad login lab-pw\n neighbor 198.51.100.1 password peerPW"
    masked = mask_secrets(text, ["lab-pw"])
    assert "lab-pw" not in masked and "peerPW" not in masked
    assert masked.count(REDACTED) == 2


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_masking_is_idempotent(text: str) -> None:
    once = mask_secrets(text, ["hunter2"])
    assert mask_secrets(once, ["hunter2"]) == once


@given(
    # upper case and >= 4 characters: never a substring of "<redacted>" or of the
    # fixed text around it, so finding it after masking means it leaked
    secret=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$!", min_size=4, max_size=30),
    prefix=st.sampled_from(["", "error: ", "+ "]),
)
def test_a_known_literal_secret_never_survives(secret: str, prefix: str) -> None:
    text = f"{prefix}neighbor 198.51.100.1 password {secret}\nlogin {secret} refused"
    assert secret not in mask_secrets(text, [secret])


def test_lines_mask_also_without_literals() -> None:
    assert mask_lines("password zebra") == "password <redacted>"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("Password", True),
        ("enable_secret", True),
        ("private-key", True),
        ("api_key", True),
        ("community", True),
        ("host_key_policy", False),
        ("username", False),
        ("hostname", False),
        ("key_file", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact_mapping_walks_nested_data_and_copies() -> None:
    data = {
        "hostname": "198.18.0.11",
        "password": "lab-pw",
        "connection_options": {"napalm": {"extras": {"optional_args": {"secret": "en"}}}},
        "users": [{"name": "ops", "password": "x"}],
        "empty": {"password": None},
    }
    redacted = redact_mapping(data)
    assert redacted["password"] == REDACTED
    assert redacted["connection_options"]["napalm"]["extras"]["optional_args"]["secret"] == REDACTED
    assert redacted["users"] == [{"name": "ops", "password": REDACTED}]
    assert redacted["empty"] == {"password": None}
    assert redacted["hostname"] == "198.18.0.11"
    assert data["password"] == "lab-pw"  # the input is not modified


def test_secret_hides_itself() -> None:
    pw = Secret("hunter2")
    assert str(pw) == REDACTED
    assert "hunter2" not in repr(pw)
    assert "hunter2" not in f"{pw:>20}"
    assert pw.reveal() == "hunter2"
    assert pw == Secret("hunter2") and pw != Secret("other")
    assert not Secret("")


def test_every_rule_is_exercised_by_the_table_and_found_by_its_needles() -> None:
    """A rule whose needles miss its own syntax would silently never run."""
    unused = []
    for rule in LINE_RULES:
        pattern = rule.compile()
        rows = [sent for sent, _ in MASKED if pattern.search(sent)]
        if not rows:
            unused.append(rule.name)
        for sent in rows:
            assert any(n in sent.lower() for n in rule.needles), (rule.name, sent)
    assert not unused, f"rules without a test row: {unused}"
