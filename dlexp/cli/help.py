"""Help pages: grouped options, clean type names, whole defaults, examples, commands in the user's order.

Typer's plain help is click's: one "Options" block, type names such as ``<list[str]>``, defaults cut
mid-word and commands in import order. dlexp's commands use :class:`DlexpCommand` (and the app
:class:`DlexpGroup`), which lay the page out as ``git``/``gh`` users expect:

    Usage, the description, Arguments, one section per ``rich_help_panel`` (in the order the panels
    first appear; unpanelled options under "Options"), then "Examples".

Nothing here imports rich: ``dlexp --help`` stays fast.
"""

from __future__ import annotations

import enum
import re
import textwrap
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path

from typer.core import TyperCommand, TyperGroup

# The order a user meets the commands in; `dlexp --help` lists them so. A command not named here
# is listed after these, in registration order (tests/test_help.py asks that every command be named).
COMMAND_ORDER = [
    "init", "validate", "train", "evaluate", "predict", "grad-report", "plot", "compare-optimizers", "sweep",
    "lr-find", "gradcheck", "gallery", "report", "export",
]

# Flags that mean the same to every command and may stand anywhere on the line (`dlexp --debug train
# x.yaml` or `dlexp train x.yaml --debug`); dlexp.cli.app.main takes them out before Typer parses.
GLOBAL_FLAGS = {"--debug": "debug", "--ascii": "ascii", "--wide": "wide"}
# Flags each command declares itself; written before the command, they are moved after it.
COMMAND_FLAGS = ("--json", "--quiet", "-q")
GLOBAL_PANEL = "Global options"

# Spellings kept working for old scripts but not shown: {old: new}.
HIDDEN_ALIASES: dict[str, str] = {}

NBSP = "\u00a0"  # joins "default:" to its value so that the two never part at a line end
EXAMPLE_MARK = "\x00examples\x00"
MIN_HELP_COLUMN = 24
MAX_LEFT_COLUMN = 26  # a wider option line puts its help on the next line
# Sections of a command's page in this order; a panel not named here comes after them.
PANEL_ORDER = ["Arguments", "Input", "Grid", "Range test", "Learning-rate tuning", "Running", "Output", "Checks",
               "Options", GLOBAL_PANEL]  # narrower than this and the help text goes under the option instead


def examples_epilog(examples: Sequence[tuple[str, str]]) -> str:
    """Encode ``[(what it does, command line), ...]`` as an epilog that :class:`DlexpCommand` renders."""
    return EXAMPLE_MARK + "\n".join(f"{what}\x01{command}" for what, command in examples)


