"""One rule for names that become file names or console text (runbook, step, probe and host
names, run ids), and one escape for everything printed.

* :func:`name_problem`: control characters (C0, DEL, C1: ESC, newline...) and names longer
  than :data:`MAX_NAME` are invalid input; anything else (spaces, ``/``, unicode) is allowed.
* :func:`file_component`: a name as ONE file-name component, percent-encoded so that two
  different names never share a file (``r 1`` -> ``r%201``, ``r_1`` stays ``r_1``).
* :func:`printable`: text for a terminal, control characters shown as escapes.
"""

from __future__ import annotations

import logging
import re
from typing import Final

log = logging.getLogger(__name__)

MAX_NAME: Final = 128
# C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi
# overrides a terminal or an editor would act on.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Characters kept as they are in a file name; everything else (and '%') is encoded.
_FILE_SAFE: Final = re.compile(r"[A-Za-z0-9._-]")
RUN_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def name_problem(name: str, what: str = "name") -> str | None:
    """Why ``name`` cannot be used as a name, or None.

    >>> name_problem("dc1 edge") is None
    True
    >>> name_problem("a\\x1b[2Jb", "step name")
    "step name 'a\\\\x1b[2Jb' contains a control character (\\\\x1b)"
    >>> name_problem("x" * 129)
    'name is 129 characters long (the limit is 128)'
    """
    if not name:
        return f"{what} is empty"
    found = _CONTROL.search(name)
    if found:
        return (
            f"{what} '{printable(name[:MAX_NAME])}' contains a control character "
            f"({printable(found.group())})"
        )
    if len(name) > MAX_NAME:
        return f"{what} is {len(name)} characters long (the limit is {MAX_NAME})"
    if name in (".", ".."):
        return f"{what} {name!r} cannot be a file name"
    return None


def file_component(name: str) -> str:
    """``name`` as one file-name component: reversible, so distinct names stay distinct.

    >>> [file_component(n) for n in ("r1", "r 1", "r_1", "a/b", "..", "50%")]
    ['r1', 'r%201', 'r_1', 'a%2Fb', '%2E%2E', '50%25']
    """
    if name in (".", ".."):
        return "".join(f"%{ord(c):02X}" for c in name)
    out = []
    for char in name:
        if _FILE_SAFE.match(char):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters become visible escapes; a newline
    and a tab are kept only when ``text`` is multi-line output the caller meant to print.

    >>> printable("state postchecking\\n-> succeeded\\x1b[2J")
    'state postchecking\\\\n-> succeeded\\\\x1b[2J'
    """
    return _CONTROL.sub(_escape, text)


def printable_lines(text: str) -> str:
    """Like :func:`printable` but keeps newlines and tabs (multi-line messages, diffs)."""
    return "\n".join(printable(line.replace("\t", "    ")) for line in text.split("\n"))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def run_id_problem(run_id: str) -> str | None:
    """Why ``run_id`` cannot name a run directory, or None (never a path).

    >>> run_id_problem("20261124T161500Z-dc1-to-dc2-ab12") is None
    True
    >>> run_id_problem("../../etc")[:30]
    "malformed run id '../../etc' ("
    """
    if RUN_ID.match(run_id) and ".." not in run_id:
        return None
    shown = printable(run_id[:80])
    return (
        f"malformed run id {shown!r} (a run id is letters, digits, '.', '_' and '-'; "
        "see 'drill status')"
    )
