"""Probe controls in every registered domain: the synthetic run writer takes any domain's items (string
answers included), the planted crank fires the headline probes and a run of exchangeable rounds stays quiet,
so a new domain gets positive and negative probe controls without code of its own."""

from __future__ import annotations

import pytest

from harness.registry import names
from probes import RunView, run_probes
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run

SIZES = {"n_pool": 60, "n_test": 60, "n_ood": 30, "n_ref": 20}
SMALL_WORLD = {  # split sizes that hold the items above and build in well under a second
    "arithmetic": {"max_digits": 2, "base_train_size": 100, "ood_train_size": 10, "pool_size": 60, "test_size": 60,
                   "ood_size": 30, "reference_size": 0},
    "word_problems": {"pool_size": 60, "test_size": 60, "ood_size": 30},
    "sorting": {},
}
HEADLINES = ("drift.accuracy", "attractor.answer_entropy", "cw.rate")


@pytest.mark.parametrize("domain", names("domain"))
def test_a_crank_fires_and_a_clean_run_stays_quiet_in_every_domain(domain, tmp_path):
    config = {"name": domain, **SMALL_WORLD.get(domain, {})}
    crank = RunView(write_synthetic_run(tmp_path / "crank", crank_rounds(3), domain=config, **SIZES))
    results = run_probes(crank, {pid: {} for pid in HEADLINES}).measurements
    fired = {m.probe for m in results if m.fires}
    assert set(HEADLINES) <= fired, (domain, sorted(fired))

    clean = RunView(write_synthetic_run(tmp_path / "clean", clean_rounds(3), domain=config, **SIZES))
    quiet = run_probes(clean, {pid: {} for pid in HEADLINES}).measurements
    assert not [m.name for m in quiet if m.fires], domain


def test_string_answers_of_a_domain_are_recorded_and_compared_as_canonical_strings(tmp_path):
    run = RunView(write_synthetic_run(tmp_path / "run", clean_rounds(1), domain={"name": "sorting"}, **SIZES))
    from probes import answer_text

    table = run.samples(0)
    truths = {answer_text(t) for t in table.truth}
    assert all(isinstance(t, str) and not t.lstrip("-").isdigit() for t in truths)  # letters, not numbers
    right = table.answers == table.truth[:, None]
    assert (right == table.correct).all()  # a code equals the truth's exactly when the row says correct
