"""The Typer app and the one place where a DlexpError becomes ``error: ...`` and exit code 2 (and where
a library argument in an :class:`~dlexp.errors.ArgumentError` becomes the command-line flag that set it)."""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from typing import TYPE_CHECKING, Any

import typer

from dlexp.cli.help import (
    COMMAND_FLAGS,
    GLOBAL_FLAGS,
    GLOBAL_PANEL,
    DlexpCommand,
    DlexpGroup,
    examples_epilog,
)
from dlexp.errors import ArgumentError, DlexpError, terminal_line

if TYPE_CHECKING:
    from rich.console import Console


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from the copy of click that Typer >= 0.20 vendors as ``typer._click``, and from click.

    Typer's commands raise the vendored classes, which are not subclasses of ``click``'s own, so
    catching only ``click.exceptions.UsageError`` lets an unknown option through as an internal error.
    click itself is consulted only if something has imported it already: importing it here would cost
    a fast start ~0.1 s for classes nothing raises.
    """
    found = []
    for module_name in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        if module_name.startswith("click") and "click" not in sys.modules:
            continue
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


class DlexpTyper(typer.Typer):
    """A Typer app whose commands use dlexp's help layout and take ``examples=[(what, command), ...]``."""

    def command(self, name: str | None = None, *, examples: list[tuple[str, str]] | None = None,
                **kwargs: Any):
        kwargs.setdefault("cls", DlexpCommand)
        if examples:
            kwargs["epilog"] = examples_epilog(examples)
        return super().command(name, **kwargs)


app = DlexpTyper(
    name="dlexp",
    help="Experiments on how neural networks train: vanishing gradients, dropout, optimizers, losses.",
    cls=DlexpGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples_epilog([
        ("Write a starter config, check it, train it:", "dlexp init exp.yaml && dlexp train exp.yaml"),
        ("See why a deep sigmoid network does not learn:", "dlexp grad-report runs/sigmoid_depth10-*"),
        ("Race the optimizers on one config, 3 seeds each:",
         "dlexp compare-optimizers configs/iris.yaml --seeds 3"),
    ]),
)

_state = {"debug": False, "ascii": False, "wide": False}


def display_flags() -> dict[str, bool]:
    """``--ascii`` and ``--wide`` as given on this command line (read by dlexp.cli.tables)."""
    return {"ascii": _state["ascii"], "wide": _state["wide"]}


class TrimmedLines:
    """A text file that drops the spaces at the end of each line written to it.

    rich pads a centred title, a table's caption and wrapped prose with spaces to the console's width;
    in a log, a pipe or a file they are noise (and show in every diff). Only for output that is not a
    terminal, where a live display may rely on what it wrote.
    """

    def __init__(self, file):
        self.file = file

    def write(self, text: str) -> int:
        return self.file.write(re.sub(r" +(?=\n)", "", text))

    def __getattr__(self, name):  # flush, isatty, encoding, fileno, ...
        return getattr(self.file, name)


def _console(file) -> Console:
    from rich.console import Console

    if not file.isatty():
        file = TrimmedLines(file)
    return Console(file=file, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def stdout_console() -> Console:
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr)


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
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version, rich_help_panel=GLOBAL_PANEL),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors.",
                               rich_help_panel=GLOBAL_PANEL),
    ascii_: bool = typer.Option(False, "--ascii", help="Tables drawn in ASCII (the default when the output "
                                "is not a UTF-8 terminal).", rich_help_panel=GLOBAL_PANEL),
    wide: bool = typer.Option(False, "--wide", help="Every column of every table, however wide.",
                              rich_help_panel=GLOBAL_PANEL),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Less output (commands that have it).",
                               rich_help_panel=GLOBAL_PANEL),
    json_out: bool = typer.Option(False, "--json", help="The result as JSON on stdout; all else on "
                                  "stderr (commands that have it).", rich_help_panel=GLOBAL_PANEL),
) -> None:
    """Global flags are taken out of the command line by main(); this callback only documents them."""


def split_global_flags(args: list[str]) -> list[str]:
    """Record the global flags wherever they stand and move command flags written before the command
    to just after it. Nothing after ``--`` is touched."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    for flag, key in GLOBAL_FLAGS.items():
        if flag in head:
            _state[key] = True
    head = [a for a in head if a not in GLOBAL_FLAGS]
    command_at = next((i for i, a in enumerate(head) if not a.startswith("-")), None)
    if command_at is not None:
        early = [a for a in head[:command_at] if a in COMMAND_FLAGS]
        head = ([a for a in head[:command_at] if a not in COMMAND_FLAGS] + [head[command_at]] + early
                + head[command_at + 1:])
    return head + tail


# Library arguments whose flag is not ``--`` + the argument in kebab case (vanish_below: --vanish-below).
_FLAG_OF_ARGUMENT = {"logdir": "--tensorboard"}


def flag_for(argument: str) -> str:
    """The command-line flag that sets library argument ``argument``."""
    return _FLAG_OF_ARGUMENT.get(argument, "--" + argument.replace("_", "-"))


def error_line(exc: DlexpError) -> str:
    """What the CLI says for ``exc``: an ArgumentError speaks of the flag, not of the Python argument."""
    return exc.with_option(flag_for(exc.argument)) if isinstance(exc, ArgumentError) else str(exc)


def fail(message: str, code: int = 2) -> None:
    """Print one ``error:`` line on stderr (controls escaped, length bounded) and exit."""
    sys.stderr.write(f"error: {terminal_line(message)}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import dlexp.cli  # noqa: F401  (registers every command)

    _state.update(debug=False, ascii=False, wide=False)
    args = split_global_flags(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=args, prog_name="dlexp", standalone_mode=False)
    except DlexpError as exc:
        if _state["debug"]:
            traceback.print_exc()
        fail(error_line(exc), exc.exit_code)
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
