"""Keep secrets out of everything people read: console, journal, report.json, JUnit.

Two layers, both applied by :func:`mask_secrets`:

* secret-bearing configuration lines (FRR, IOS, EOS, Junos) keep their structure and lose
  only the value, so a diff still shows *that* a password changed, never *what* it is;
* literal values the caller knows to be secret (inventory passwords) are replaced wherever
  they appear, because a device may echo them in an error message.

The line rules are data (:data:`LINE_RULES`), not code branches: a new platform's syntax is
one more row.

>>> mask_secrets(" neighbor 198.51.100.1 password s3cret")
' neighbor 198.51.100.1 password <redacted>'
>>> mask_secrets("login failed for root/hunter2", ["hunter2"])
'login failed for root/<redacted>'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

REDACTED: Final = "<redacted>"

# A secret value: a double-quoted string (Junos) or one bare token. Bare tokens stop at ';'
# so Junos' `secret $9$abc;` keeps its terminator.
_VALUE = r"""(?:"(?P<quoted>[^"\n]*)"|'(?P<squoted>[^'\n]*)'|(?P<bare>[^\s"']\S*?)(?=;?(?:\s|$)))"""
# IOS/EOS/NX-OS put an encryption type before the value: `password 7 0822455D0A16`,
# `secret 5 $1$...`, `secret sha512 $6$...`. The type is structure, not secret.
_TYPE = r"(?:(?:[0-9]|sha512|sha256|md5|cleartext|clear|plain|encrypted|text|ascii)[ \t]+)?"


# Prose around a password is not a password: "password authentication failed for root" must
# stay readable. Only these words are spared; anything else after the keyword is masked.
_NOT_A_VALUE = (
    r"(?!(?:for|is|was|are|authentication|required|incorrect|invalid|failed|expired|prompt|"
    r"change|changed|mismatch|of|to|and|or|not|the|a|an|in|on|with|from|must|should)\b)"
)


@dataclass(frozen=True)
class LineRule:
    """One kind of secret-bearing line: ``prefix`` is kept, the value after it is masked."""

    name: str
    prefix: str  # a regex; everything it matches is kept verbatim
    # Lower-case words of which the line must contain one: a rule whose words are absent is
    # skipped, which makes masking a large config ~20x faster (most rules never apply).
    needles: tuple[str, ...]

    def compile(self) -> re.Pattern[str]:
        return re.compile(rf"(?P<keep>{self.prefix}){_VALUE}", re.IGNORECASE | re.MULTILINE)


