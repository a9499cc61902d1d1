"""Run host commands for the lab backend: one place for logging, timeouts and errors."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from drill.errors import LabError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``, capture its output; raise :class:`LabError` on failure when ``check``."""
    log.debug("run: %s", " ".join(argv))
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"`{argv[0]}` is not installed") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit {proc.returncode}"
        raise LabError(f"`{' '.join(argv)}` failed: {reason}")
    return proc


def ok(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True when ``argv`` exits 0; for probes whose failure is an answer, not an error."""
    try:
        return run(argv, check=False, timeout=timeout).returncode == 0
    except LabError:
        return False
