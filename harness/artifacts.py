"""The persisted shapes of a run (pydantic) and the store that writes them atomically and resumes.

    runs/<id>/manifest.json
    runs/<id>/round-NNN/{model/, eval.jsonl, reference.jsonl, samples.jsonl, selected.jsonl, round.json}

`round.json` is written last: a round directory without it is incomplete and is redone on resume.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class RunError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


class SampleRow(BaseModel):
    """One decoded completion. `truth` and `correct` come from the hidden checker: label-free strategies
    never receive them (see harness.strategies)."""

    model_config = ConfigDict(extra="forbid")

    question_id: str
    split: Literal["pool", "test", "ood"]
    round: int
    sample_index: int
    decoding: Literal["sample", "greedy"]
    prompt: str
    completion: str
    parsed_answer: int | None
    sum_logprob: float
    n_tokens: int
    finished: bool
    truth: int
    correct: bool


class SelectedRow(BaseModel):
    """One training example the round's selection kept, as the next round is trained on it."""

    model_config = ConfigDict(extra="forbid")

    question_id: str
    round: int  # the round whose samples it came from
    sample_index: int  # into the round's pool samples; for rationalizations, into the hinted resamples
    prompt: str  # what it is trained on: the question's own prompt (a rationalization's hint is dropped)
    completion: str
    answer: int | None  # the completion's parsed answer (None only under select = "none")
    vote_share: float  # share of the question's samples that gave this answer (label-free, for every selector)
    source: Literal["sample", "rationalization"] = "sample"  # rationalization: STaR's hinted resample
    score: float | None = None  # the selector's own score (judge: mean log-prob per token)


class ReferenceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_id: str
    round: int
    nll: float  # summed negative log-likelihood of the text given its context (eos included)
    n_tokens: int


class RoundRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    round: int
    status: Literal["complete"] = "complete"
    metrics: dict[str, float | None]  # None where undefined (e.g. wrong share of an empty set)
    counts: dict[str, int]
    training: dict[str, float | None] | None  # fine-tuning stats that produced this round's model (None in round 0)
    seconds: dict[str, float]
    files: dict[str, str]  # file name -> sha256 of its bytes


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    tool: str = "loopprobe"
    config: dict[str, Any]
    config_hash: str
    seed: int
    base_model: dict[str, Any]
    versions: dict[str, str]
    git_revision: str | None
    created: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, rows: Iterable[BaseModel]) -> None:
    write_atomic(path, "".join(r.model_dump_json() + "\n" for r in rows))


def read_jsonl(path: Path, model: type[BaseModel]) -> list[Any]:
    path = Path(path)
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                out.append(model.model_validate_json(line))
            except ValueError as e:
                first = str(e).splitlines()[1:2] or [str(e)]
                raise RunError(f"{path}:{n}: not a valid {model.__name__} row ({first[0].strip()}); "
                               "the file is damaged: delete its round directory and resume the run") from None
    return out


class RunStore:
    """A run directory. Creating it twice with the same config resumes; with another config is an error."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def round_dir(self, r: int) -> Path:
        return self.root / f"round-{r:03d}"

    def is_complete(self, r: int) -> bool:
        return (self.round_dir(r) / "round.json").exists()

    def complete_rounds(self) -> list[int]:
        rounds = []
        while self.is_complete(len(rounds)):
            rounds.append(len(rounds))
        return rounds

    def read_manifest(self) -> Manifest:
        path = self.root / "manifest.json"
        if not path.exists():
            raise RunError(f"{path}: no manifest: not a loopprobe run directory (run `loopprobe run --out DIR`)")
        try:
            return Manifest.model_validate_json(path.read_text())
        except ValueError as e:
            raise RunError(f"{path}: damaged manifest ({str(e).splitlines()[0]}); start a new run") from None

    def open(self, manifest: Manifest) -> list[int]:
        """Start a new run, or resume one made with the same config. Returns the rounds already complete."""
        path = self.root / "manifest.json"
        if path.exists():
            old = self.read_manifest()
            if old.config_hash != manifest.config_hash:
                raise RunError(f"{path}: field config_hash: this directory holds a run with another "
                               "configuration; pass a new --out, or the same configuration to resume it")
        elif self.root.exists() and any(p for p in self.root.iterdir() if not p.name.startswith(".")):
            raise RunError(f"{self.root}: directory exists and is not a loopprobe run; pass an empty or new --out")
        else:
            write_atomic(path, manifest.model_dump_json(indent=2))
        done = self.complete_rounds()
        stale = self.round_dir(len(done))
        if stale.exists():  # an interrupted round: start it again from nothing
            shutil.rmtree(stale)
        return done

    def write_model(self, r: int, save) -> Path:
        """`save(dir)` writes a checkpoint into a temporary directory that is renamed into place."""
        final = self.round_dir(r) / "model"
        tmp = self.round_dir(r) / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final

    def finish_round(self, record: RoundRecord) -> None:
        write_atomic(self.round_dir(record.round) / "round.json", record.model_dump_json(indent=2))

    def read_round(self, r: int) -> RoundRecord:
        return RoundRecord.model_validate_json((self.round_dir(r) / "round.json").read_text())
