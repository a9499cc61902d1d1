"""One exception tree for drill; the CLI maps each family to an exit code in one place."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in README.md ("Exit codes")."""

    OK = 0  # succeeded, or a clean dry-run
    FAILED = 1  # failed and rolled back cleanly, or dry-run failed
    INVALID_INPUT = 2  # runbook, inventory, flags, or missing privileges
    OPERATOR_NEEDED = 3  # rollback incomplete, or run stopped on purpose
    PRECHECK_FAILED = 4  # prechecks failed, nothing changed
    REFUSED = 5  # e.g. devices held by another run


@dataclass(frozen=True)
class Diagnostic:
    """One problem in an input file, printed as ``FILE:LINE:COL: error: message``."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: error: {self.message}"


class DrillError(Exception):
    """Root of every error drill raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED


class InputError(DrillError):
    """Bad input: runbook, inventory, topology or flags. Nothing was touched."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, diagnostics: list[Diagnostic] | str) -> None:
        if isinstance(diagnostics, str):
            self.diagnostics: list[Diagnostic] = []
            message = diagnostics
        else:
            self.diagnostics = diagnostics
            message = "\n".join(str(d) for d in diagnostics)
        super().__init__(message)


class NeedsRootError(InputError):
    """The lab and packet probes need root (network namespaces, raw sockets)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"error: {what} needs root (run it with sudo)")


class RefusedError(DrillError):
    """The request is valid but cannot run now (e.g. devices locked by another run)."""

    exit_code = ExitCode.REFUSED


class LabError(DrillError):
    """The lab could not be realized, or a lab operation failed."""
