"""The persisted shapes of a run (pydantic) and the store that writes them atomically and resumes.

    runs/<id>/manifest.json
    runs/<id>/round-NNN/{model/, eval.jsonl, reference.jsonl, samples.jsonl, selected.jsonl, round.json}

`round.json` is written last: a round directory without it is incomplete and is redone on resume. It records
the sha256 of every file of the round (checkpoint included) and carries a checksum of its own; every reader
goes through `RunStore.verified`, so a damaged or edited file is an error naming it, never silent evidence.
A round whose fine-tune failed is recorded too (status "failed", with the reason), not hidden.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from harness import faults
from harness.errors import RoundFailed, RunError
from harness.integrity import (
    DamagedFile,
    dump_checked,
    load_checked,
    sha256_file,
    tree_hashes,
    verify_file,
)

# 2: round.json hashes every file of the round; manifest and round.json carry a checksum
# 3: answers are the domain's canonical strings (parsed_answer, truth, answer)
SCHEMA_VERSION = 3
__all__ = ["DamagedFile", "RoundFailed", "RunError", "sha256_file"]


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
    parsed_answer: str | None  # the domain's canonical form
    sum_logprob: float
    n_tokens: int
    finished: bool
    truth: str
    correct: bool


class SelectedRow(BaseModel):
    """One training example the round's selection kept, as the next round is trained on it."""

    model_config = ConfigDict(extra="forbid")

    question_id: str
    round: int  # the round whose samples it came from
    sample_index: int  # into the round's pool samples; for rationalizations, into the hinted resamples
    prompt: str  # what it is trained on: the question's own prompt (a rationalization's hint is dropped)
    completion: str
    answer: str | None  # the completion's canonical answer (None only under select = "none")
    vote_share: float  # share of the question's samples that gave this answer (label-free, for every selector)
    source: Literal["sample", "rationalization"] = "sample"  # rationalization: STaR's hinted resample
    score: float | None = None  # the selector's own score (judge: mean log-prob per token)
    # policy-gradient distillation: every sample is recorded, with its reward and its group-normalised advantage
    reward: float | None = None
    advantage: float | None = None

    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"reward", "advantage"})  # SFT rows stay as they were


class ReferenceRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_id: str
    round: int
    nll: float  # summed negative log-likelihood of the text given its context (eos included)
    n_tokens: int


RoundStatus = Literal["complete", "no_update", "failed", "rejected"]


