"""One registry for the loop's extension points: domains, selectors, amplifiers, data policies and backends.

As probes do (`@probe`, group `loopprobe.probes`), each extension registers with a decorator, and other
packages ship theirs through an entry-point group, e.g. in their pyproject.toml::

    [project.entry-points."loopprobe.domains"]
    sorting = "my_package.sorting"        # a module whose import registers, or the registered object

An unknown name is one line with the nearest valid choice; nothing falls through to a default. A registered
object records its name, its kind and the metadata given to the decorator (`Registered`), so a run's
manifest can say exactly what it used.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

GROUPS = {  # kind -> entry-point group
    "domain": "loopprobe.domains",
    "selector": "loopprobe.selectors",
    "reward": "loopprobe.rewards",
    "amplifier": "loopprobe.amplifiers",
    "data_policy": "loopprobe.data_policies",
    "backend": "loopprobe.backends",
}
# The modules whose import registers the built-ins of each kind.
BUILTINS = {
    "domain": ("harness.domains.arithmetic", "harness.domains.word_problems", "harness.domains.sorting"),
    "selector": ("harness.strategies.select", "harness.strategies.labeled", "harness.strategies.judge",
                 "harness.strategies.self_verify"),
    "reward": ("harness.strategies.rewards",),
    "amplifier": ("harness.strategies.amplify",),
    "data_policy": ("harness.strategies.distill",),
    "backend": ("harness.models.tiny.plugin", "harness.models.hf.plugin"),
}


class RegistryError(ValueError):
    """An unknown name, a name registered twice, or an entry point that registers nothing."""


@dataclass(frozen=True)
class Registered:
    """A registered extension: its kind and name, the object, and the metadata its decorator recorded."""

    kind: str
    name: str
    obj: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"{getattr(self.obj, '__module__', '?')}.{getattr(self.obj, '__qualname__', self.name)}"


_REGISTRY: dict[str, dict[str, Registered]] = {kind: {} for kind in GROUPS}
_loaded: set[str] = set()


def register(kind: str, name: str, **metadata: Any) -> Callable[[T], T]:
    """Decorator: register `obj` as the `kind` extension called `name`, with its metadata."""
    if kind not in GROUPS:
        raise RegistryError(f"unknown extension kind {kind!r}; kinds: {', '.join(GROUPS)}")
    if not name or not all(c.isalnum() or c in "_-./" for c in name):
        raise RegistryError(f"{kind} name {name!r}: use letters, digits, '_', '-', '.' or '/'")

    def decorate(obj: T) -> T:
        known = _REGISTRY[kind].get(name)
        new = Registered(kind, name, obj, dict(metadata))
        if known is not None and known.obj is not obj and known.origin != new.origin:  # a re-import replaces
            raise RegistryError(f"{kind} {name!r} is already registered by {known.origin}")
        _REGISTRY[kind][name] = new
        return obj

    return decorate


def _load(kind: str) -> None:
    if kind in _loaded:
        return
    _loaded.add(kind)
    for module in BUILTINS[kind]:
        if importlib.util.find_spec(module) is not None:  # tests/test_registry.py: every built-in is there
            importlib.import_module(module)
    for ep in importlib.metadata.entry_points(group=GROUPS[kind]):
        try:
            ep.load()  # a module whose import registers, or an object whose module registered it
        except Exception as e:  # noqa: BLE001 (a broken plugin is named, not a traceback)
            raise RegistryError(f"entry point {ep.name!r} = {ep.value!r} in group {ep.group!r} failed to load: "
                                f"{type(e).__name__}: {e}") from None
        if ep.name not in _REGISTRY[kind]:
            raise RegistryError(f"entry point {ep.name!r} = {ep.value!r} in group {ep.group!r} registered no "
                                f"{kind} called {ep.name!r}; decorate it with @register({kind!r}, {ep.name!r})")


def registered(kind: str) -> dict[str, Registered]:
    """Every `kind` extension by name: the built-ins and those of installed packages."""
    if kind not in GROUPS:
        raise RegistryError(f"unknown extension kind {kind!r}; kinds: {', '.join(GROUPS)}")
    _load(kind)
    return dict(sorted(_REGISTRY[kind].items()))


def names(kind: str) -> list[str]:
    return list(registered(kind))


def unknown_name(kind: str, name: object) -> str:
    """The one-line message for a name that is not registered: the nearest valid choice, then all."""
    known = names(kind)
    near = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"unknown {kind.replace('_', ' ')} {name!r}; {hint}choose from {', '.join(known)}"


def lookup(kind: str, name: str) -> Registered:
    """The registered extension, or a RegistryError naming the nearest valid choice."""
    known = registered(kind)
    if name not in known:
        raise RegistryError(unknown_name(kind, name))
    return known[name]
