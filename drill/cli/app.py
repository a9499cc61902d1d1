"""The ``drill`` command: thin typer commands; errors become exit codes here and only here."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer

from drill import __version__
from drill.cli import (
    flows_commands,
    lab_commands,
    recovery_commands,
    report_commands,
    run_commands,
    runbook_commands,
)
from drill.cli.extensions import Extensions
from drill.engine.events import Observer
from drill.errors import DrillError, ExitCode, InputError
from drill.names import printable_lines
from drill.secrets import known_secrets, mask_secrets

app = typer.Typer(
    name="drill",
    help="Failover drills as tested, repeatable programs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"drill {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


runbook_commands.register(app)
run_commands.register(app)
recovery_commands.register(app)
lab_commands.register(app)
report_commands.register(app)
flows_commands.register(app)


def main(observers: Sequence[Observer] = ()) -> None:
    """Console entry point: one boundary that turns drill errors into exit codes.

    ``observers``: extra event-bus observers for run/resume/abort, for a program embedding
    drill (see drill.cli.extensions); the ``drill`` command passes none."""
    try:
        # Without standalone mode click returns a command's exit code instead of raising.
        code = app(standalone_mode=False, obj=Extensions(tuple(observers)))
    except DrillError as exc:
        message = str(exc)
        if isinstance(exc, InputError) and exc.diagnostics:
            message = "\n".join(str(d) for d in exc.diagnostics)
        elif not message.startswith("error:"):
            message = f"error: {message}"
        # The one place errors are printed: secrets met in the inputs are masked, and
        # control characters from file names or values cannot drive the terminal.
        print(printable_lines(mask_secrets(message, known_secrets())), file=sys.stderr)
        sys.exit(int(exc.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(int(ExitCode.FAILED))
    except typer.TyperException as exc:
        # Usage errors (unknown command or option, bad value): click's own message.
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(int(ExitCode.INVALID_INPUT))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
