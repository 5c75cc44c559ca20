"""What `Probe.reads` means, enforced: the view a probe measures through lets it read only the artifacts it
declares. `reads` decides which files' hashes make its recorded results stale and which loop settings define
its measurements (probes._runner), so an undeclared read would leave a result looking current after the
file it depends on changed.

    "samples"    pool samples          run.samples(r) / run.samples(r, "pool")
    "eval"       test and ood decodings run.samples(r, "test" | "ood", ...)
    "reference"  reference-text NLLs    run.reference_nll(r)
    "selected"   the training sets      run.selected(r), run.rewards(r)
    "inspect"    inspect-ai logs        run.path(r, "inspect/<task>.eval")
"""

from __future__ import annotations

from typing import Any

from probes._api import ProbeError

READS = ("samples", "eval", "reference", "selected", "inspect")
_BY_FILE = {"samples.jsonl": "samples", "eval.jsonl": "eval", "reference.jsonl": "reference",
            "selected.jsonl": "selected"}


def check_reads(probe_id: str, reads: tuple[str, ...]) -> None:
    unknown = [r for r in reads if r not in READS]
    if unknown:
        raise ProbeError(f"probe {probe_id}: reads names {unknown[0]!r}; choose from {', '.join(READS)}")


class DeclaredReads:
    """A RunView or PooledRunView that raises a one-line ProbeError when the probe reads an artifact its
    `reads` does not name; everything else (rounds, config, name, round_record, ...) passes through."""

    def __init__(self, view: Any, probe_id: str, reads: tuple[str, ...]):
        self._view, self._probe, self._reads = view, probe_id, tuple(reads)

    def _need(self, read: str, call: str) -> None:
        if read not in self._reads:
            raise ProbeError(f"probe {self._probe} calls {call}, which reads {read!r}, but its reads are "
                             f"{self._reads}; add {read!r} to its `reads`")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def samples(self, r: int, split: str = "pool", decoding: str = "sample"):
        self._need("samples" if split == "pool" else "eval", f"run.samples({r}, {split!r})")
        return self._view.samples(r, split, decoding)

    def reference_nll(self, r: int):
        self._need("reference", f"run.reference_nll({r})")
        return self._view.reference_nll(r)

    def selected(self, r: int):
        self._need("selected", f"run.selected({r})")
        return self._view.selected(r)

    def rewards(self, r: int):
        self._need("selected", f"run.rewards({r})")
        return self._view.rewards(r)

    def path(self, r: int, name: str):
        read = "inspect" if name.startswith("inspect/") else _BY_FILE.get(name)
        if read is not None:
            self._need(read, f"run.path({r}, {name!r})")
        return self._view.path(r, name)

    @property
    def views(self) -> list[DeclaredReads]:
        return [DeclaredReads(v, self._probe, self._reads) for v in self._view.views]

    @property
    def runs(self) -> tuple[DeclaredReads, ...]:
        return tuple(DeclaredReads(v, self._probe, self._reads) for v in self._view.runs)