class RoundRecord(BaseModel):
    """round.json. status: complete; no_update (the training set was empty: the model is unchanged);
    failed (the fine-tune failed, the run stopped: no model, no other files); rejected (the fine-tune failed
    and `on_failure = "continue"` kept the previous round's weights, which were evaluated as this round).
    `reason` says why, for every status but complete."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    round: int
    status: RoundStatus = "complete"
    reason: str | None = None
    metrics: dict[str, float | None]  # None where undefined (e.g. wrong share of an empty set)
    counts: dict[str, int]
    training: dict[str, float | None] | None  # fine-tuning stats that produced this round's model (None in round 0)
    seconds: dict[str, float]
    files: dict[str, str]  # path in the round directory -> sha256 of its bytes (checkpoint files included)
    checksum: str | None = None  # sha256 of the rest of the record (harness.integrity)


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
    checksum: str | None = None


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise RunError(f"{path}: cannot write ({e.strerror}); choose a writable location") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are meant to be shared
        faults.reached("write")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(directory: Path) -> None:
    """Temporary files `write_atomic` left when its process was killed (call it holding the write lock)."""
    for tmp in Path(directory).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)


def share_permissions(directory: Path) -> None:
    """Give a directory written by a library (safetensors writes 0600) the modes of every other artifact."""
    for path in [Path(directory), *Path(directory).rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~_UMASK)


def write_jsonl(path: Path, rows: Iterable[BaseModel]) -> None:
    write_atomic(path, "".join(r.model_dump_json(exclude=_omitted(r)) + "\n" for r in rows))


def _omitted(row: BaseModel) -> set[str] | None:
    """Optional fields a row class leaves out of its JSON while they are None (`OMIT_WHEN_NONE`)."""
    names = getattr(row, "OMIT_WHEN_NONE", None)
    return {n for n in names if getattr(row, n) is None} or None if names else None


def read_jsonl(path: Path, model: type[BaseModel]) -> list[Any]:
    """Rows of a JSONL file (verify its hash first: `RunStore.verified`); a bad line is an error naming it."""
    path = Path(path)
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                out.append(model.model_validate_json(line))
            except ValueError as e:
                first = str(e).splitlines()[1:2] or [str(e)]
                raise RunError(f"{path}:{n}: not a valid {model.__name__} row ({first[0].strip()}); "
                               "the file is damaged: delete its round directory and resume the run") from None
    return out


def read_json_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file as dicts; a line that is not a JSON object is an error naming file and line."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DamagedFile(f"{path}:{n}: not valid JSON ({e.msg}); the file is damaged: delete its round "
                                  "directory and resume the run") from None
            if not isinstance(row, dict):
                raise DamagedFile(f"{path}:{n}: not a JSON object; the file is damaged")
            rows.append(row)
    return rows


ROUND_FILE = "round.json"


class RunStore:
    """A run directory. Creating it twice with the same config resumes; with another config is an error.

    Reads are verified: `verified(r, name)` checks a round's file against the sha256 its round.json records
    (once per file per process), `read_round` and `read_manifest` check the records' own checksums."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._records: dict[int, RoundRecord] = {}

    def round_dir(self, r: int) -> Path:
        return self.root / f"round-{r:03d}"

    def _fix(self, r: int | None = None) -> str:
        if r is None:
            return "restore it from a copy, or start a new run"
        return (f"restore it from a copy, or delete {self.round_dir(r)} and the rounds after it and resume the run "
                f"(`loopprobe run SUITE --out ...` with the same suite)")

    def is_recorded(self, r: int) -> bool:
        return (self.round_dir(r) / ROUND_FILE).exists()

    def recorded_rounds(self) -> list[int]:
        """Rounds 0..n-1 that have a round.json (complete, rejected or failed)."""
        rounds: list[int] = []
        while self.is_recorded(len(rounds)):
            rounds.append(len(rounds))
        return rounds

    def complete_rounds(self) -> list[int]:
        """Recorded rounds that were evaluated (complete or rejected), up to the first failed one."""
        out = []
        for r in self.recorded_rounds():
            if self.read_round(r).status == "failed":
                break
            out.append(r)
        return out

    def failed_round(self) -> RoundRecord | None:
        """The record of the round the run stopped on, if its fine-tune failed."""
        rounds = self.recorded_rounds()
        last = self.read_round(rounds[-1]) if rounds else None
        return last if last is not None and last.status == "failed" else None

    def read_manifest(self) -> Manifest:
        path = self.root / "manifest.json"
        if not path.exists():
            if self.root.is_file():
                raise RunError(f"{self.root}: a file, not a run directory; pass a run directory")
            raise RunError(f"{path}: no manifest: not a loopprobe run directory (run `loopprobe run --out DIR`)")
        return load_checked(path, Manifest, self._fix())

    def open(self, manifest: Manifest) -> list[int]:
        """Start a new run, or resume one made with the same config (hold `harness.lock.write_lock` on the
        directory). Returns the rounds already recorded; removes what a killed writer left behind."""
        path = self.root / "manifest.json"
        if path.exists():
            old = self.read_manifest()
            if old.config_hash != manifest.config_hash:
                raise RunError(f"{path}: field config_hash: this directory holds a run with another "
                               "configuration; pass a new --out, or the same configuration to resume it")
            if old.schema_version != manifest.schema_version:  # a resume would mix two record formats
                raise RunError(f"{path}: field schema_version: this run was recorded in format "
                               f"{old.schema_version}, this loopprobe writes {manifest.schema_version}; it can "
                               "still be probed and reported, but not resumed: pass a new --out")
        elif self.root.exists() and any(p for p in self.root.iterdir() if not p.name.startswith(".")):
            raise RunError(f"{self.root}: directory exists and is not a loopprobe run; pass an empty or new --out")
        else:
            write_atomic(path, dump_checked(manifest))
        remove_stale_temps(self.root)  # a killed writer's (we hold the lock)
        done = self.recorded_rounds()
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
        share_permissions(tmp)
        faults.reached("model")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final

    def round_files(self, r: int) -> dict[str, str]:
        """sha256 of every file of round r's directory (checkpoint and inspect logs included)."""
        return tree_hashes(self.round_dir(r), exclude={ROUND_FILE})

    def finish_round(self, record: RoundRecord) -> None:
        faults.reached("round")
        write_atomic(self.round_dir(record.round) / ROUND_FILE, dump_checked(record))
        self._records[record.round] = record

    def fail_round(self, r: int, reason: str, training: dict | None, seconds: dict[str, float]) -> None:
        """Record round r as failed (no checkpoint, no other files) and raise RoundFailed."""
        self.finish_round(RoundRecord(round=r, status="failed", reason=reason, metrics={}, counts={},
                                      training=training, seconds=seconds,
                                      files=self.round_files(r) if self.round_dir(r).exists() else {}))
        raise RoundFailed(f"{self.round_dir(r) / ROUND_FILE}: round {r} failed: {reason}; rounds 0..{r - 1} are "
                          "intact (on_failure = \"continue\" keeps going with the previous weights)")

    def read_round(self, r: int) -> RoundRecord:
        if r not in self._records:
            self._records[r] = load_checked(self.round_dir(r) / ROUND_FILE, RoundRecord, self._fix(r))
        return self._records[r]

    def verified(self, r: int, name: str) -> Path:
        """The path of round r's file `name`, after checking it against the sha256 round.json records."""
        record, path = self.read_round(r), self.round_dir(r) / name
        expected = record.files.get(name)
        if expected is None:
            if record.schema_version < 2:  # runs from before checksums: nothing to check against
                return path
            raise DamagedFile(f"{path}: not recorded in {self.round_dir(r) / ROUND_FILE}; the round is "
                              f"damaged; {self._fix(r)}")
        return verify_file(path, expected, self.round_dir(r) / ROUND_FILE, self._fix(r))

    def verified_model(self, r: int) -> Path:
        """Round r's checkpoint directory, every file of it checked against round.json."""
        record = self.read_round(r)
        names = [n for n in record.files if n.startswith("model/")]
        if not names and record.schema_version >= 2:
            raise DamagedFile(f"{self.round_dir(r) / 'model'}: no checkpoint recorded in "
                              f"{self.round_dir(r) / ROUND_FILE}; {self._fix(r)}")
        for name in names:
            self.verified(r, name)
        return self.round_dir(r) / "model"

    def verify_all(self) -> None:
        """Check every recorded file of the run (once per file per process); DamagedFile naming the first
        damaged one and how many more. Readers whose verdict rests on the whole run call this first."""
        problems = self.problems(strays=False)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DamagedFile(f"{problems[0]}{more}; `loopprobe verify {self.root}` lists every damaged file")

    def problems(self, strays: bool = True) -> list[str]:
        """Every damaged, missing or (`strays`) unrecorded file of the run, one line each (`loopprobe verify`)."""
        found = []
        try:
            self.read_manifest()
        except RunError as e:
            found.append(str(e))
        for r in self.recorded_rounds():
            try:
                record = self.read_round(r)
            except RunError as e:
                found.append(str(e))
                continue
            for name in record.files:
                try:
                    self.verified(r, name)
                except RunError as e:
                    found.append(str(e))
            if strays and record.schema_version >= 2:
                extra = sorted(set(self.round_files(r)) - set(record.files))
                found += [f"{self.round_dir(r) / n}: not recorded in its round.json (a stray file: remove it)"
                          for n in extra]
        return found
