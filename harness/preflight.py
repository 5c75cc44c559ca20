"""Paths a command will write, checked before any work starts: a one-line RunError naming the option and the
fix, instead of a traceback after minutes of training."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import RunError


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _try_write(directory: Path, target: Path, option: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".loopprobe-write-check.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise RunError(f"{target}: {option} cannot be written ({e.strerror} in {directory}); pass a writable "
                       "location") from None


def output_directory(path: Path, option: str = "--out") -> None:
    """`path` is, or can be made, a writable directory."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"{path}: {option} is an existing file, not a directory; pass a directory")
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise RunError(f"{path}: {option} lies under {base}, which is a file; pass a directory")
    _try_write(base, path, option)


def make_directory(path: Path, what: str) -> Path:
    """Create `path` (and parents), or a one-line RunError naming it and why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"{path}: cannot create the {what} ({e.strerror}); pass a writable --out") from None
    return path


def output_file(path: Path | None, option: str) -> None:
    """`path` (when given) can be written as a file."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise RunError(f"{path}: {option} is a directory; pass a file path")
    base = _existing_ancestor(path.parent)
    if not base.is_dir():
        raise RunError(f"{path}: {option} lies under {base}, which is a file; pass another path")
    _try_write(base, path, option)
