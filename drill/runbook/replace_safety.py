"""Safety rules for ``mode: replace``: a replace sends the WHOLE configuration, so a
candidate that renders empty (or nearly) erases the device, management access included.

* an empty candidate (no line but blanks and comments) is refused: at validation when it
  renders empty there (:func:`empty_problem`), and again before the load;
* a candidate that would remove more than the step's ``max_removed`` share (default 50%)
  of the running configuration's lines is refused before anything is loaded or committed
  (:func:`check_replace`).

``allow_wipe: true`` on the step turns both rules off, for the rare real case.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from drill.errors import DrillError, ExitCode

log = logging.getLogger(__name__)

_COMMENT_PREFIXES = ("!", "#")


class ReplaceRefused(DrillError):
    """A replace candidate the safety rules refuse; nothing was loaded or committed."""

    exit_code = ExitCode.INVALID_INPUT


class ReplaceOptions(Protocol):
    """The step fields the rules read (a ConfigStep)."""

    @property
    def max_removed(self) -> str: ...

    @property
    def allow_wipe(self) -> bool: ...


def config_lines(text: str) -> list[str]:
    """The lines that configure something: stripped, without blanks and comments.

    >>> config_lines("!\\nhostname r1\\n  \\n# note\\n router bgp 65001\\n")
    ['hostname r1', 'router bgp 65001']
    """
    stripped = (line.strip() for line in text.splitlines())
    return [line for line in stripped if line and not line.startswith(_COMMENT_PREFIXES)]


def empty_problem(candidate: str) -> str | None:
    """Why a replace candidate is refused without looking at the device, or None.

    >>> empty_problem("!\\n\\n") is not None
    True
    >>> empty_problem("hostname r1") is None
    True
    """
    if config_lines(candidate):
        return None
    return (
        "mode replace with an empty candidate (no configuration line) would erase the "
        "device's whole configuration; fix the template, or set 'allow_wipe: true' on the step "
        "if that is really wanted"
    )


def removed_share(running: str, candidate: str) -> tuple[int, int]:
    """(lines of ``running`` the candidate does not keep, lines of ``running``).

    >>> removed_share("a\\nb\\nc\\nd\\n", "a\\nb\\n")
    (2, 4)
    """
    have = Counter(config_lines(running))
    keep = Counter(config_lines(candidate))
    removed = sum((have - keep).values())
    return removed, sum(have.values())


def check_replace(step: ReplaceOptions, host: str, running: str, candidate: str) -> None:
    """Raise :class:`ReplaceRefused` when the rules refuse this replace on this host."""
    if step.allow_wipe:
        return
    problem = empty_problem(candidate)
    if problem is not None:
        raise ReplaceRefused(f"{host}: refused: {problem}")
    removed, total = removed_share(running, candidate)
    limit = int(step.max_removed.rstrip("%"))
    if total and removed * 100 > limit * total:
        share = removed * 100 // total
        log.warning("%s: replace would remove %d of %d lines: refused", host, removed, total)
        raise ReplaceRefused(
            f"{host}: refused: the replace would remove {removed} of the running config's "
            f"{total} lines ({share}%, the step allows {step.max_removed}); nothing was "
            "loaded or committed. Check the template; raise 'max_removed' or set "
            "'allow_wipe: true' on the step if that is really wanted"
        )
