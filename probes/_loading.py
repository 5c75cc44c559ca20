"""Load probes from a file path or a module name, without packaging them.

A suite's `[probes] load = ["my_probe.py", "my_package.probes"]` and the CLI's `--probe-file` both come
here. A file is imported under a module name derived from its resolved path, so loading it twice (two
suites, a suite and a test) is one import and returns the same classes; what it registers with `@probe`
is what it contributes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from probes._api import Probe, ProbeError, registry

_LOADED: dict[str, list[type[Probe]]] = {}  # module name -> the probes it registered
_PREFIX = "loopprobe_user_probe_"  # the module name of a file loaded by path begins with it


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"{_PREFIX}{stem}_{digest}"


def _import(name: str, path: Path | None, spec_text: str) -> list[type[Probe]]:
    if name in _LOADED:
        return _LOADED[name]
    before = dict(registry())
    try:
        if path is None:
            module = importlib.import_module(name)
        else:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ProbeError(f"{spec_text}: cannot load it as a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
    except ProbeError:
        raise
    except Exception as e:  # noqa: BLE001 (an error in the author's file, whatever its kind: one line)
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise ProbeError(f"{spec_text}: importing it failed ({type(e).__name__}: {first})") from None
    found = [cls for pid, cls in registry().items() if before.get(pid) is not cls]
    if not found:  # imported before (e.g. a module a test imported): its probes are those defined in it
        found = [cls for cls in registry().values() if cls.__module__ == module.__name__]
    if not found:
        raise ProbeError(f"{spec_text}: it registers no probe; decorate a Probe subclass with @probe")
    _LOADED[name] = found
    return found


def loaded_from(cls: type[Probe]) -> str:
    """The file a probe was loaded from by path, or "" for any other probe."""
    if not cls.__module__.startswith(_PREFIX):
        return ""
    try:
        return str(Path(inspect.getsourcefile(cls) or "").resolve())
    except TypeError:
        return ""


def load_probes(specs: Sequence[str | Path], base: Path | str | None = None) -> list[type[Probe]]:
    """Import each spec and return the probe classes it registers, in order.

    A spec ending in `.py` (or any existing path) is a file, relative paths resolved against `base`
    (default: the working directory); anything else is a dotted module name on `sys.path`. A spec that
    cannot be found or imported, or that registers no probe, is a ProbeError with one line naming it."""
    out: list[type[Probe]] = []
    root = Path(base) if base is not None else Path.cwd()
    for spec in specs:
        text = str(spec)
        candidate = Path(text).expanduser()
        candidate = candidate if candidate.is_absolute() else root / candidate
        if isinstance(spec, Path) or text.endswith(".py") or "/" in text or candidate.exists():
            if not candidate.is_file():
                raise ProbeError(f"probe file {candidate}: no such file; give a path to a .py file (relative "
                                 f"paths are resolved against {root})")
            path = candidate.resolve()
            found = _import(_module_name(path), path, f"probe file {path}")
        else:
            if not text.replace(".", "").replace("_", "").isalnum():
                raise ProbeError(f"probe module {text!r}: not a module name; give a dotted module name or a "
                                 "path to a .py file")
            try:
                present = importlib.util.find_spec(text) is not None
            except (ImportError, ValueError):
                present = False
            if not present:
                raise ProbeError(f"probe module {text!r}: no such module on sys.path; give a dotted module "
                                 "name or a path to a .py file")
            found = _import(text, None, f"probe module {text}")
        out += [cls for cls in found if cls not in out]
    return out
