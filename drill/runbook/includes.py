"""Files a runbook names (``template:``, a validate step's ``file:``): confined to the
runbook's directory tree, so a runbook cannot make drill (running as root) read
``/etc/shadow`` or follow a symlink out of its tree."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class OutsideTree(ValueError):
    """An include that resolves outside the runbook's directory tree."""


def include_path(base_dir: Path, relative: str) -> Path:
    """``relative`` under ``base_dir``, symlinks resolved; OutsideTree when it leaves it.

    >>> include_path(Path("/srv/drills"), "templates/a.j2").as_posix()
    '/srv/drills/templates/a.j2'
    >>> include_path(Path("/srv/drills"), "../../etc/shadow")
    Traceback (most recent call last):
    ...
    drill.runbook.includes.OutsideTree: '../../etc/shadow' is outside the runbook's directory
    """
    if "\x00" in relative:
        raise OutsideTree("a file name cannot contain a NUL character")
    root = Path(os.path.realpath(base_dir))
    target = Path(os.path.realpath(root / relative))
    if target != root and root not in target.parents:
        raise OutsideTree(f"{relative!r} is outside the runbook's directory")
    return target
