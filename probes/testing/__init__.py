"""Synthetic runs with planted effects, for probe controls (positive: the effect is planted and the probe
must fire; negative: rounds are exchangeable draws and the probe must stay quiet).

`write_synthetic_run(path, [RoundSpec(...), ...])` writes a real run directory (manifest, per-round
samples, eval, reference, selected and round.json) in the loop's own schema, from per-round knobs;
`synthetic_run(...)` does the same and also returns the ledger of which decodings carry each planted
effect (`SyntheticRun.planted`, kept out of the run directory). Questions keep fixed latent difficulties
across rounds, so rounds pair item by item, as real runs do.

The items are arithmetic by default; `domain=` takes any registered domain's config (e.g.
`{"name": "sorting"}`): its own questions, gold rationales and canonical answers, with wrong answers made
as strings that no right answer equals (its `distractor` for the fixed wrong answer when it has one), so a
new domain gets the same positive and negative probe controls.

What each knob of `RoundSpec` plants:

- accuracy: `p_correct` (pool and test), `test_p`, `ood_p`; `spread` spreads it over questions.
- attractors: a wrong decoding gives the question's fixed wrong answer with chance `attractor` (else a
  scattered one); `basin_share` of the questions share one fixed wrong answer (`BASIN_ANSWER` in arithmetic).
- drift: `extra_tokens` (completion length), `ref_shift` and `ref_tail` (reference NLLs), `diverse_text`.
- right answer, wrong reason: `rationale_errors` of the right decodings carry one wrong intermediate step
  (arithmetic: a column's sum; sorting: a letter's count; word problems: the last number before the
  answer) while their answer line, and so their parsed answer, stays right. Right decodings are otherwise
  the gold rationale exactly, so `completion != gold` finds them on the artifacts too.
- planted rule: `planted_share` of the wrong decodings give the domain's planted-rule answer
  (`PlantsRule.planted_answer`, where the rule changes the answer), e.g. with
  `domain={"name": "arithmetic", "misconception": "drop_carry_tens"}` (`plants_rule(domain)` says whether
  a domain config does); a ValueError for one that does not.
- one answer on chosen questions: `plant_answer` is given by `plant_rate` of the decodings (every split and
  decoding) of `plant_questions` (default: every pool and test question); `synthetic_questions()` lists
  the ids before writing. It is applied last, over whatever the decoding drew.
- vote shares: with `majority_share` = s, each question's k sampled answers (pool, and the "sample"
  decodings of test and ood) are one lead answer s * k times (rounded at random to a whole count, at least
  once; right with the question's chance, else a wrong answer as above) and distinct scattered wrong
  answers otherwise, so every question's majority vote share is about s. Greedy decodings are unchanged.
- answer entropy follows: low with `majority_share` near 1 (0 nats at 1), or `attractor` = 1 with
  `p_correct` near 0 or 1; high with `majority_share` near 1/k (log k nats) or `attractor` = 0 and
  `p_correct` near 0. A confident-wrong run: a high `majority_share` with a falling `p_correct`.

Each planted effect draws from a random stream of its own: with one turned on, every other decoding is
byte for byte what it was without it; with all off, a run is byte for byte what it was before they existed.

To plant what no knob does, edit a recorded round through `edit_round(path, r, samples=...)`, which keeps
round.json's hashes and summary true to the edited files (a file edited by hand reads as damage).
`probes.testing.strategies` has the same generators as hypothesis strategies.
"""

from probes.testing.edit import RowEdit, edit_round, reseal_round
from probes.testing.synthetic import (
    BASIN_ANSWER,
    PLANTED_KINDS,
    Planted,
    RoundSpec,
    SampleKey,
    SyntheticRun,
    clean_rounds,
    crank_rounds,
    plants_rule,
    synthetic_questions,
    synthetic_run,
    write_synthetic_run,
)

__all__ = ["BASIN_ANSWER", "PLANTED_KINDS", "Planted", "RoundSpec", "RowEdit", "SampleKey", "SyntheticRun",
           "clean_rounds", "crank_rounds", "edit_round", "plants_rule", "reseal_round", "synthetic_questions",
           "synthetic_run", "write_synthetic_run"]
