"""The synthetic run writer: per-round knobs (`RoundSpec`) in, a real run directory out, plus a ledger of
which decodings carry each planted effect (kept in memory: the run directory holds the loop's schema only).

Every file goes through the run store and `record_round`, so round.json hashes what was written and
`loopprobe verify` finds the run intact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from harness.artifacts import Manifest, ReferenceRow, RunStore, SampleRow
from harness.domains.base import Question
from harness.seeding import derive_seed
from harness.strategies.select import self_consistency, strip_labels
from harness.summary import record_round
from probes._view import RunView, SampleTable
from probes.testing.items import ArithmeticItems, DomainItems, ItemSource, wrong_step

Split = Literal["pool", "test", "ood"]
Decoding = Literal["sample", "greedy"]
PlantedKind = Literal["rationale_errors", "rule_answers", "plant_answers"]
PLANTED_KINDS: tuple[PlantedKind, ...] = ("rationale_errors", "rule_answers", "plant_answers")
BASIN_ANSWER = 1000


@dataclass(frozen=True)
class RoundSpec:
    """What one round's model does. Defaults describe a middling, stable model.

    The planted effects (from `rationale_errors` on) are off by default. Each draws from a random stream of
    its own, so turning one on changes nothing else: the same decodings are right, with the same answers
    and texts, except where the effect itself lands. See the package docstring for how the knobs combine.
    """

    p_correct: float = 0.6  # mean chance that a pool/test sample is right
    spread: float = 0.8  # how much questions differ in difficulty (0: all alike)
    attractor: float = 0.3  # share of wrong samples that give the question's own fixed wrong answer
    basin_share: float = 0.0  # share of questions whose fixed wrong answer is one common value (a basin)
    test_p: float | None = None  # test accuracy (default: p_correct)
    ood_p: float = 0.5  # ood accuracy
    extra_tokens: int = 0  # filler characters added to every completion (length drift)
    ref_shift: float = 0.0  # added to every reference text's NLL per token
    ref_tail: float = 0.0  # share of reference texts pushed far into the tail (+2 nats per token)
    diverse_text: bool = True  # wrong samples also vary their rationale text
    rationale_errors: float = 0.0  # share of right decodings whose rationale has one wrong step
    planted_share: float = 0.0  # share of wrong decodings that give the domain's planted-rule answer
    majority_share: float | None = None  # per question: share of its sampled answers that agree (None: independent)
    plant_answer: str | None = None  # one canonical answer planted on `plant_questions`
    plant_questions: tuple[str, ...] | None = None  # their ids (None: every pool and test question)
    plant_rate: float = 1.0  # share of those questions' decodings (every split and decoding) that give it

    def __post_init__(self) -> None:
        for name in ("rationale_errors", "planted_share", "plant_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"RoundSpec.{name} = {getattr(self, name)!r}: a share, in [0, 1]")
        if self.majority_share is not None and not 0.0 < self.majority_share <= 1.0:
            raise ValueError(f"RoundSpec.majority_share = {self.majority_share!r}: in (0, 1], or None")
        if self.plant_questions is not None:
            if self.plant_answer is None:
                raise ValueError("RoundSpec.plant_questions needs plant_answer (the answer to plant on them)")
            object.__setattr__(self, "plant_questions", tuple(self.plant_questions))


_PLANTED_FIELDS = ("rationale_errors", "planted_share", "majority_share", "plant_answer", "plant_questions",
                   "plant_rate")


def _recorded(spec: RoundSpec) -> dict:
    """The spec as the manifest records it: the drift and attractor knobs always, a planted effect only when
    it differs from its default, so a run without one keeps the bytes it had before those knobs existed."""
    out = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name not in _PLANTED_FIELDS or value != f.default:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


class SampleKey(NamedTuple):
    """One decoding of a run: round, split, decoding ("sample" or "greedy"), question id, sample index."""

    round: int
    split: str
    decoding: str
    question_id: str
    sample_index: int


@dataclass(frozen=True)
class Planted:
    """Which decodings carry each planted effect: `rationale_errors` (right answer, one wrong step),
    `rule_answers` (the planted rule's answer) and `plant_answers` (RoundSpec.plant_answer)."""

    rationale_errors: frozenset[SampleKey] = frozenset()
    rule_answers: frozenset[SampleKey] = frozenset()
    plant_answers: frozenset[SampleKey] = frozenset()

    def mask(self, kind: PlantedKind, r: int, table: SampleTable, split: str = "pool",
             decoding: str = "sample") -> np.ndarray:
        """bool [n, k] aligned with `table` (a RunView's round r, same split and decoding): True where `kind`
        was planted."""
        if kind not in PLANTED_KINDS:
            raise ValueError(f"unknown planted effect {kind!r}; one of {', '.join(PLANTED_KINDS)}")
        index = {q: i for i, q in enumerate(table.question_ids)}
        out = np.zeros((table.n_items, table.k), dtype=bool)
        for key in getattr(self, kind):
            if (key.round, key.split, key.decoding) == (r, split, decoding) and key.question_id in index:
                out[index[key.question_id], key.sample_index] = True
        return out


@dataclass(frozen=True)
class SyntheticRun:
    """A written synthetic run: its directory, the specs it follows, what was planted where, and its
    questions by split ("pool", "test", "ood")."""

    path: Path
    rounds: tuple[RoundSpec, ...]
    planted: Planted
    questions: dict[str, tuple[Question, ...]]

    def view(self) -> RunView:
        return RunView(self.path)


class _World:
    def __init__(self, n_pool: int, n_test: int, n_ood: int, n_ref: int, seed: int, items: ItemSource):
        rng = np.random.default_rng(derive_seed(seed, "synthetic", "world"))
        self.items = items
        trained, self.ood = items.questions(n_pool + n_test, n_ood, rng)
        self.pool, self.test = trained[:n_pool], trained[n_pool:]
        self.trained = {q.id for q in trained}
        self.difficulty = {q.id: float(rng.uniform(-0.5, 0.5)) for q in self.pool + self.test + self.ood}
        self.greedy_u = {q.id: float(rng.uniform()) for q in self.test + self.ood}
        self.wrong = {q.id: items.near_wrong(q, rng) for q in self.pool + self.test}
        self.basin_u = {q.id: float(rng.uniform()) for q in self.pool + self.test}
        self.ref_base = rng.uniform(0.2, 0.6, size=n_ref)
        self.ref_len = rng.integers(20, 40, size=n_ref)
        self._rules: dict[str, str | None] | None = None

    def p(self, q, mean: float, spread: float) -> float:
        return float(np.clip(mean + spread * self.difficulty[q.id], 0.0, 1.0))

    def fixed_wrong(self, q, spec: RoundSpec) -> str:
        return self.items.basin if self.basin_u[q.id] < spec.basin_share else self.wrong[q.id]

    def rule(self, q: Question) -> str | None:
        """The planted rule's answer to q, when it is a wrong one."""
        if self._rules is None:
            self._rules = {x.id: self.items.rule_answer(x.id) for x in self.pool + self.test + self.ood}
        answer = self._rules[q.id]
        return answer if answer != q.answer else None

    def questions(self) -> dict[str, tuple[Question, ...]]:
        return {"pool": tuple(self.pool), "test": tuple(self.test), "ood": tuple(self.ood)}

    def check(self, r: int, spec: RoundSpec) -> None:
        """A ValueError, before anything is written, for a knob this world cannot honour."""
        known = {q.id for q in self.pool + self.test + self.ood}
        unknown = [q for q in spec.plant_questions or () if q not in known]
        if unknown:
            raise ValueError(f"round {r}: plant_questions names {unknown[0]!r}, not a question of this run "
                             f"(e.g. {self.pool[0].id!r}; synthetic_questions() lists them)")
        if spec.planted_share > 0 and not self.items.plants_rule():
            raise ValueError(f"round {r}: planted_share needs a domain that plants a rule (PlantsRule), e.g. "
                             "domain={'name': 'arithmetic', 'misconception': 'drop_carry_tens'}")


class _Decodings:
    """Round r's decodings of one split: the answers from the round's shared stream (as they always were),
    each planted effect from a stream of its own, recorded in `ledger`."""

    def __init__(self, world: _World, spec: RoundSpec, seed: int, r: int, split: Split, decoding: Decoding,
                 rng: np.random.Generator, ledger: dict[str, set[SampleKey]]):
        self.world, self.spec, self.r, self.split, self.decoding, self.rng = world, spec, r, split, decoding, rng
        self.ledger = ledger
        side = lambda kind: np.random.default_rng(derive_seed(seed, "synthetic", kind, r, split, decoding))
        self.rationale_rng, self.rule_rng, self.plant_rng = side("rationale"), side("rule"), side("plant")
        self.plant_on = (world.trained if spec.plant_questions is None else set(spec.plant_questions)
                         ) if spec.plant_answer is not None else set()

    def decode(self, questions: list[Question], k: int, p_mean: float) -> list[SampleRow]:
        if self.spec.majority_share is not None and self.decoding == "sample":
            return self._concentrated(questions, k, p_mean)
        return self._independent(questions, k, p_mean)

    def _independent(self, questions: list[Question], k: int, p_mean: float) -> list[SampleRow]:
        """Each decoding right with the question's chance; a wrong one gives the question's fixed wrong
        answer (attractor share) or a scattered one."""
        world, spec, rng, greedy = self.world, self.spec, self.rng, self.decoding == "greedy"
        rows = []
        for q in questions:
            p = world.p(q, p_mean, spec.spread)
            for j in range(k):
                right = world.greedy_u[q.id] < p if greedy else rng.uniform() < p
                diffuse, ruled = False, False
                if right:
                    answer = q.answer
                elif q.id in world.trained and rng.uniform() < spec.attractor:
                    answer = world.fixed_wrong(q, spec)
                else:
                    answer, diffuse = world.items.far_wrong(q, rng), True
                if not right:
                    answer, ruled = self._rule(q, answer)
                rows.append(self._row(q, j, answer, right, diffuse, ruled))
        return rows

    def _concentrated(self, questions: list[Question], k: int, p_mean: float) -> list[SampleRow]:
        """Per question, a lead answer (right with the question's chance, else as a wrong decoding would be)
        given by majority_share * k of its samples (rounded at random to a whole count, at least one); the
        others give distinct scattered wrong answers, so the lead's vote share is its count / k."""
        world, spec, rng = self.world, self.spec, self.rng
        assert spec.majority_share is not None
        target = spec.majority_share * k
        rows = []
        for q in questions:
            lead_right = rng.uniform() < world.p(q, p_mean, spec.spread)
            lead, diffuse, ruled = q.answer, False, False
            if not lead_right:
                if q.id in world.trained and rng.uniform() < spec.attractor:
                    lead = world.fixed_wrong(q, spec)
                else:
                    lead, diffuse = world.items.far_wrong(q, rng), True
                lead, ruled = self._rule(q, lead)
            n_lead = min(k, max(1, int(target) + int(rng.uniform() < target - int(target))))
            at_lead = set(rng.permutation(k)[:n_lead].tolist())
            taken = {q.answer, lead}
            for j in range(k):
                if j in at_lead:
                    rows.append(self._row(q, j, lead, lead_right, diffuse, ruled))
                else:
                    rows.append(self._row(q, j, self._scattered(q, taken), False, True, False))
        return rows

    def _scattered(self, q: Question, taken: set[str]) -> str:
        """A wrong answer no other decoding of the question gives (after 100 draws, one that may repeat)."""
        for _ in range(100):
            answer = self.world.items.far_wrong(q, self.rng)
            if answer not in taken:
                break
        taken.add(answer)
        return answer

    def _rule(self, q: Question, wrong: str) -> tuple[str, bool]:
        """A wrong answer, replaced by the planted rule's answer with chance planted_share."""
        if self.spec.planted_share <= 0:
            return wrong, False
        rule = self.world.rule(q)
        if self.rule_rng.uniform() < self.spec.planted_share and rule is not None:
            return rule, True
        return wrong, False

    def _row(self, q: Question, j: int, answer: str, right: bool, diffuse: bool, ruled: bool) -> SampleRow:
        spec, items, key = self.spec, self.world.items, SampleKey(self.r, self.split, self.decoding, q.id, j)
        forced = q.id in self.plant_on and self.plant_rng.uniform() < spec.plant_rate
        if forced:
            assert spec.plant_answer is not None
            answer, right, ruled = spec.plant_answer, spec.plant_answer == q.answer, False
        lines = items.rationale_lines(q)
        if diffuse and spec.diverse_text and lines:  # the draws are made whatever the answer: streams stay put
            i, digit = int(self.rng.integers(len(lines))), str(int(self.rng.integers(10)))
            if not right:
                lines[i] = lines[i][:-1] + digit
        answer_line = items.answer_line(q, answer)
        u = self.rationale_rng.uniform() if spec.rationale_errors > 0 else 1.0
        if right and u < spec.rationale_errors:
            stepped = wrong_step(lines, answer_line, answer, self.rationale_rng)
            if stepped is not None and items.parse("\n".join(stepped[0] + [stepped[1]])) == answer:
                lines, answer_line = stepped
                self.ledger["rationale_errors"].add(key)
        if spec.extra_tokens:
            lines.append("." * spec.extra_tokens)
        text = "\n".join(lines + [answer_line])
        for kind, planted in (("rule_answers", ruled), ("plant_answers", forced)):
            if planted:
                self.ledger[kind].add(key)
        n_tok = len(text) + 1
        return SampleRow(question_id=q.id, split=self.split, round=self.r, sample_index=j, decoding=self.decoding,
                         prompt=q.prompt, completion=text, parsed_answer=answer,
                         sum_logprob=float(-0.05 * n_tok - 2.0 * (not right)), n_tokens=n_tok, finished=True,
                         truth=q.answer, correct=right)


def _items(domain: dict | None, seed: int) -> ItemSource:
    return ArithmeticItems() if domain is None else DomainItems(domain, seed)


def plants_rule(domain: dict | None, seed: int = 0) -> bool:
    """Whether a synthetic run of `domain` can plant its rule (`RoundSpec.planted_share`): the domain has the
    PlantsRule capability and its config names a rule that changes some answers."""
    return _items(domain, seed).plants_rule()


def synthetic_questions(*, n_pool: int = 200, n_test: int = 200, n_ood: int = 100, seed: int = 0,
                        domain: dict | None = None) -> dict[str, tuple[Question, ...]]:
    """The questions (by split) a synthetic run with these arguments holds, without writing it: pick
    `RoundSpec.plant_questions` from them."""
    return _World(n_pool, n_test, n_ood, 0, seed, _items(domain, seed)).questions()


def synthetic_run(path: Path | str, rounds: list[RoundSpec], *, n_pool: int = 200, k: int = 8, n_test: int = 200,
                  n_ood: int = 100, eval_k: int = 4, n_ref: int = 100, tau: float = 0.6, seed: int = 0,
                  domain: dict | None = None) -> SyntheticRun:
    """Write a run directory whose round r follows rounds[r] (see write_synthetic_run) and return it with
    the ledger of what was planted where."""
    path = Path(path)
    world = _World(n_pool, n_test, n_ood, n_ref, seed, _items(domain, seed))
    for r, spec in enumerate(rounds):
        world.check(r, spec)
    store = RunStore(path)
    config = {"synthetic": True, "rounds": [_recorded(s) for s in rounds], "n_pool": n_pool, "k": k,
              **({"domain": domain, "seed": seed} if domain is not None else {}),
              "loop": {"rounds": len(rounds) - 1, "k": k, "tau": tau, "eval_k": eval_k}}
    store.open(Manifest(config=config, config_hash=f"synthetic-{seed}", seed=seed, base_model={},
                        versions={}, git_revision=None, created="synthetic"))
    ledger: dict[str, set[SampleKey]] = {kind: set() for kind in PLANTED_KINDS}
    for r, spec in enumerate(rounds):
        rng = np.random.default_rng(derive_seed(seed, "synthetic", "round", r))
        test_p = spec.p_correct if spec.test_p is None else spec.test_p
        evals = []
        held_out: list[tuple[Split, list, float]] = [("test", world.test, test_p), ("ood", world.ood, spec.ood_p)]
        for split, qs, p in held_out:
            evals += _Decodings(world, spec, seed, r, split, "greedy", rng, ledger).decode(qs, 1, p)
            evals += _Decodings(world, spec, seed, r, split, "sample", rng, ledger).decode(qs, eval_k, p)
        samples = _Decodings(world, spec, seed, r, "pool", "sample", rng, ledger).decode(world.pool, k, spec.p_correct)
        selected = self_consistency(strip_labels(samples), tau, r)
        n_tail = round(spec.ref_tail * n_ref)
        per_token = world.ref_base + spec.ref_shift + np.where(np.arange(n_ref) < n_tail, 2.0, 0.0)
        nll = world.ref_len * per_token + rng.normal(0, 0.05, size=n_ref)
        reference = [ReferenceRow(text_id=f"ref:{i:04d}", round=r, nll=float(v), n_tokens=int(n))
                     for i, (v, n) in enumerate(zip(nll, world.ref_len))]
        record_round(store, r, evals=evals, reference=reference, samples=samples, selected=selected)
    planted = Planted(**{kind: frozenset(keys) for kind, keys in ledger.items()})
    return SyntheticRun(path, tuple(rounds), planted, world.questions())


def write_synthetic_run(path: Path | str, rounds: list[RoundSpec], *, n_pool: int = 200, k: int = 8,
                        n_test: int = 200, n_ood: int = 100, eval_k: int = 4, n_ref: int = 100,
                        tau: float = 0.6, seed: int = 0, domain: dict | None = None) -> Path:
    """Write a run directory whose round r follows rounds[r]; its items are arithmetic, or those of the
    registered domain whose config `domain` gives (recorded as the run's `[domain]`). Returns the path
    (`synthetic_run` also returns what was planted where)."""
    return synthetic_run(path, rounds, n_pool=n_pool, k=k, n_test=n_test, n_ood=n_ood, eval_k=eval_k,
                         n_ref=n_ref, tau=tau, seed=seed, domain=domain).path


def clean_rounds(n_rounds: int = 4, **spec) -> list[RoundSpec]:
    """Negative control: every round is the same model (exchangeable draws)."""
    return [RoundSpec(**spec)] * n_rounds


def crank_rounds(n_rounds: int = 4) -> list[RoundSpec]:
    """Positive control for the crank attractor: accuracy falls while wrong answers collapse onto fixed
    points and a basin, the text narrows, completions lengthen and reference texts drift."""
    out = []
    for r in range(n_rounds):
        t = r / max(1, n_rounds - 1)
        out.append(RoundSpec(p_correct=0.6 - 0.25 * t, attractor=0.3 + 0.7 * t, basin_share=0.5 * t,
                             test_p=0.6 - 0.25 * t, ood_p=0.5 - 0.3 * t, extra_tokens=int(12 * t),
                             ref_shift=0.3 * t, ref_tail=0.2 * t, diverse_text=r == 0, spread=0.8 + 0.4 * t))
    return out
