"""``--check EXPR``: assertions on a run's summary, parsed by a tiny grammar (never Python eval).

Grammar: ``NAME OP NUMBER`` with OP one of ``>= <= > < == !=``. NAME is a metric of the final
epoch (``val_acc``), a summary number (``grad_ratio``, ``epochs``, ``wall_s``), or a dotted path
(``best.val_loss``, ``test.test_acc``). A missing or NaN value fails the check.

The parser takes each part once, from where the previous one ended, so it runs in time linear in
the length of the text (a single regular expression with optional parts backtracked quadratically).
"""

from __future__ import annotations

import math
import operator
import re

from dlexp.errors import DlexpError, show_value
from dlexp.registry import did_you_mean
from dlexp.rundir import split_metric_columns

_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
        "<": operator.lt}
_OPS_LONGEST_FIRST = sorted(_OPS, key=len, reverse=True)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")  # one way to match each text

TEST = split_metric_columns("test")
METRICS = split_metric_columns("train", "val") + [
    "penalty", "lr", "grad_norm_total"]
TOP_LEVEL = ["epochs", "steps", "wall_s", "grad_ratio", "grad_ratio_first_epoch", "n_params"]
SECTIONS = ["final", "best", "test"]
KNOWN = METRICS + TOP_LEVEL + TEST
SECTION_FIELDS = {"final": ["epoch", "step", *METRICS, *TEST], "best": ["epoch", "step", *METRICS, *TEST],
                  "test": TEST}


def _split(text: str) -> tuple[str, str, str] | None:
    """NAME, OP and NUMBER of ``text``, or None when it is not ``NAME OP NUMBER``."""
    stripped = text.strip()
    name = _NAME.match(stripped)
    if name is None:
        return None
    rest = stripped[name.end():].lstrip()
    op = next((candidate for candidate in _OPS_LONGEST_FIRST if rest.startswith(candidate)), None)
    if op is None:
        return None
    number = rest[len(op):].lstrip()
    return (name.group(), op, number) if _NUMBER.fullmatch(number) else None


def parse_check(text: str) -> tuple[str, str, float]:
    parts = _split(text)
    shown = show_value(text)
    if parts is None:
        raise DlexpError(f"--check {shown}: expected NAME OP NUMBER, e.g. 'val_acc>=0.9' (OP: >= <= > < == !=)")
    name, op, number = parts
    if not math.isfinite(float(number)):
        raise DlexpError(f"--check {shown}: the number is too large for a float; give a finite number")
    head, _, rest = name.partition(".")
    if "." in name:
        if head not in SECTIONS:
            raise DlexpError(f"--check {shown}: unknown section {show_value(head)}{did_you_mean(head, SECTIONS)} "
                             f"(accepted: {', '.join(SECTIONS)})")
        # a typo under a section would otherwise only show up after the run, as "not available"
        fields = SECTION_FIELDS[head]
        if rest not in fields:
            raise DlexpError(f"--check {shown}: unknown name {show_value(rest)} in {head}.{did_you_mean(rest, fields)} "
                             f"(accepted: {', '.join(f'{head}.{f}' for f in fields)})")
    elif name not in KNOWN:
        raise DlexpError(f"--check {shown}: unknown name {show_value(name)}{did_you_mean(name, KNOWN)} "
                         f"(accepted: {', '.join(KNOWN)}, or final./best./test. paths)")
    return name, op, float(number)


def lookup(summary: dict, name: str):
    if "." in name:
        node = summary
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    if name in TOP_LEVEL:
        return summary.get(name)
    if name in TEST:
        return (summary.get("test") or {}).get(name)
    return (summary.get("final") or {}).get(name)


def evaluate_checks(checks: list[str], summary: dict) -> list[str]:
    """Parse every check (raising DlexpError on bad syntax); with a summary, return the failures."""
    parsed = [(text, *parse_check(text)) for text in checks]
    if not summary:
        return []
    failures = []
    for text, name, op, number in parsed:
        value = lookup(summary, name)
        if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
            failures.append(f"{text.strip()}: {name} is not available in this run")
        elif not _OPS[op](value, number):
            failures.append(f"{text.strip()}: {name} = {value:.6g}")
    return failures
