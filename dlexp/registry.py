"""One registry per kind of component (activation, initializer, loss, optimizer, schedule).

Keras-style: a config names a component by an exact key (never by substring), optionally with
keyword arguments. An unknown name or argument is refused with the list of valid ones.

A *spec* is either a bare name (``"adam"``) or a mapping with a ``name`` key and keyword
arguments (``{"name": "adam", "lr": 0.01}``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def did_you_mean(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or an empty string.

    Candidates are those difflib finds similar; the one with the fewest edits wins (``adma`` →
    ``adam``, not ``adamax``).
    """
    words = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), words, n=5, cutoff=0.6)
    if not close:
        return ""
    best = min(close, key=lambda c: (_edit_distance(str(word), c), close.index(c)))
    return f"; did you mean '{best}'?"


def normalize_spec(spec: Any, kind: str) -> tuple[str, dict[str, Any]]:
    """Split a spec into ``(name, kwargs)``. Raises ValueError on a malformed spec."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"a mapping for {kind} needs a 'name' key (got keys {sorted(map(str, spec))})")
        name = spec["name"]
        if not isinstance(name, str):
            raise ValueError(f"{kind} name must be a string (got {name!r})")
        return name, {k: v for k, v in spec.items() if k != "name"}
    raise ValueError(f"a {kind} is a name or a mapping with a 'name' key (got {spec!r})")


class Registry(Generic[T]):
    """Maps exact names (and aliases) to factories; validates keyword arguments by signature."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, *aliases)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., T], *aliases: str) -> None:
        self._factories[name] = factory
        for alias in aliases:
            self._aliases[alias] = name

    def names(self) -> list[str]:
        return sorted(self._factories)

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` (resolving aliases); ValueError if unknown."""
        if name in self._factories:
            return name
        if name in self._aliases:
            return self._aliases[name]
        choices = self.names() + sorted(self._aliases)
        raise ValueError(
            f"unknown {self.kind} '{name}'{did_you_mean(name, choices)} (accepted: {', '.join(self.names())})"
        )

    def factory(self, name: str) -> Callable[..., T]:
        return self._factories[self.canonical(name)]

    def parameters(self, name: str) -> list[str]:
        """Keyword arguments the named component accepts."""
        sig = inspect.signature(self.factory(name))
        return [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
        ]

    def build(self, spec: Any, **extra: Any) -> T:
        """Build from a spec. ``extra`` are keyword arguments supplied by dlexp, not the user."""
        name, kwargs = normalize_spec(spec, self.kind)
        factory = self.factory(name)
        accepted = self.parameters(name)
        for key in kwargs:
            if key not in accepted:
                shown = [a for a in accepted if a not in extra]
                raise ValueError(
                    f"{self.kind} '{name}' has no argument '{key}'{did_you_mean(key, shown)} "
                    f"(accepted: {', '.join(shown) or 'none'})"
                )
        try:
            return factory(**kwargs, **extra)
        except TypeError as exc:  # wrong value types reaching the constructor
            raise ValueError(f"{self.kind} '{name}': {exc}") from None
