"""Train the embedded base model from scratch on base-train, or load it from the cache.

The cache is keyed by a hash of everything that decides the weights (domain, architecture, base training,
seed, code version), so a second run with the same conditions skips training.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from harness.domains.base import Domain, Question, Splits
from harness.models.tiny import training
from harness.models.tiny.model import TinyConfig, TinyModel
from harness.progress import Reporter, SilentReporter

CACHE_VERSION = 1  # bump when a code change alters what base training produces


def default_cache_dir() -> Path:
    env = os.environ.get("LOOPPROBE_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "loopprobe"
    return base / "base-models"


def greedy_accuracy(model: TinyModel, domain: Domain, questions: list[Question], max_new_tokens: int = 40) -> float:
    outs = model.sample([q.prompt for q in questions], k=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    return sum(domain.check(q, domain.parse(o[0].text)) for q, o in zip(questions, outs)) / max(1, len(questions))


def train_base(domain: Domain, splits: Splits, model_cfg: TinyConfig, base_cfg, seed: int,
               reporter: Reporter) -> tuple[TinyModel, dict[str, Any]]:
    model = TinyModel.initialise(model_cfg, seed)
    pairs = [(e.question.prompt, e.completion) for e in splits.base_train]
    schedule = training.Schedule(lr=base_cfg.lr, steps=base_cfg.steps, warmup=base_cfg.warmup,
                                 kind=base_cfg.schedule)
    curve: list[tuple[int, float]] = []
    with reporter.task("base training", base_cfg.steps) as advance:
        def on_step(step: int, loss: float) -> bool:
            advance(1)
            if base_cfg.target_accuracy is None or (step + 1) % base_cfg.eval_every:
                return False
            curve.append((step + 1, greedy_accuracy(model, domain, splits.base_val)))
            return curve[-1][1] >= base_cfg.target_accuracy

        stats = training.train(model.model, model.tokenizer, pairs, schedule, base_cfg.batch_size, seed,
                               on_step=on_step)
    info = {"steps": stats.steps, "trained_tokens": stats.tokens, "final_loss": stats.final_loss,
            "train_seconds": stats.seconds, "val_accuracy": greedy_accuracy(model, domain, splits.base_val),
            "val_curve": curve, "n_parameters": model.n_parameters}
    return model, info


def load_or_train_base(domain: Domain, splits: Splits, model_cfg: TinyConfig, base_cfg, seed: int, key: str,
                       cache_dir: Path | None, reporter: Reporter | None = None) -> tuple[TinyModel, dict]:
    """The base model for these conditions, from `cache_dir/key` if present. cache_dir None: no cache."""
    reporter = reporter or SilentReporter()
    path = Path(cache_dir) / key if cache_dir is not None else None
    if path is not None and (path / "base.json").exists():
        t0 = time.perf_counter()
        model = TinyModel.load(path)
        info = json.loads((path / "base.json").read_text())
        reporter.log(f"base model: cached {path} (val accuracy {info['val_accuracy']:.1%})")
        return model, {**info, "key": key, "cached": True, "load_seconds": time.perf_counter() - t0}
    model, info = train_base(domain, splits, model_cfg, base_cfg, seed, reporter)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(tmp)
        (tmp / "base.json").write_text(json.dumps(info, indent=2))
        try:
            os.replace(tmp, path)
        except OSError:  # another process cached the same key first: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return model, {**info, "key": key, "cached": False}
