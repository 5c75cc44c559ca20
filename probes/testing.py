"""Synthetic runs with planted effects, for probe controls (positive: the effect is planted and the probe
must fire; negative: rounds are exchangeable draws and the probe must stay quiet).

`write_synthetic_run(path, [RoundSpec(...), ...])` writes a real run directory (manifest, per-round
samples, eval, reference, selected and round.json) in the loop's own schema, from per-round knobs.
Questions keep fixed latent difficulties across rounds, so rounds pair item by item, as real runs do.

The items are arithmetic by default; `domain=` takes any registered domain's config (e.g.
`{"name": "sorting"}`): its own questions, gold rationales and canonical answers, with wrong answers made
as strings that no right answer equals (its `distractor` for the fixed wrong answer when it has one), so a
new domain gets the same positive and negative probe controls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from harness.artifacts import Manifest, ReferenceRow, RunStore, SampleRow
from harness.domains.arithmetic import add_rationale, make_question, sub_rationale
from harness.domains.base import Distractors, Question, recorded_domain
from harness.seeding import derive_seed
from harness.strategies.select import self_consistency, strip_labels
from harness.summary import record_round


@dataclass(frozen=True)
class RoundSpec:
    """What one round's model does. Defaults describe a middling, stable model."""

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


BASIN_ANSWER = 1000


def _questions(skill: Literal["add", "sub"], n: int, rng: np.random.Generator) -> list[Question]:
    seen: set[tuple[int, int]] = set()
    out: list[Question] = []
    while len(out) < n:
        a, b = (int(x) for x in rng.integers(10, 1000, size=2))
        if skill == "sub" and a < b:
            a, b = b, a
        if (a, b) not in seen:
            seen.add((a, b))
            out.append(make_question(skill, a, b))
    return out


class _ArithmeticItems:
    """The default items: addition (trained skill) and subtraction (ood) questions with column rationales."""

    basin = str(BASIN_ANSWER)

    def questions(self, n_train: int, n_ood: int, rng: np.random.Generator) -> tuple[list, list]:
        return _questions("add", n_train, rng), _questions("sub", n_ood, rng)

    def near_wrong(self, q: Question, rng: np.random.Generator) -> str:
        return str(int(q.answer) + int(rng.choice([-1, 1])) * int(rng.integers(1, 30)))

    def far_wrong(self, q: Question, rng: np.random.Generator) -> str:
        return str(int(q.answer) + int(rng.integers(31, 400)))

    def rationale_lines(self, q: Question) -> list[str]:
        a, b = (int(x) for x in q.id.split(":")[1].replace("-", "+").split("+"))
        return (add_rationale(a, b) if q.skill == "add" else sub_rationale(a, b)).split("\n")[:-1]

    def answer_line(self, q: Question, answer: str) -> str:
        return f"A: {answer}"


class _DomainItems:
    """Any registered domain's items: its pool and test questions (trained skill) and ood ones, its gold
    rationales; a wrong answer replaces the truth in the rationale's last line."""

    basin = "<basin>"

    def __init__(self, domain_config: dict, seed: int):
        self.domain = recorded_domain({"domain": domain_config}, seed)

    def questions(self, n_train: int, n_ood: int, rng: np.random.Generator) -> tuple[list, list]:
        splits = self.domain.splits()
        train, ood = (splits.pool + splits.test)[:n_train], splits.ood[:n_ood]
        if len(train) < n_train or len(ood) < n_ood:
            raise ValueError(f"domain {self.domain.name!r} has {len(train)} pool+test and {len(ood)} ood items; "
                             f"the synthetic run asks for {n_train} and {n_ood}")
        return train, ood

    def near_wrong(self, q: Question, rng: np.random.Generator) -> str:
        offset = int(rng.choice([-1, 1])) * int(rng.integers(1, 30))
        if isinstance(self.domain, Distractors):
            wrong = self.domain.distractor(q, abs(offset))
            if wrong != q.answer:
                return wrong
        return f"{q.answer}~{offset}"

    def far_wrong(self, q: Question, rng: np.random.Generator) -> str:
        return f"{q.answer}#{int(rng.integers(31, 400))}"

    def rationale_lines(self, q: Question) -> list[str]:
        return self.domain.reference_rationale(q).split("\n")[:-1]

    def answer_line(self, q: Question, answer: str) -> str:
        last = self.domain.reference_rationale(q).split("\n")[-1]
        head, found, tail = last.rpartition(q.answer)
        return f"{head}{answer}{tail}" if found else f"{last} {answer}"


class _World:
    def __init__(self, n_pool: int, n_test: int, n_ood: int, n_ref: int, seed: int, items):
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

    def p(self, q, mean: float, spread: float) -> float:
        return float(np.clip(mean + spread * self.difficulty[q.id], 0.0, 1.0))

    def fixed_wrong(self, q, spec: RoundSpec) -> str:
        return self.items.basin if self.basin_u[q.id] < spec.basin_share else self.wrong[q.id]


