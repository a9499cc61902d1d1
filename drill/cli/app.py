"""The ``drill`` command: thin typer commands; errors become exit codes here and only here."""

from __future__ import annotations

import logging
import sys

import typer

from drill import __version__
from drill.cli import flows_commands, lab_commands, run_commands, runbook_commands
from drill.errors import DrillError, ExitCode, InputError

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
lab_commands.register(app)
flows_commands.register(app)


def main() -> None:
    """Console entry point: one boundary that turns drill errors into exit codes."""
    try:
        # Without standalone mode click returns a command's exit code instead of raising.
        code = app(standalone_mode=False)
    except DrillError as exc:
        message = str(exc)
        if isinstance(exc, InputError) and exc.diagnostics:
            message = "\n".join(str(d) for d in exc.diagnostics)
        elif not message.startswith("error:"):
            message = f"error: {message}"
        print(message, file=sys.stderr)
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
