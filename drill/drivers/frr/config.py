"""Pure helpers for FRR configuration text: normalizing, reading frr-reload's plan, errors.

FRR applies configuration line by line and reports problems only as text, so everything the
driver knows about a change comes from parsing these outputs.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

# Lines FRR prints around the configuration that are not configuration: they differ between
# `show running-config` and `... no-header`, and "frr version" changes with upgrades.
_BANNER = re.compile(r"^(Building configuration\.\.\.|Current configuration:|frr version .*)$")

# vtysh reports a rejected line with a leading '%', e.g. "% Unknown command",
# "% Specify remote-as or peer-group commands first"; vtysh -f/-C prefix it with "line N: ".
_ERROR_LINE = re.compile(r"^(?:line \d+: )?%.*$|^line \d+: .*(?:Failure|Unknown|Error).*$", re.M)


def normalize_running_config(text: str) -> str:
    """Return FRR configuration text without banner lines and trailing whitespace.

    Two configurations are the same for the engine's "exact restore" check exactly when their
    normalized texts are equal.

    >>> normalize_running_config(
    ...     "Building configuration...\\r\\n\\nCurrent configuration:\\n!\\n"
    ...     "frr version 8.4.4\\nhostname r1  \\n!\\nend\\n\\n"
    ... )
    '!\\nhostname r1\\n!\\nend\\n'
    >>> normalize_running_config("")
    ''
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    kept = [line for line in lines if not _BANNER.match(line)]
    # The banner is followed by an empty line; leading/trailing blank lines carry no meaning.
    body = "\n".join(kept).strip("\n")
    return f"{body}\n" if body else ""


def error_lines(output: str) -> list[str]:
    """Return the lines in which vtysh or frr-reload rejected something.

    >>> error_lines("ok\\n% Unknown command: bgp foo\\nline 2: Failure to communicate[13]")
    ['% Unknown command: bgp foo', 'line 2: Failure to communicate[13]']
    >>> error_lines("Lines To Add\\n interface eth1")
    []
    """
    return [m.group(0).strip() for m in _ERROR_LINE.finditer(output.replace("\r\n", "\n"))]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _undo_command(command: str) -> str:
    """frr-reload deletes `X` by running `no X` and deletes `no X` by running `X`."""
    stripped = command.strip()
    original = stripped[3:] if stripped.startswith("no ") else f"no {stripped}"
    return " " * _indent(command) + original


def _render_section(lines: list[str], mark: str, undo: bool) -> list[str]:
    """Mark changed lines; a line followed by a deeper-indented one is only context.

    frr-reload repeats the context before every changed line; show it once per run.
    """
    out: list[str] = []
    context: list[str] = []  # enclosing context lines, by depth, as last printed
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else None
        depth = _indent(line)
        if following is not None and _indent(following) > depth:
            level = len([c for c in context if _indent(c) < depth])
            if context[level : level + 1] != [line]:
                out.append(f"  {line}")
            context = [*context[:level], line]
        else:
            context = [c for c in context if _indent(c) < depth]
            shown = _undo_command(line) if undo else line
            out.append(f"{mark} {shown}")
    return out


def reload_plan_to_diff(output: str) -> str:
    """Turn `frr-reload.py --test` output into a diff; empty when nothing would change.

    Deleted lines are shown as they are in the running configuration (frr-reload prints the
    `no ...` command it would run), context lines (`interface eth1`) are unmarked.

    >>> print(reload_plan_to_diff(
    ...     "\\nLines To Delete\\n===============\\ninterface eth1\\n no vrrp 1 priority 150\\n"
    ...     "no ip forwarding\\n\\nLines To Add\\n============\\ninterface eth1\\n"
    ...     " vrrp 1 priority 160\\n"
    ... ))
      interface eth1
    -  vrrp 1 priority 150
    - ip forwarding
      interface eth1
    +  vrrp 1 priority 160
    >>> reload_plan_to_diff("\\nLines To Add\\n============\\n")
    ''
    """
    sections: dict[str, list[str]] = {"delete": [], "add": []}
    current: list[str] | None = None
    for raw in output.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        if line == "Lines To Delete":
            current = sections["delete"]
        elif line == "Lines To Add":
            current = sections["add"]
        elif current is not None and line and not set(line) <= {"="}:
            current.append(line)
    rendered = _render_section(sections["delete"], "-", undo=True)
    rendered += _render_section(sections["add"], "+", undo=False)
    return "\n".join(rendered)


def merged_target(running: str, merge: str) -> str:
    """The full configuration a merge aims at, for frr-reload to compute its plan.

    frr-reload folds repeated contexts (two `interface eth1` blocks) into one, so appending
    the merge text to the running configuration describes the merge exactly, except that a
    `no ...` line in the merge shows up as a line to add (which is the command that will run).

    >>> merged_target("hostname r1\\nend\\n", "interface eth1\\n vrrp 1 priority 50\\n")
    'hostname r1\\n!\\ninterface eth1\\n vrrp 1 priority 50\\n'
    """
    body = [line for line in running.rstrip("\n").split("\n") if line.strip() != "end"]
    return "\n".join([*body, "!", merge.rstrip("\n")]) + "\n"