# `[ \t]` and never `\s` between words: a rule must not reach across a newline into the next
# line (`no neighbor X password` has no value and must stay as it is). `(?<![\w-])` keeps
# `service password-encryption`, `security passwords min-length` and Junos
# `encrypted-password` (its own rule) out of the generic ones.
_LINE_START = r"^[ \t+\-!>]*"  # indentation and unified-diff markers
LINE_RULES: Final[tuple[LineRule, ...]] = (
    LineRule(
        "password",
        needles=("password", "passwd"),
        prefix=r"(?<![\w-])(?:password|passwd)[ \t]+" + _NOT_A_VALUE + _TYPE,
    ),
    LineRule(
        "secret", needles=("secret",), prefix=r"(?<![\w-])secret[ \t]+" + _NOT_A_VALUE + _TYPE
    ),
    LineRule(
        "key-value",
        needles=("password", "passwd", "passphrase", "secret", "token", "api"),
        prefix=r"(?<![\w-])(?:password|passwd|passphrase|secret|token|api[_-]?key)"
        r"['\"]?[ \t]*[:=][ \t]*",
    ),
    LineRule(
        "junos-encrypted-password",
        needles=("encrypted-password",),
        prefix=r"\bencrypted-password[ \t]+",
    ),
    LineRule(
        "junos-plain-text-password",
        needles=("plain-text-password-value",),
        prefix=r"\bplain-text-password-value[ \t]+",
    ),
    LineRule("key-string", needles=("key-string",), prefix=r"\bkey-string[ \t]+" + _TYPE),
    LineRule(
        "authentication-key",
        needles=("authentication-key",),
        prefix=r"\bauthentication-key[ \t]+(?:[0-9]+[ \t]+md5[ \t]+)?",
    ),
    LineRule(
        "ospf-md5",
        needles=("message-digest-key",),
        prefix=r"\bmessage-digest-key[ \t]+[0-9]+[ \t]+md5[ \t]+" + _TYPE,
    ),
    LineRule(
        "ospf6-auth",
        needles=("keyid",),
        prefix=r"\bauthentication[ \t]+keyid[ \t]+[0-9]+[ \t]+hash-algo[ \t]+\S+[ \t]+key[ \t]+",
    ),
    LineRule(
        "isis-password",
        needles=("-password",),
        prefix=r"\b(?:area|domain)-password[ \t]+(?:clear|md5)[ \t]+",
    ),
    LineRule(
        "rip-auth-string", needles=("authentication",), prefix=r"\bauthentication[ \t]+string[ \t]+"
    ),
    LineRule(
        "vrrp-auth-text", needles=("authentication",), prefix=r"\bauthentication[ \t]+text[ \t]+"
    ),
    LineRule(
        "snmp-community", needles=("snmp-server",), prefix=r"\bsnmp-server[ \t]+community[ \t]+"
    ),
    LineRule(
        "snmp-host-community",
        needles=("snmp-server",),
        prefix=r"\bsnmp-server[ \t]+host[ \t]+\S+(?:[ \t]+(?:informs|traps))?"
        r"(?:[ \t]+version[ \t]+(?:1|2c))?[ \t]+",
    ),
    LineRule(
        "junos-snmp-community",
        needles=("community",),
        prefix=r"(?:" + _LINE_START + r"|\bsnmp[ \t]+)community[ \t]+",
    ),
    LineRule(
        "pre-shared-key",
        needles=("pre-shared-key",),
        prefix=r"\bpre-shared-key[ \t]+(?:(?:ascii-text|hexadecimal|local|remote"
        r"|address[ \t]+\S+[ \t]+key)[ \t]+)?" + _TYPE,
    ),
    LineRule(
        "isakmp-key", needles=("isakmp",), prefix=r"\bcrypto[ \t]+isakmp[ \t]+key[ \t]+" + _TYPE
    ),
    LineRule(
        "aaa-server-key",
        needles=("tacacs-server", "radius-server"),
        prefix=r"\b(?:tacacs-server|radius-server)(?:[ \t]+host[ \t]+\S+)?[ \t]+key[ \t]+" + _TYPE,
    ),
    LineRule("typed-key", needles=("key",), prefix=r"(?<![\w-])key[ \t]+[0-9][ \t]+"),
    LineRule("wpa-psk", needles=("wpa-psk",), prefix=r"\bwpa-psk[ \t]+(?:ascii|hex)[ \t]+" + _TYPE),
    LineRule(
        "http-authorization",
        needles=("authorization",),
        prefix=r"\bauthorization:[ \t]*(?:bearer|basic|token)[ \t]+",
    ),
)

_COMPILED: Final = tuple((rule.needles, rule.compile()) for rule in LINE_RULES)
# `scheme://user:password@host`: the password part only.
_URL_USERINFO: Final = re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@", re.I)
# PEM private keys: the whole body goes.
_PEM_KEY: Final = re.compile(
    r"(?P<keep>-----BEGIN [A-Z ]*PRIVATE KEY-----).*?(?=-----END [A-Z ]*PRIVATE KEY-----)",
    re.DOTALL,
)


def _mask_match(match: re.Match[str]) -> str:
    keep = match.group("keep")
    if match.group("quoted") is not None:
        return f'{keep}"{REDACTED}"'
    if match.group("squoted") is not None:
        return f"{keep}'{REDACTED}'"
    return f"{keep}{REDACTED}"


def mask_lines(text: str) -> str:
    """Mask the value on every secret-bearing configuration line, keep everything else.

    >>> mask_lines("enable secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0")
    'enable secret 5 <redacted>'
    >>> mask_lines('encrypted-password "$6$abc$def"; ## SECRET-DATA')
    'encrypted-password "<redacted>"; ## SECRET-DATA'
    >>> mask_lines("no neighbor 198.51.100.1 password")
    'no neighbor 198.51.100.1 password'
    """
    lowered = text.lower()  # masking only removes needles, never adds one: compute once
    for needles, pattern in _COMPILED:
        if any(needle in lowered for needle in needles):
            text = pattern.sub(_mask_match, text)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group('keep')}{REDACTED}@", text)
    if "PRIVATE KEY-----" in text:
        text = _PEM_KEY.sub(lambda m: f"{m.group('keep')}\n{REDACTED}\n", text)
    return text


# A secret shorter than this is masked only as a whole token: masking the password "e"
# inside every word would corrupt text and JSON ("name" -> "nam<redacted>") and, by
# showing where the letter is, tell the reader the password.
SHORT_SECRET: Final = 8


def _literal(value: str) -> str:
    """The regex for one secret value: anywhere when long, on token boundaries when short
    (a boundary is needed only where the value's own edge is a word character)."""
    body = re.escape(value)
    if len(value) >= SHORT_SECRET:
        return body
    before = r"(?<![A-Za-z0-9_])" if re.match(r"\w", value[0]) else ""
    after = r"(?![A-Za-z0-9_])" if re.match(r"\w", value[-1]) else ""
    return before + body + after


