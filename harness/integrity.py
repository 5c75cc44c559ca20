"""What is read is what was written: sha256 of artifact files, checked once per file per process, and JSON
records (manifest, round.json, probes.json, suite.json) that carry a checksum of their own content.

A damaged file is a one-line `DamagedFile` error naming the file, the recorded and the found hash, and what
to do. Deliberate forgery is out of scope (whoever edits a file can recompute its hash); accidental damage,
hand edits and truncation are not.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harness.errors import RunError

M = TypeVar("M", bound=BaseModel)


class DamagedFile(RunError):
    """A file whose bytes are not the ones recorded when it was written (or that is missing)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# (path, inode, size, mtime) -> sha256: a file is hashed once per process unless it changes on disk.
_hashed: dict[tuple[str, int, int, int], str] = {}


def file_hash(path: Path) -> str:
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hashed:
        _hashed[key] = sha256_file(path)
    return _hashed[key]


def verify_file(path: Path, expected: str, recorded_in: Path, fix: str) -> Path:
    """`path` if its sha256 is `expected`; otherwise a DamagedFile naming both hashes and `fix`."""
    path = Path(path)
    try:
        found = file_hash(path)
    except FileNotFoundError:
        raise DamagedFile(f"{path}: missing, but recorded in {recorded_in} (sha256 {expected[:16]}…); {fix}") from None
    except OSError as e:
        raise RunError(f"{path}: cannot read ({e.strerror}); check its permissions") from None
    if found != expected:
        raise DamagedFile(f"{path}: sha256 {found[:16]}… is not the {expected[:16]}… recorded in {recorded_in}: "
                          f"the file changed after it was written; {fix}")
    return path


def canonical_sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def dump_checked(model: BaseModel) -> str:
    """The model as indented JSON whose last key, `checksum`, is the sha256 of the rest (canonical JSON)."""
    data = json.loads(model.model_dump_json())
    data.pop("checksum", None)
    data["checksum"] = canonical_sha(data)
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def load_checked(path: Path, model: type[M], fix: str, required_from_schema: int = 2) -> M:
    """Parse a JSON record written by `dump_checked`, verifying its checksum. Records of an older schema
    (before checksums) are accepted unverified. Every problem is one line naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunError(f"{path}: missing; {fix}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DamagedFile(f"{path}: cannot read ({getattr(e, 'strerror', None) or e}); {fix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DamagedFile(f"{path}:{e.lineno}: not valid JSON ({e.msg}); the file is damaged; {fix}") from None
    if not isinstance(data, dict):
        raise DamagedFile(f"{path}: not a JSON object; the file is damaged; {fix}")
    recorded = data.pop("checksum", None)
    if recorded is None:
        schema = data.get("schema_version")
        if isinstance(schema, int) and schema >= required_from_schema:
            raise DamagedFile(f"{path}: field checksum is missing; the file is damaged; {fix}")
    elif recorded != (found := canonical_sha(data)):
        raise DamagedFile(f"{path}: content sha256 {found[:16]}… is not its recorded checksum {str(recorded)[:16]}…: "
                          f"the file was edited or damaged; {fix}")
    try:
        return model.model_validate({**data, "checksum": recorded} if "checksum" in model.model_fields else data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"])) or "(top level)"
        raise DamagedFile(f"{path}: field {where}: {err['msg']}; the file is damaged; {fix}") from None


def tree_hashes(root: Path, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """sha256 of every regular file under `root` (relative POSIX paths), less hidden names and `exclude`."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or rel.as_posix() in exclude or not path.is_file():
            continue
        out[rel.as_posix()] = file_hash(path)
    return out


def write_checked_json(path: Path, data: dict) -> None:
    """Write a record as `dump_checked` would (a fresh checksum): for tests and tools that edit one on purpose."""
    data = {k: v for k, v in data.items() if k != "checksum"}
    Path(path).write_text(json.dumps({**data, "checksum": canonical_sha(data)}, indent=1, ensure_ascii=False) + "\n")
