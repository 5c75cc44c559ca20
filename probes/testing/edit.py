"""Editing a recorded round on purpose, for a control no knob plants, without leaving stale hashes.

round.json records the sha256 of every file of its round and every reader checks them, so a file edited
by hand reads as damage (`loopprobe verify` lists it, `RunView` refuses the run). `edit_round` rewrites a
round's rows through functions and records the round again; `reseal_round` only re-hashes files that were
changed or added some other way (say inspect logs written after the round).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from harness.artifacts import (
    ReferenceRow,
    RoundRecord,
    RunError,
    RunStore,
    SampleRow,
    SelectedRow,
    read_jsonl,
    write_jsonl,
)
from harness.summary import summarise_round

Row = TypeVar("Row", bound=BaseModel)
RowEdit = Callable[[Row], Row | None]  # the row to keep, or None to drop it


def reseal_round(path: Path | str, r: int) -> None:
    """Record round r's files again after a test edited them on purpose (reads are checked against the
    hashes round.json records, so an edit that is not resealed is reported as damage). Only the hashes are
    renewed: round.json's summary numbers stay as they were (`edit_round` renews them too)."""
    store = RunStore(Path(path))
    record = store.read_round(r)
    store.finish_round(record.model_copy(update={"files": store.round_files(r)}))


def _edited(rows: list, edit: Callable | None, model: type[BaseModel]) -> list:
    if edit is None:
        return rows
    out = []
    for row in rows:
        new = edit(row)
        if new is not None:  # validated again: model_copy(update=...) does not check what it is given
            out.append(model.model_validate(new.model_dump()))
    return out


def edit_round(path: Path | str, r: int, *, samples: RowEdit[SampleRow] | None = None,
               evals: RowEdit[SampleRow] | None = None, selected: RowEdit[SelectedRow] | None = None,
               reference: RowEdit[ReferenceRow] | None = None) -> RoundRecord:
    """Rewrite round r's rows and record the round again, as the loop would have recorded those rows.

    Each edit function gets one row (a `SampleRow` of samples.jsonl or eval.jsonl, a `SelectedRow`, a
    `ReferenceRow`) and returns the row to keep (`row.model_copy(update={...})`, checked against the
    schema) or None to drop it. The files are read verified (an already damaged round is an error, not
    something to seal over), rewritten atomically, and round.json gets fresh hashes and the summary
    numbers of the new rows; its status, training stats and other files (checkpoint, inspect logs) are
    kept. Nothing else follows: selected.jsonl is not re-selected from edited samples (edit it too), and
    later rounds are untouched. Returns the new record.

        edit_round(run, 1, samples=lambda s: s.model_copy(update={"finished": False}) if s.n_tokens > 40 else s)
    """
    store = RunStore(Path(path))
    record = store.read_round(r)
    if record.status == "failed":
        raise RunError(f"{store.round_dir(r)}: round {r} failed; it has no rows to edit")
    files: dict[str, tuple[type[BaseModel], Callable | None]] = {
        "samples.jsonl": (SampleRow, samples), "eval.jsonl": (SampleRow, evals),
        "selected.jsonl": (SelectedRow, selected), "reference.jsonl": (ReferenceRow, reference)}
    rows = {}
    for name, (model, edit) in files.items():
        rows[name] = _edited(read_jsonl(store.verified(r, name), model), edit, model)
        if edit is not None:
            write_jsonl(store.round_dir(r) / name, rows[name])
    metrics, counts = summarise_round(rows["samples.jsonl"], rows["eval.jsonl"], rows["selected.jsonl"],
                                      rows["reference.jsonl"])
    new = record.model_copy(update={"metrics": metrics, "counts": counts, "files": store.round_files(r)})
    store.finish_round(new)
    return new
