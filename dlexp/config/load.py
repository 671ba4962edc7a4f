"""Loading a config: file -> mapping -> overrides -> validated config, every failure one line.

:func:`load_mapping` is the one place a config file is read and ``--set`` / ``--grid`` values are
applied; :func:`validate_mapping` the one place a mapping becomes an :class:`ExperimentConfig`;
:func:`load_config` does both. A value typed on the command line is parsed by :func:`parse_value`
only, so ``--set`` and ``--grid`` accept and refuse the same values (a key given twice in a
mapping is refused by both). Every mistake becomes a :class:`ConfigError` whose single line names
the file or option, the dotted field path, what was wrong and what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dlexp.config.components import _short_repr, scientific_to_float
from dlexp.config.schema import ExperimentConfig, ModelConfig, TrainingConfig
from dlexp.errors import ConfigError, read_user_file
from dlexp.names import safe_name
from dlexp.registry import did_you_mean

MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_NODES = 100_000

def _count_nodes(obj: Any, limit: int) -> int:
    """Count nodes as a validator would walk them (aliases expanded); stop past ``limit``."""
    count = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def read_yaml_mapping(path: Path, shown: str) -> dict[str, Any]:
    """Read a YAML file into a mapping with ``safe_load``; every failure is a one-line ConfigError."""
    raw = read_user_file(path, shown, "a YAML config file", ConfigError, MAX_CONFIG_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    return parse_yaml_mapping(text, shown)


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (so no ``!!python`` tag can construct anything), made stricter for configs.

    A key given twice in one mapping is refused instead of the last one silently winning, and
    every key must be a string. Scalars resolve exactly as with ``yaml.safe_load`` (YAML 1.1), so
    whatever ``yaml.safe_dump`` writes reads back the same; ``1e-3`` is turned into a number by
    the schema, where a number is expected (:func:`scientific_to_float`).
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[str, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if key_node.value in seen:
                first = seen[key_node.value].line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}' (first given on line {first}); give each key once",
                    key_node.start_mark)
            seen[key_node.value] = key_node.start_mark
        mapping = super().construct_mapping(node, deep=deep)
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            if not isinstance(key, str) and key_node.tag != "tag:yaml.org,2002:merge":
                kind = {type(None): "null", bool: "a boolean", int: "a number", float: "a number"}.get(
                    type(key), type(key).__name__)
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key_node.value!r} is read as {kind}; keys must be names "
                    "(quote it to use it as text)", key_node.start_mark)
        return mapping


def yaml_load(text: str) -> Any:
    """Parse YAML with :class:`ConfigLoader`, a ``SafeLoader``: plain data only, never Python objects."""
    return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader subclass: as safe as yaml.safe_load


def parse_yaml_mapping(text: str, shown: str) -> dict[str, Any]:
    try:
        data = yaml_load(text)
    except yaml.constructor.ConstructorError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = _one_line(getattr(exc, "problem", "") or "cannot be read")
        if "could not determine a constructor for the tag" in problem:
            tag = re.search(r"'([^']*)'", problem)
            raise ConfigError(f"{shown}: {where}tag '{tag.group(1) if tag else '?'}' is refused; only plain YAML "
                              "(mappings, lists, strings, numbers, booleans, null) is accepted") from None
        raise ConfigError(f"{shown}: {where}{problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:  # e.g. where an unclosed quote or bracket started
            problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        raise ConfigError(f"{shown}: invalid YAML: {where}{_one_line(problem)}") from None
    except RecursionError:
        raise ConfigError(f"{shown}: YAML nested too deeply") from None
    if data is None:
        raise ConfigError(f"{shown}: empty config; expected a mapping such as 'model: {{depth: 3}}'")
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: top level must be a mapping of sections (got {type(data).__name__})")
    if _count_nodes(data, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ConfigError(f"{shown}: more than {MAX_YAML_NODES:,} YAML nodes after expanding aliases (a YAML bomb?)")
    return data


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at ``loc`` (for did-you-mean)."""
    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        model = next(
            (a for a in (getattr(ann, "__args__", None) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
            None,
        )
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "finite_number": "must be a finite number",
}


def _format_loc(loc: tuple) -> str:
    """``("model", "hidden", 1)`` -> ``model.hidden[1]``; a key that is not a plain name is quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{_short_repr(str(part), 30)}]"
    return out


def _clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-branch markers (``str``, ``dict[str,any]``, ``literal['full']``...)."""
    return tuple(
        p for p in loc if not (isinstance(p, str) and (p in ("str", "int", "float", "bool", "none")
                                                      or p.startswith(("dict[", "literal[", "list[", "function-"))))
    )


def format_validation_error(exc: ValidationError, shown: str) -> str:
    errors = exc.errors(include_url=False)
    # With unions pydantic reports one error per branch; the most specific one is what we show.
    err = errors[0]
    for candidate in errors:
        if candidate["type"] in ("value_error", "extra_forbidden", "literal_error"):
            err = candidate
            break
    loc = _clean_loc(tuple(err["loc"]))
    where = _format_loc(loc) or "(top level)"
    etype = err["type"]
    got = err.get("input")
    if etype == "extra_forbidden":
        model = _model_at(loc)
        fields = sorted(model.model_fields) if model else []
        fields = [f for f in fields if f != "dlexp_version"]
        hint = did_you_mean(str(loc[-1]), fields)
        accepted = f" (accepted: {', '.join(fields)})" if fields and not hint else ""
        return f"{shown}: {where}: unknown key{hint}{accepted}"
    if etype == "missing":
        return f"{shown}: {where}: required"
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        hint = did_you_mean(str(got), re.findall(r"'([^']*)'", expected)) if isinstance(got, str) else ""
        return f"{shown}: {where}: got {_short_repr(got)}{hint} (accepted: {expected})"
    if etype == "value_error":
        msg = _one_line(err.get("ctx", {}).get("error", err["msg"]))
        # A model validator names the field it checked first ("path: required ..."): join it to the path.
        head, sep, rest = msg.partition(": ")
        holder = _model_at(loc + ("",))
        if sep and holder is not None and head in holder.model_fields:
            return f"{shown}: {_format_loc(loc + (head,))}: {rest}"
        if msg.startswith("[") and loc:
            return f"{shown}: {where}{head}: {rest}"
        return f"{shown}: {where}: {msg}"
    template = _MESSAGES.get(etype)
    if template:
        msg = template.format(**err.get("ctx", {}))
    else:
        msg = err["msg"][0].lower() + err["msg"][1:]
    return f"{shown}: {where}: {msg} (got {_short_repr(got)})"


def parse_value(value: str, shown: str = "value") -> Any:
    """A value typed after ``KEY=`` (``--set``, or one of a ``--grid``'s values), read as YAML.

    ``0.1`` -> 0.1, ``1e-3`` -> 0.001 (a number, although YAML 1.1 reads it as text), ``full`` ->
    "full", ``[32, 32]`` -> a list, empty -> None; text that is not YAML stays text unless it was
    meant as YAML (starts with a bracket, quote, anchor or tag), which is refused with the reason.
    A key given twice in a mapping is refused. ``shown`` names the option and its text in errors.
    """
    try:
        parsed = yaml_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        if value.strip()[0] in "[{&*!|>'\"":  # meant as YAML: say why it is not
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{shown}: the value is not valid YAML ({_one_line(problem)})") from None
        parsed = value
    except RecursionError:
        raise ConfigError(f"{shown}: the value is nested too deeply") from None
    if _count_nodes(parsed, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ConfigError(f"{shown}: more than {MAX_YAML_NODES:,} YAML nodes after expanding aliases")
    if isinstance(parsed, str) and parsed == value.strip():
        return scientific_to_float(parsed)
    return parsed


def parse_key(key: str, shown: str, example: str = "training.epochs") -> list[str]:
    """``"training.optimizer.lr"`` -> ["training", "optimizer", "lr"]; a malformed path is refused."""
    parts = [p.strip() for p in key.strip().split(".")]
    if any(not p or re.search(r"\s", p) for p in parts):
        raise ConfigError(f"{shown}: malformed key {key.strip()!r}; expected a dotted path such as {example}")
    return parts


def parse_override(text: str, option: str = "--set") -> tuple[list[str], Any]:
    """``"training.optimizer.lr=0.01"`` -> (["training", "optimizer", "lr"], 0.01)."""
    shown = f"{option} {text!r}"
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{shown}: expected KEY=VALUE, e.g. {option} training.optimizer.lr=0.01")
    return parse_key(key, shown), parse_value(value, shown)


_SPEC_FIELDS = {("model", "activation"), ("model", "init"), ("training", "loss"),
                ("training", "optimizer"), ("training", "schedule")}


def _default_spec_name(prefix: tuple[str, ...]) -> str | None:
    """The default component name of a spec field (``adam`` for training.optimizer), if it has one."""
    section = {"model": ModelConfig, "training": TrainingConfig}[prefix[0]]
    default = section.model_fields[prefix[1]].default
    return default if isinstance(default, str) and default != "auto" else None


def apply_override(data: dict[str, Any], parts: list[str], value: Any, text: str, option: str = "--set") -> None:
    """Set ``data[parts]`` = value, turning a bare spec name into a mapping where a sub-key is set.

    ``training.optimizer.lr=0.1`` on a config that does not name an optimizer sets the default
    one's argument (``{name: adam, lr: 0.1}``).
    """
    node = data
    for depth, part in enumerate(parts[:-1]):
        prefix = tuple(parts[: depth + 1])
        child = node.get(part)
        if child is None:
            default = _default_spec_name(prefix) if prefix in _SPEC_FIELDS else None
            child = {"name": default} if default else {}
        elif isinstance(child, str) and prefix in _SPEC_FIELDS:
            child = {"name": child}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"{option} {text}: {'.'.join(prefix)} is {_short_repr(child)}, not a mapping, so it has no key "
                f"{parts[depth + 1]!r}; set {'.'.join(prefix)}=VALUE instead"
            )
        node[part] = child
        node = child
    node[parts[-1]] = value


def validate_mapping(data: dict[str, Any], shown: str) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, shown)) from None
    except RecursionError:
        raise ConfigError(f"{shown}: config nested too deeply") from None


