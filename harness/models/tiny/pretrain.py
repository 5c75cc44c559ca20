"""Train the embedded base model from scratch on base-train, or load it from the cache.

The cache is keyed by a hash of everything that decides the weights (domain, architecture, base training,
seed, code version), so a second run with the same conditions skips training. An entry records the sha256
of its files; a damaged entry is said and trained again. A writer killed mid-write leaves a
`.KEY.tmp-PID` directory that the next writer of the cache removes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from harness import faults
from harness.artifacts import share_permissions
from harness.domains.base import Domain, Question, Splits
from harness.integrity import file_hash, tree_hashes
from harness.models.tiny import training as tiny_training
from harness.models.tiny.model import TinyConfig, TinyModel
from harness.models.training import Schedule
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
    schedule = Schedule(lr=base_cfg.lr, steps=base_cfg.steps, warmup=base_cfg.warmup,
                        kind=base_cfg.schedule)
    curve: list[tuple[int, float]] = []
    with reporter.task("base training", base_cfg.steps) as advance:
        def on_step(step: int, loss: float) -> bool:
            advance(1)
            faults.reached("step")
            if base_cfg.target_accuracy is None or (step + 1) % base_cfg.eval_every:
                return False
            curve.append((step + 1, greedy_accuracy(model, domain, splits.base_val)))
            return curve[-1][1] >= base_cfg.target_accuracy

        stats = tiny_training.train(model.model, model.tokenizer, pairs, schedule, base_cfg.batch_size, seed,
                                    on_step=on_step)
    info = {"steps": stats.steps, "trained_tokens": stats.tokens, "final_loss": stats.final_loss,
            "train_seconds": stats.seconds, "val_accuracy": greedy_accuracy(model, domain, splits.base_val),
            "val_curve": curve, "n_parameters": model.n_parameters}
    return model, info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(cache: Path) -> None:
    """Temporary entries of writers that died (`.KEY.tmp-PID`, PID gone)."""
    for tmp in cache.glob(".*.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _cached(path: Path, reporter: Reporter) -> dict | None:
    """The entry's base.json if every file it records is intact; None (said) when it is damaged."""
    try:
        info = json.loads((path / "base.json").read_text())
        files = info.pop("files")
        damaged = [n for n, h in files.items() if not (path / n).is_file() or file_hash(path / n) != h]
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        damaged = ["base.json"]
    if damaged:
        reporter.log(f"[yellow]base-model cache {path}: {damaged[0]} is damaged (sha256 differs from base.json); "
                     "training the base again[/]")
        return None
    return info


def load_or_train_base(domain: Domain, splits: Splits, model_cfg: TinyConfig, base_cfg, seed: int, key: str,
                       cache_dir: Path | None, reporter: Reporter | None = None) -> tuple[TinyModel, dict]:
    """The base model for these conditions, from `cache_dir/key` if present. cache_dir None: no cache."""
    reporter = reporter or SilentReporter()
    path = Path(cache_dir) / key if cache_dir is not None else None
    if path is not None and path.parent.is_dir():
        _remove_stale_temps(path.parent)
    if path is not None and (path / "base.json").exists():
        t0 = time.perf_counter()
        info = _cached(path, reporter)
        if info is not None:
            model = TinyModel.load(path)
            reporter.log(f"base model: cached {path} (val accuracy {info['val_accuracy']:.1%})")
            return model, {**info, "key": key, "cached": True, "load_seconds": time.perf_counter() - t0}
    model, info = train_base(domain, splits, model_cfg, base_cfg, seed, reporter)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{key}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            model.save(tmp)
            share_permissions(tmp)
            (tmp / "base.json").write_text(json.dumps({**info, "files": tree_hashes(tmp)}, indent=2))
            faults.reached("cache")
            if path.exists():  # a damaged entry (or another process's, identical): ours replaces it
                shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
        except OSError as e:  # the cache is an optimisation: a run never fails for it
            reporter.log(f"[yellow]base-model cache {path.parent}: not written ({e.strerror or e})[/]")
            shutil.rmtree(path.with_name(f".{key}.tmp-{os.getpid()}"), ignore_errors=True)
    return model, {**info, "key": key, "cached": False}
