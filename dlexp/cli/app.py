"""The Typer app and the one place where a DlexpError becomes ``error: ...`` and exit code 2."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import typer
from rich.console import Console

from dlexp.errors import DlexpError, terminal_line


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from click and from the copy of click that Typer >= 0.20 vendors as ``typer._click``.

    Typer's commands raise the vendored classes, which are not subclasses of ``click``'s own, so
    catching only ``click.exceptions.UsageError`` lets an unknown option through as an internal error.
    """
    found = []
    for module_name in ("click.exceptions", "typer._click.exceptions", "typer.exceptions"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


_NO_ARGS_IS_HELP = _click_exceptions("NoArgsIsHelpError")
_USAGE_ERROR = _click_exceptions("UsageError")
_ABORT = _click_exceptions("Abort")
_EXIT = _click_exceptions("Exit")

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


def _print_version(value: bool) -> None:
    # An eager option callback runs while parsing, so `dlexp --version` needs no command.
    if value:
        from dlexp import __version__

        typer.echo(f"dlexp {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version),
) -> None:
    _state["debug"] = _state["debug"] or debug


def fail(message: str, code: int = 2) -> None:
    """Print one ``error:`` line on stderr (controls escaped, length bounded) and exit."""
    sys.stderr.write(f"error: {terminal_line(message)}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _take_debug(args: list[str]) -> list[str]:
    """Accept ``--debug`` anywhere before ``--`` (``dlexp train cfg.yaml --debug`` too), not only before
    the command: it is removed from the arguments and switches tracebacks on."""
    _state["debug"] = False
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:
        _state["debug"] = True
        return [a for a in args[:end] if a != "--debug"] + args[end:]
    return args


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import dlexp.cli  # noqa: F401  (registers every command)

    args = _take_debug(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="dlexp", standalone_mode=False)
    except DlexpError as exc:
        if _state["debug"]:
            traceback.print_exc()
        fail(str(exc), exc.exit_code)
    except _NO_ARGS_IS_HELP as exc:  # bare `dlexp`: print the help and exit 2, as click does
        sys.stderr.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        raise SystemExit(2)
    except _USAGE_ERROR as exc:
        if _state["debug"]:
            traceback.print_exc()
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        fail(f"{where}{exc.format_message()} (see --help)", 2)
    except _ABORT:
        fail("aborted", 130)
    except _EXIT as exc:
        raise SystemExit(exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except SystemExit:
        raise
    except BrokenPipeError:
        raise SystemExit(0)
    except OSError as exc:  # e.g. --runs-dir names a file, or a folder that cannot be written
        if _state["debug"]:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc} (check the paths given and their permissions)", 2)
    except Exception as exc:  # a bug, not bad input: say so in one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1)
    raise SystemExit(code if isinstance(code, int) else 0)
