"""The self-improvement loop, top to bottom.

Round 0 is the base model. Every round r:
  1. distill  (r > 0): fine-tune round r-1's model (or the base, distill_from = "base") on the training set
               built from the recorded selections by the data policy;
  2. evaluate: test and ood, greedy and sampled; score the reference texts;
  3. amplify:  the registered amplifier: k samples (or k IDA-composed traces) per pool question;
  4. select:   the registered selector (self-consistency, verifier, ...) -> selected.jsonl.
Each round's files are written atomically and `round.json` last, so a killed run resumes at the first
incomplete round with bit-identical results. One process writes a run at a time (harness.lock). A fine-tune
that fails (non-finite loss or weights, divergence) is recorded as the round's status (as is an empty training
set: status no_update), never hidden: the run stops there (RoundFailed), or keeps the previous weights (`on_failure = "continue"`).
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

import torch
import transformers

from harness import faults
from harness.artifacts import Manifest, ReferenceRow, RoundFailed, RunError, RunStore, SampleRow, SelectedRow
from harness.config import RunConfig, config_hash
from harness.domains.base import Domain, Question, Splits, make_domain
from harness.lock import write_lock
from harness.models.base import ModelBackend, PolicyGradientBackend, PolicySettings, TrainStats
from harness.models.factory import base_model, load_checkpoint
from harness.models.tiny import base_cache
from harness.models.training import epoch_steps
from harness.preflight import make_directory
from harness.progress import Reporter, SilentReporter
from harness.registry import lookup
from harness.seeding import derive_seed
from harness.strategies.distill import rollouts as distill_rollouts
from harness.strategies.distill import training_set
from harness.strategies.labeled import LabeledContext
from harness.strategies.rewards import reward_selection
from harness.strategies.select import LabelFreeDomain, SelectionContext, strip_labels
from harness.summary import record_round


def decode(model: ModelBackend, domain: Domain, questions: list[Question], split: Literal["pool", "test", "ood"],
           round: int, k: int, temperature: float, cfg: RunConfig, seed: int, reporter: Reporter, how: str = "sample",
           label: str | None = None) -> list[SampleRow]:
    """k decodings of each question (greedy when temperature is 0) by the amplifier `how`, parsed and checked
    (answers in the domain's canonical form)."""
    greedy = temperature == 0
    label = label or f"round {round}: {split} {'greedy' if greedy else f'x{k}'}"
    amplifier = lookup("amplifier", how).obj
    with reporter.task(label, len(questions) * k) as advance:
        outs = amplifier(model, domain, questions, k, temperature, seed, max_new_tokens=cfg.loop.max_new_tokens,
                         batch_size=cfg.loop.sample_batch_size, progress=advance)
    rows = []
    for q, completions in zip(questions, outs):
        for j, c in enumerate(completions):
            answer = domain.parse(c.text)
            rows.append(SampleRow(question_id=q.id, split=split, round=round, sample_index=j,
                                  decoding="greedy" if greedy else "sample", prompt=q.prompt,
                                  completion=c.text, parsed_answer=answer, sum_logprob=c.sum_logprob,
                                  n_tokens=c.n_tokens, finished=c.finished, truth=q.answer,
                                  correct=domain.check(q, answer)))
    return rows


def select(cfg: RunConfig, model: ModelBackend, domain: Domain, splits: Splits, samples: list[SampleRow], r: int,
           reporter: Reporter) -> list[SelectedRow]:
    """Round r's training data for round r+1, by the registered selector; under policy-gradient distillation,
    every sample with its registered reward and advantage. A selector or reward that does not read labels
    gets the samples through strip_labels and the domain through LabelFreeDomain: it cannot reach the truth."""
    loop = cfg.loop
    pg = loop.distill == "policy_gradient"
    entry = lookup("reward", loop.reward) if pg else lookup("selector", loop.select)
    args = loop.reward_settings() if pg else loop.selector_args()
    seed = derive_seed(cfg.seed, entry.metadata["seed_label"], r)
    if not entry.metadata["uses_labels"]:
        out = entry.obj(strip_labels(samples), SelectionContext(
            round=r, loop=loop, args=args, model=model, domain=LabelFreeDomain(domain), seed=seed, reporter=reporter))
    else:
        def resample(questions: list[Question], label: str, seed: int) -> list[SampleRow]:
            return decode(model, domain, questions, "pool", r, loop.k, loop.temperature, cfg, seed, reporter,
                          label=label)

        out = entry.obj(samples, LabeledContext(round=r, loop=loop, args=args, model=model, domain=domain,
                                                pool=splits.pool, decode=resample, seed=seed, reporter=reporter))
    return reward_selection(samples, out, r) if pg else out


def distill(cfg: RunConfig, store: RunStore, model: ModelBackend, domain: Domain, splits: Splits, r: int,
            reporter: Reporter, record: Callable[[float], bool]) -> tuple[TrainStats, int, dict[str, int]]:
    """Fine-tune `model` into round r's: on the data policy's pairs (sft), or by a policy-gradient update on
    round r-1's rewarded samples. `record(loss)` sees each step's loss (True stops training). Returns the
    stats, the examples trained on, and how many of each kind."""
    loop, seed = cfg.loop, derive_seed(cfg.seed, "distill", r)
    pg = loop.distill == "policy_gradient"
    data, kinds = (distill_rollouts(store, r - 1, loop) if pg else
                   training_set(store, r - 1, loop, domain, splits, derive_seed(cfg.seed, "mix", r)))
    steps = loop.steps if loop.steps and data else epoch_steps(len(data), loop.epochs, loop.batch_size)
    with reporter.task(f"round {r}: {'policy update' if pg else 'fine-tune'} ({len(data)})", steps) as advance:
        def on_step(step: int, loss: float) -> bool:
            advance(1)
            return record(loss)

        if not pg:
            stats = model.finetune(cast(list, data), lr=loop.lr, epochs=loop.epochs, steps=loop.steps,
                                   batch_size=loop.batch_size, seed=seed, on_step=on_step)
            return stats, len(data), kinds
        reference = load_checkpoint(cfg.model, store.verified_model(0)) if loop.kl_beta > 0 else None
        settings = PolicySettings(beta=loop.kl_beta, epsilon=loop.clip_epsilon, loss_type=loop.pg_loss,
                                  temperature=loop.temperature)
        stats = cast(PolicyGradientBackend, model).policy_update(
            cast(list, data), settings, lr=loop.lr, epochs=loop.epochs, steps=loop.steps,
            batch_size=loop.batch_size, seed=seed, reference=reference, on_step=on_step)
        return stats, len(data), kinds


def model_problem(cfg: RunConfig, model: ModelBackend) -> str | None:
    """Why this run's strategy cannot use this model (a method it lacks), or None."""
    if cfg.loop.distill != "policy_gradient":
        return None
    needs = ("policy_update", *lookup("reward", cfg.loop.reward).metadata["needs"])
    missing = [name for name in needs if not callable(getattr(model, name, None))]
    return (f"loop.distill = \"policy_gradient\" with reward {cfg.loop.reward!r} needs a model with "
            f"{', '.join(missing)}; backend {cfg.model.backend!r} has none") if missing else None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("loopprobe", "torch", "transformers", "numpy", "pydantic", "safetensors"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _git_revision() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


# A fine-tune whose loss over its last steps is this many times its first step's, and at least
# DIVERGENCE_NATS above it, has diverged (the margin keeps batch-to-batch noise of near-zero losses out).
DIVERGENCE_FACTOR, DIVERGENCE_NATS = 3.0, 1.0


def _finite_weights(model: ModelBackend) -> bool:
    module = getattr(model, "model", None)
    return module is None or all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _training_failure(model: ModelBackend, losses: list[float], stats) -> str | None:
    """Why a fine-tune failed, or None."""
    bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad is not None:
        return f"non-finite training loss ({losses[bad]}) at step {bad + 1}"
    if not _finite_weights(model):
        return "non-finite weights after fine-tuning"
    if len(losses) >= 2 and stats.final_loss > max(DIVERGENCE_FACTOR * losses[0], losses[0] + DIVERGENCE_NATS):
        return (f"the fine-tune diverged: loss over its last steps {stats.final_loss:.3g} > {DIVERGENCE_FACTOR:g} x "
                f"its first step's {losses[0]:.3g}")
    return None


def base_key(cfg: RunConfig) -> str:
    return base_cache.base_key(cfg.domain, cfg.model, cfg.base, cfg.seed)


def run_loop(cfg: RunConfig, out: Path, cache_dir: Path | None, reporter: Reporter | None = None) -> RunStore:
    """Run (or resume) the loop into `out`. Raises RoundFailed when a round's fine-tune fails and
    `on_failure` is "stop"; RunError for anything the user can fix."""
    out = make_directory(out, "run directory")
    with write_lock(out):
        return _run_locked(cfg, out, cache_dir, reporter or SilentReporter())


def _run_locked(cfg: RunConfig, out: Path, cache_dir: Path | None, reporter: Reporter) -> RunStore:
    transformers.utils.logging.disable_progress_bar()  # checkpoint writes are ours to report
    torch.set_num_threads(cfg.threads)
    store = RunStore(out)
    domain = make_domain(cfg.domain, seed=derive_seed(cfg.seed, "domain"))
    splits: Splits = domain.splits()

    model, base_info = base_model(cfg, domain, splits, base_key(cfg), cache_dir, reporter)
    if (problem := model_problem(cfg, model)) is not None:
        raise RunError(problem)
    manifest = Manifest(config=cfg.model_dump(mode="json"), config_hash=config_hash(cfg), seed=cfg.seed,
                        base_model=base_info,
                        versions=_versions(), git_revision=_git_revision(),
                        created=datetime.now(UTC).isoformat(timespec="seconds"))
    done = store.open(manifest)
    failed = store.failed_round()
    if failed is not None:  # deterministic: running it again would fail the same way
        raise RoundFailed(f"{store.round_dir(failed.round)}: round {failed.round} failed ({failed.reason}); rounds "
                          f"before it are intact; change the configuration, or delete that directory to retry it")
    if done:  # what the resumed run extends must be what was recorded: every file, checkpoints included
        store.verify_all()
        reporter.log(f"resuming {out}: rounds {done[0]}..{done[-1]} complete")
        model = load_checkpoint(cfg.model, store.verified_model(done[-1]))

    for r in range(len(done), cfg.loop.rounds + 1):
        seconds: dict[str, float] = {}
        training, status, reason = None, "complete", None
        t0 = time.perf_counter()
        if r > 0:  # distill
            if cfg.loop.distill_from == "base":  # STaR and ReST-EM restart from the base every round
                model = load_checkpoint(cfg.model, store.verified_model(0))
            losses: list[float] = []

            def record(loss: float, losses: list[float] = losses) -> bool:
                faults.reached("step")
                losses.append(loss)
                return not math.isfinite(loss)  # stop at once: nothing after a NaN step is meaningful

            stats, examples, kinds = distill(cfg, store, model, domain, splits, r, reporter, record)
            training = {"examples": examples, **{f"examples_{k}": v for k, v in kinds.items()},
                        "steps": stats.steps, "trained_tokens": stats.tokens,
                        "mean_loss": _finite(stats.mean_loss), "final_loss": _finite(stats.final_loss)}
            if not examples:  # a loop that stalls: said in round.json, not a failure
                status, reason = "no_update", f"empty training set: round {r - 1} selected nothing to train on"
            elif (reason := _training_failure(model, losses, stats)) is not None:
                seconds["distill"] = time.perf_counter() - t0
                if cfg.loop.on_failure == "stop":  # recorded, then the run ends here (exit 1)
                    store.fail_round(r, reason, training, seconds)
                reporter.log(f"[yellow]round {r}: {reason}; the update is rejected, round {r - 1}'s weights kept[/]")
                model = load_checkpoint(cfg.model, store.verified_model(r - 1))
                status = "rejected"
        seconds["distill"] = time.perf_counter() - t0
        store.write_model(r, model.save)

        t0 = time.perf_counter()  # evaluate
        evals = []
        split: Literal["test", "ood"]
        for split, questions in (("test", splits.test), ("ood", splits.ood)):
            evals += decode(model, domain, questions, split, r, 1, 0.0, cfg, 0, reporter)
            evals += decode(model, domain, questions, split, r, cfg.loop.eval_k, cfg.loop.temperature, cfg,
                            derive_seed(cfg.seed, "eval", split, r), reporter)
        scores = model.score([c for _, c, _ in splits.reference], [t for _, _, t in splits.reference])
        reference = [ReferenceRow(text_id=tid, round=r, nll=-lp, n_tokens=n)
                     for (tid, _, _), (lp, n) in zip(splits.reference, scores)]
        for spec in cfg.inspect:  # inspect-ai tasks against this round's live model; logs in round-NNN/inspect/
            from harness.inspect_bridge.run import INSPECT_DIR, run_inspect_task

            args = {k: v.replace("{run_dir}", str(out)) if isinstance(v, str) else v for k, v in spec.args.items()}
            with reporter.task(f"round {r}: inspect {spec.task.partition(':')[2]}", 1) as advance:
                run_inspect_task(spec.task, model, r, store.round_dir(r) / INSPECT_DIR,
                                 derive_seed(cfg.seed, "inspect", spec.task, r), task_args=args)
                advance(1)
        seconds["evaluate"] = time.perf_counter() - t0

        t0 = time.perf_counter()  # amplify
        samples = decode(model, domain, splits.pool, "pool", r, cfg.loop.k, cfg.loop.temperature, cfg,
                         derive_seed(cfg.seed, "amplify", r), reporter, how=cfg.loop.amplify)
        seconds["amplify"] = time.perf_counter() - t0

        t0 = time.perf_counter()  # select
        selected = select(cfg, model, domain, splits, samples, r, reporter)
        seconds["select"] = time.perf_counter() - t0

        record_round(store, r, evals=evals, reference=reference, samples=samples, selected=selected,
                     training=training, seconds=seconds, status=status, reason=reason)
    return store