def mask_literals(text: str, secrets: Iterable[str]) -> str:
    """Replace each given secret value: long ones everywhere, short ones as whole tokens.

    Longest first, so a secret that contains another is masked whole.

    >>> mask_literals("user admin pass Zebra-1 and Zebra-12", ["Zebra-1", "Zebra-12"])
    'user admin pass <redacted> and <redacted>'
    >>> mask_literals('{"name": "e", "state": "e x"}', ["e"])
    '{"name": "<redacted>", "state": "<redacted> x"}'
    """
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values:
        return text
    pattern = re.compile("|".join(_literal(v) for v in values))
    return pattern.sub(REDACTED, text)


def mask_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of JSON-like data with every string VALUE masked (keys are structure and
    stay as they are): the way to mask something that will be serialized.

    >>> mask_data({"name": "r1", "error": "login e refused", "n": [1, "e"]}, ["e"])
    {'name': 'r1', 'error': 'login <redacted> refused', 'n': [1, '<redacted>']}
    """
    known = tuple(secrets)
    if isinstance(value, str):
        return mask_secrets(value, known)
    if isinstance(value, Mapping):
        return {key: mask_data(item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(item, known) for item in value]
    return value


# Secret values met while reading inputs (inventory passwords, secret-named data and vars),
# so that an error message about those inputs can be masked at the one place it is printed.
_KNOWN: set[str] = set()


def remember(values: Iterable[Any]) -> None:
    """Add secret values read from an input; non-strings and empty strings are ignored."""
    _KNOWN.update(v for v in values if isinstance(v, str) and v)


def known_secrets() -> tuple[str, ...]:
    return tuple(_KNOWN)


def secret_values(data: Any) -> list[str]:
    """Every string under a secret-named key in nested data (inventory layers, vars).

    >>> secret_values({"hostname": "r1", "password": "x", "data": {"bgp_secret": "y"}})
    ['x', 'y']
    """
    found: list[str] = []
    if isinstance(data, Mapping):
        for key, item in data.items():
            if isinstance(key, str) and is_secret_key(key) and isinstance(item, str):
                found.append(item)
            else:
                found.extend(secret_values(item))
    elif isinstance(data, list | tuple):
        for item in data:
            found.extend(secret_values(item))
    return found


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secret-bearing config lines and every literal secret value in ``text``.

    Literal values go first: a rule-masked line must not leave a fragment of a known secret
    behind (e.g. a quoted value that also appears elsewhere).

    >>> mask_secrets("snmp-server community public RO")
    'snmp-server community <redacted> RO'
    >>> mask_secrets("ssh root@198.18.0.11: auth failed (pw=lab-pw)", ["lab-pw"])
    'ssh root@198.18.0.11: auth failed (pw=<redacted>)'
    """
    return mask_lines(mask_literals(text, secrets))


# --- structured data ------------------------------------------------------------------

SECRET_KEY_WORDS: Final = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "key",
        "community",
        "psk",
        "credential",
        "credentials",
        "apikey",
    }
)


def is_secret_key(name: str) -> bool:
    """True when a mapping key names a secret: the whole name or its last word is one.

    ``host_key_policy`` is not a secret (last word "policy"); ``private_key`` is.

    >>> [is_secret_key(k) for k in ("password", "Enable-Secret", "private_key", "host_key_policy")]
    [True, True, True, False]
    """
    lowered = name.lower()
    if lowered in SECRET_KEY_WORDS:
        return True
    words = [w for w in re.split(r"[_\-. ]+", lowered) if w]
    return bool(words) and words[-1] in SECRET_KEY_WORDS


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` (nested dicts and lists too) with secret-named values redacted.

    ``None`` and empty values stay as they are: saying "no password" reveals nothing and
    helps when debugging an inventory.

    >>> redact_mapping({"hostname": "198.18.0.11", "password": "x", "extras": {"secret": 7}})
    {'hostname': '198.18.0.11', 'password': '<redacted>', 'extras': {'secret': '<redacted>'}}
    """
    return {key: _redact_value(key, value) for key, value in data.items()}


def _redact_value(key: Any, value: Any) -> Any:
    if isinstance(key, str) and is_secret_key(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_redact_value(None, item) for item in value]
    return value


class Secret:
    """A string that never shows itself by accident: ``str``, ``repr`` and f-strings all give
    ``<redacted>``; :meth:`reveal` is the one explicit way to the value.

    >>> pw = Secret("hunter2")
    >>> f"password={pw}", repr(pw), pw.reveal()
    ('password=<redacted>', "Secret('<redacted>')", 'hunter2')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __format__(self, spec: str) -> str:
        return format(REDACTED, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