def load_mapping(path: str | Path, overrides: Sequence[str] = (), *, shown: str | None = None,
                 option: str = "--set") -> dict[str, Any]:
    """The config file as a mapping with the ``KEY=VALUE`` overrides applied in order (not validated).

    Every command that reads a config file comes through here: ``dlexp train``/``validate``, sweeps,
    grad-report's grid, the gallery, resume. ``shown`` names the file in messages (default: the path).
    """
    path = Path(path)
    shown = str(path) if shown is None else shown
    data = read_yaml_mapping(path, shown)
    for text in overrides:
        parts, value = parse_override(text, option)
        apply_override(data, parts, value, text, option)
    return data


def default_name(path: str | Path) -> str:
    """A run name from a config file's stem: characters a folder name may not hold become '-'."""
    return safe_name(Path(path).stem)


def load_config(path: str | Path, overrides: Sequence[str] = (), *, shown: str | None = None) -> ExperimentConfig:
    """Read, override and validate a config. The config's name defaults to the file's stem."""
    shown = str(path) if shown is None else shown
    data = load_mapping(path, overrides, shown=shown)
    if data.get("name") is None:
        data["name"] = default_name(path)
    return validate_mapping(data, shown)


def config_base_dir(path: str | Path) -> Path:
    """Folder that relative paths in a config (data.path) are resolved against."""
    return Path(path).resolve().parent
