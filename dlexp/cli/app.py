"""The Typer app and the one place where a DlexpError becomes ``error: ...`` and exit code 2."""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer
from rich.console import Console

from dlexp.errors import DlexpError

app = typer.Typer(
    name="dlexp",
    help="Experiments on how neural networks train: vanishing gradients, dropout, optimizers, losses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


def stdout_console() -> Console:
    return Console(file=sys.stdout, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def human_console(json_mode: bool) -> Console:
    """Where human-readable output goes: stdout, or stderr when stdout carries JSON."""
    return stderr_console() if json_mode else stdout_console()


def is_interactive(console: Console, quiet: bool) -> bool:
    return console.is_terminal and not quiet and not os.environ.get("NO_COLOR") and not os.environ.get("CI")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    _state["debug"] = debug
    if version:
        from dlexp import __version__

        typer.echo(f"dlexp {__version__}")
        raise typer.Exit(0)


def fail(message: str, code: int = 2) -> None:
    """Print one ``error:`` line on stderr and exit."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import dlexp.cli  # noqa: F401  (registers every command)

    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        _state["debug"] = True
    try:
        code = app(args=args, prog_name="dlexp", standalone_mode=False)
    except DlexpError as exc:
        if _state["debug"]:
            traceback.print_exc()
        fail(str(exc), exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `dlexp`: help, exit 0... as click does, exit 2
        sys.stderr.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        raise SystemExit(2)
    except click.exceptions.UsageError as exc:
        if _state["debug"]:
            traceback.print_exc()
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        fail(f"{where}{exc.format_message()} (see --help)", 2)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except SystemExit:
        raise
    except BrokenPipeError:
        raise SystemExit(0)
    except Exception as exc:  # a bug, not bad input: say so in one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1)
    raise SystemExit(code if isinstance(code, int) else 0)