def parse_examples(epilog: str | None) -> list[tuple[str, str]]:
    if not epilog or not epilog.startswith(EXAMPLE_MARK):
        return []
    return [tuple(line.split("\x01", 1)) for line in epilog[len(EXAMPLE_MARK):].splitlines()]  # type: ignore[misc]


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap that never breaks inside a word; a word wider than ``width`` is split only
    after a comma (``sgd,momentum,...``), and left whole if it has none."""
    words: list[str] = []
    for word in (w for w in text.split(" ") if w):
        while len(word) > width and "," in word[:width]:
            cut = word.rfind(",", 0, width) + 1
            words.append(word[:cut] + "\x02")  # \x02: glue, no space before the next piece
            word = word[cut:]
        words.append(word)
    lines: list[str] = []
    line = ""
    for word in words:
        glue = line.endswith("\x02")
        piece = word.rstrip("\x02")
        candidate = (line.rstrip("\x02") + ("" if glue else " ") + piece) if line else piece
        if line and len(candidate) > width:
            lines.append(line.rstrip("\x02"))
            line = word
        else:
            line = candidate + ("\x02" if word.endswith("\x02") else "")
    if line:
        lines.append(line.rstrip("\x02"))
    return [line.replace(NBSP, " ") for line in lines]


def paragraphs(text: str, width: int, indent: int = 2) -> list[str]:
    """Docstring text as click treats it: paragraphs rewrapped, a paragraph after ``\\b`` kept as written."""
    out: list[str] = []
    text = textwrap.dedent(text).strip("\n")
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if lines and lines[0].strip() == "\b":
            out += [" " * indent + line for line in lines[1:]]
        else:
            out += [" " * indent + line for line in wrap(" ".join(lines), width - indent)]
        out.append("")
    return out[:-1]


# -- one line per parameter -------------------------------------------------------------------


def type_name(param) -> str:
    """PATH, TEXT, INT, FLOAT, a choice list, or the metavar the option declares."""
    if getattr(param, "metavar", None):
        return param.metavar
    descriptor = getattr(param, "type_descriptor", None)
    kind = getattr(descriptor, "annotation", None) or getattr(param, "type", None)
    if typing.get_origin(kind) in (list, tuple):
        kind = (typing.get_args(kind) or (str,))[0]
    if typing.get_origin(kind) is typing.Literal:
        return "[" + "|".join(str(c) for c in typing.get_args(kind)) + "]"
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return "[" + "|".join(str(m.value) for m in kind) + "]"
    names = {Path: "PATH", str: "TEXT", int: "INT", float: "FLOAT", bool: "BOOL"}
    return names.get(kind, "TEXT")  # type: ignore[arg-type]


def default_text(param) -> str | None:
    shown = getattr(param, "show_default", None)
    if shown is False or getattr(param, "is_flag", False):
        return None
    if isinstance(shown, str):
        return shown
    default = param.default
    if default is None or callable(default) or default == [] or default == ():
        return None
    if isinstance(default, (list, tuple)):
        return ",".join(str(v) for v in default)
    return str(default)


def range_text(param) -> str | None:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return None


def option_names(param) -> str:
    names = [n for n in [*param.opts, *param.secondary_opts] if n not in HIDDEN_ALIASES]
    short = [n for n in names if not n.startswith("--")]
    long = [n for n in names if n.startswith("--")]
    if getattr(param, "is_flag", False) and param.secondary_opts:
        long = [f"{param.opts[-1]}/{param.secondary_opts[0]}"]
    text = ", ".join(short + long)
    if not short:
        text = "    " + text  # long-only options line up under the long names of '-s, --set'
    if not getattr(param, "is_flag", False) and getattr(param, "count", False) is False:
        text += f" {type_name(param)}"
    return text


def help_record(param) -> tuple[str, str]:
    """(left column, help text) for an argument or option."""
    if param.param_type_name == "argument":
        left = param.metavar or param.name.upper() + ("..." if param.nargs != 1 else "")
    else:
        left = option_names(param)
    help_text = " ".join((getattr(param, "help", None) or "").split())
    extras = []
    if getattr(param, "multiple", False):
        extras.append("repeatable")
    span = range_text(param)
    if span:
        extras.append(span)
    default = default_text(param)
    if default is not None:
        extras.append(f"default:{NBSP}{default}")
    if param.param_type_name == "argument" and param.required:
        extras.append("required")
    if extras:
        help_text = f"{help_text} [{'; '.join(extras)}]".strip()
    help_text = help_text.replace("\n", " ")
    return left, help_text


def definition_list(rows: Iterable[tuple[str, str]], width: int, indent: int = 2,
                    left_width: int | None = None) -> list[str]:
    rows = list(rows)
    if left_width is None:
        left_width = max((len(left) for left, _ in rows), default=0)
    left_width = min(left_width, width // 2 - indent, MAX_LEFT_COLUMN)
    left_width = min(left_width, width - indent - 2 - MIN_HELP_COLUMN)
    lines: list[str] = []
    for left, text in rows:
        column = width - indent - left_width - 2
        body = wrap(text, column) or [""]
        if len(left) <= left_width:
            lines.append(" " * indent + left.ljust(left_width) + "  " + body[0])
            body = body[1:]
        else:  # a long left column: the help starts on the next line
            lines.append(" " * indent + left)
        lines += [" " * (indent + left_width + 2) + line for line in body]
    return [line.rstrip() for line in lines]


def _panel(param) -> str:
    return getattr(param, "rich_help_panel", None) or ("Arguments" if param.param_type_name == "argument"
                                                       else "Options")


def parameter_sections(command, ctx) -> list[tuple[str, list[tuple[str, str]]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    for param in [p for p in params if p.param_type_name == "argument"]:
        sections.setdefault("Arguments", []).append(help_record(param))
    for param in [p for p in params if p.param_type_name != "argument"]:
        sections.setdefault(_panel(param), []).append(help_record(param))
    rank = {title: k for k, title in enumerate(PANEL_ORDER)}
    sections = dict(sorted(sections.items(), key=lambda item: rank.get(item[0], len(PANEL_ORDER) - 2.5)))
    # the help option and the app's global flags last, as on the app's page
    help_rows = [row for row in sections.get("Options", []) if row[0].lstrip().startswith("-h")]
    if ctx.parent is not None and help_rows:
        sections["Options"].remove(help_rows[0])
        if not sections["Options"]:
            del sections["Options"]
        inherited = [help_record(p) for p in ctx.parent.command.get_params(ctx.parent)
                     if _panel(p) == GLOBAL_PANEL and p.opts[0] in GLOBAL_FLAGS]
        sections[GLOBAL_PANEL] = help_rows + inherited
    elif help_rows and GLOBAL_PANEL in sections:
        sections["Options"].remove(help_rows[0])
        if not sections["Options"]:
            del sections["Options"]
        sections[GLOBAL_PANEL] = sections.pop(GLOBAL_PANEL) + help_rows
    return list(sections.items())


def example_lines(examples: list[tuple[str, str]], width: int) -> list[str]:
    lines: list[str] = []
    for what, command in examples:
        lines += ["  " + line for line in wrap(what, width - 2)]
        # a long command line continues with a backslash, as a shell reads it
        parts = wrap(command, width - 8)
        for k, part in enumerate(parts):
            lead = "$" if k == 0 else " "
            more = " \\" if k < len(parts) - 1 else ""
            lines.append(f"    {lead} {part}{more}")
    return lines


def usage_pieces(command, ctx) -> str:
    pieces = ["[OPTIONS]"]
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            name = param.metavar or param.name.upper() + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required or name.startswith("[") else f"[{name}]")
    if getattr(command, "commands", None):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


class HelpPage:
    """Shared layout of the app's and the commands' help."""

    def render_page(self, ctx, formatter, *, commands: list[tuple[str, str]] | None = None) -> None:
        width = formatter.width
        lines = [f"Usage: {ctx.command_path} {usage_pieces(self, ctx)}".rstrip(), ""]
        text = self.help or ""  # type: ignore[attr-defined]
        if text:
            lines += paragraphs(text.split("\f")[0], width) + [""]
        if commands:
            lines += ["Commands:", *definition_list(commands, width), ""]
        sections = parameter_sections(self, ctx)
        left = max((len(row[0]) for _, rows in sections for row in rows), default=0)
        for title, rows in sections:
            lines += [f"{title}:", *definition_list(rows, width, left_width=left), ""]
        examples = parse_examples(self.epilog)  # type: ignore[attr-defined]
        if examples:
            lines += ["Examples:", *example_lines(examples, width), ""]
        elif self.epilog:  # type: ignore[attr-defined]
            lines += paragraphs(self.epilog, width) + [""]  # type: ignore[attr-defined]
        formatter.write("\n".join(lines).rstrip("\n") + "\n")


def short_help(command) -> str:
    """The description's first sentence, whole (click would cut it at 45 characters with '...')."""
    if command.short_help:
        return command.short_help
    first = " ".join((command.help or "").split("\n\n")[0].split())
    match = re.match(r"(.+?\.)(\s|$)", first)
    return match.group(1) if match else first


class DlexpCommand(HelpPage, TyperCommand):
    def format_help(self, ctx, formatter) -> None:
        self.render_page(ctx, formatter)


class DlexpGroup(HelpPage, TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = list(self.commands)
        known = [n for n in COMMAND_ORDER if n in self.commands]
        return known + [n for n in names if n not in known]

    def format_help(self, ctx, formatter) -> None:
        commands = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                commands.append((name, short_help(command)))
        self.render_page(ctx, formatter, commands=commands)
