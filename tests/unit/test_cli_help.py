"""``--help`` of every command reads cleanly: flags without a ``<bool>`` type beside them.

typer 0.29 prints ``<bool>`` after every flag; pyproject pins a typer that does not.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from drill.cli.app import app


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*prefix, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_covered() -> None:
    assert ("run",) in COMMANDS and ("lab", "up") in COMMANDS and len(COMMANDS) > 10


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "drill")
def test_help_has_no_bool_type_beside_flags(path: tuple[str, ...]) -> None:
    text = help_text(path)
    assert "--help" in text
    assert "<bool>" not in text
    assert "BOOLEAN" not in text


def test_run_help_lists_its_flags_plainly() -> None:
    lines = [ln for ln in help_text(("run",)).splitlines() if "--dry-run" in ln]
    assert lines, "run --help lost --dry-run"
    # the flag is followed directly by its help text, no type column in between
    after = lines[0].split("--dry-run", 1)[1].strip(" │")
    assert after.startswith("Prechecks for real"), lines[0]