def _completion(world: _World, q, answer: str, spec: RoundSpec, rng: np.random.Generator, diffuse: bool) -> str:
    lines = world.items.rationale_lines(q)
    if diffuse and spec.diverse_text and lines:
        i = int(rng.integers(len(lines)))
        lines[i] = lines[i][:-1] + str(int(rng.integers(10)))
    if spec.extra_tokens:
        lines.append("." * spec.extra_tokens)
    return "\n".join(lines + [world.items.answer_line(q, answer)])


def _decode(world: _World, questions, split: Literal["pool", "test", "ood"], r: int, k: int, p_mean: float, spec: RoundSpec,
            rng: np.random.Generator, greedy: bool) -> list[SampleRow]:
    rows = []
    for q in questions:
        p = world.p(q, p_mean, spec.spread)
        for j in range(k):
            right = world.greedy_u[q.id] < p if greedy else rng.uniform() < p
            diffuse = False
            if right:
                answer = q.answer
            elif q.id in world.trained and rng.uniform() < spec.attractor:
                answer = world.fixed_wrong(q, spec)
            else:
                answer, diffuse = world.items.far_wrong(q, rng), True
            text = _completion(world, q, answer, spec, rng, diffuse)
            n_tok = len(text) + 1
            rows.append(SampleRow(question_id=q.id, split=split, round=r, sample_index=j,
                                  decoding="greedy" if greedy else "sample", prompt=q.prompt, completion=text,
                                  parsed_answer=answer, sum_logprob=float(-0.05 * n_tok - 2.0 * (not right)),
                                  n_tokens=n_tok, finished=True, truth=q.answer, correct=right))
    return rows


def write_synthetic_run(path: Path | str, rounds: list[RoundSpec], *, n_pool: int = 200, k: int = 8,
                        n_test: int = 200, n_ood: int = 100, eval_k: int = 4, n_ref: int = 100,
                        tau: float = 0.6, seed: int = 0, domain: dict | None = None) -> Path:
    """Write a run directory whose round r follows rounds[r]; its items are arithmetic, or those of the
    registered domain whose config `domain` gives (recorded as the run's `[domain]`). Returns the path."""
    path = Path(path)
    items = _ArithmeticItems() if domain is None else _DomainItems(domain, seed)
    world = _World(n_pool, n_test, n_ood, n_ref, seed, items)
    store = RunStore(path)
    config = {"synthetic": True, "rounds": [asdict(s) for s in rounds], "n_pool": n_pool, "k": k,
              **({"domain": domain, "seed": seed} if domain is not None else {}),
              "loop": {"rounds": len(rounds) - 1, "k": k, "tau": tau, "eval_k": eval_k}}
    store.open(Manifest(config=config, config_hash=f"synthetic-{seed}", seed=seed, base_model={},
                        versions={}, git_revision=None, created="synthetic"))
    for r, spec in enumerate(rounds):
        rng = np.random.default_rng(derive_seed(seed, "synthetic", "round", r))
        test_p = spec.p_correct if spec.test_p is None else spec.test_p
        evals = []
        held_out: list[tuple[Literal["test", "ood"], list, float]] = [("test", world.test, test_p),
                                                                       ("ood", world.ood, spec.ood_p)]
        for split, qs, p in held_out:
            evals += _decode(world, qs, split, r, 1, p, spec, rng, greedy=True)
            evals += _decode(world, qs, split, r, eval_k, p, spec, rng, greedy=False)
        samples = _decode(world, world.pool, "pool", r, k, spec.p_correct, spec, rng, greedy=False)
        selected = self_consistency(strip_labels(samples), tau, r)
        n_tail = round(spec.ref_tail * n_ref)
        per_token = world.ref_base + spec.ref_shift + np.where(np.arange(n_ref) < n_tail, 2.0, 0.0)
        nll = world.ref_len * per_token + rng.normal(0, 0.05, size=n_ref)
        reference = [ReferenceRow(text_id=f"ref:{i:04d}", round=r, nll=float(v), n_tokens=int(n))
                     for i, (v, n) in enumerate(zip(nll, world.ref_len))]
        record_round(store, r, evals=evals, reference=reference, samples=samples, selected=selected)
    return path


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


def reseal_round(path: Path | str, r: int) -> None:
    """Record round r's files again after a test edited them on purpose (reads are checked against the
    hashes round.json records, so an edit that is not resealed is reported as damage)."""
    store = RunStore(Path(path))
    record = store.read_round(r)
    store.finish_round(record.model_copy(update={"files": store.round_files(r)}))
