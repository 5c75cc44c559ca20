"""Hypothesis strategies over synthetic runs, so a probe can be property-tested on runs it was not tuned on.

    from hypothesis import given, settings
    from probes.testing.strategies import synthetic_runs

    @settings(max_examples=20, deadline=None)
    @given(synthetic_runs(n_rounds=3))
    def test_my_probe_keeps_its_ci_around_its_value(run):
        for m in MyProbe().measure(run.view()):
            ...

`synthetic_runs()` draws round specs (every knob, planted effects included), small sizes and a seed, and
writes the run into a fresh directory under one temporary root that is removed when the process exits
(hypothesis has no teardown for what a strategy makes). Each example is a `SyntheticRun`: its `path`, its
`planted` ledger, `view()` for a `RunView`. Sizes are small: a run takes tens of milliseconds once the
domain's items are built, which the first example of a domain does (hence `deadline=None`; writing is part
of drawing, so suppress `HealthCheck.too_slow` on a loaded machine).

Needs hypothesis (a dev dependency): importing this module without it is an ImportError.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from probes.testing.synthetic import RoundSpec, SyntheticRun, plants_rule, synthetic_questions, synthetic_run

_ROOT: list[Path] = []


def _fresh_directory() -> Path:
    """A new empty directory under this process's temporary root (made on first use, removed at exit)."""
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="loopprobe-hypothesis-")))
        atexit.register(shutil.rmtree, _ROOT[0], True)
    return Path(tempfile.mkdtemp(dir=_ROOT[0]))


def shares(low: float = 0.0, high: float = 1.0) -> st.SearchStrategy[float]:
    """A share in [low, high], the ends included (they are the edge cases probes get wrong)."""
    return st.one_of(st.sampled_from([low, high]), st.floats(low, high, allow_nan=False))


def round_specs(*, planted_rule: bool = False, plant_answers: st.SearchStrategy[str] | None = None
                ) -> st.SearchStrategy[RoundSpec]:
    """One round's knobs, planted effects included. `planted_rule`: also draw `planted_share` (only for a
    domain whose config plants a rule). `plant_answers`: draw `plant_answer` from it (on every pool and test
    question; `synthetic_runs` picks questions of its own run)."""
    return st.builds(
        RoundSpec,
        p_correct=shares(), spread=shares(0.0, 1.5), attractor=shares(), basin_share=shares(),
        test_p=st.none() | shares(), ood_p=shares(), extra_tokens=st.integers(0, 20),
        ref_shift=st.floats(-0.3, 0.5), ref_tail=shares(0.0, 0.5), diverse_text=st.booleans(),
        rationale_errors=shares(), planted_share=shares() if planted_rule else st.just(0.0),
        majority_share=st.none() | shares(0.05, 1.0),
        plant_answer=st.none() if plant_answers is None else st.none() | plant_answers,
        plant_rate=shares())


@st.composite
def _runs(draw, domain: dict | None, n_rounds: st.SearchStrategy[int], planted_rule: bool) -> SyntheticRun:
    sizes = {"n_pool": draw(st.integers(4, 24)), "n_test": draw(st.integers(2, 12)),
             "n_ood": draw(st.integers(1, 6))}
    seed = draw(st.integers(0, 2**16))
    questions = synthetic_questions(**sizes, seed=seed, domain=domain)
    truths = sorted({q.answer for split in questions.values() for q in split})
    specs: list[RoundSpec] = []
    n = draw(n_rounds)
    ids = [q.id for split in questions.values() for q in split]
    for _ in range(n):
        spec = draw(round_specs(planted_rule=planted_rule, plant_answers=st.sampled_from(truths)))
        if spec.plant_answer is not None and draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=min(5, len(ids)), unique=True))
            spec = dataclasses.replace(spec, plant_questions=tuple(chosen))
        specs.append(spec)
    return synthetic_run(_fresh_directory() / "run", specs, **sizes, k=draw(st.integers(1, 6)),
                         eval_k=draw(st.integers(1, 3)), n_ref=draw(st.integers(1, 6)),
                         tau=draw(shares(0.3, 1.0)), seed=seed, domain=domain)


_ONE_TO_THREE = st.integers(1, 3)


def synthetic_runs(*, domain: dict | None = None, n_rounds: int | st.SearchStrategy[int] = _ONE_TO_THREE,
                   planted_rule: bool | None = None) -> st.SearchStrategy[SyntheticRun]:
    """Written synthetic runs of `domain` (a registered domain's config; None: the default arithmetic items)
    with `n_rounds` rounds (a number or a strategy), each round's knobs drawn by `round_specs` (answers to
    plant drawn from the run's own truths, on every trained question or on a few chosen ones).
    `planted_rule`: draw `planted_share` too (default: when the domain config plants a rule, e.g.
    arithmetic or sorting with a `misconception`)."""
    rounds = st.just(n_rounds) if isinstance(n_rounds, int) else n_rounds
    return _runs(domain, rounds, plants_rule(domain) if planted_rule is None else planted_rule)
