"""Train the embedded base model from scratch on base-train, or load it from the cache.

The cache is keyed by a hash of everything that decides the weights (domain, architecture, base training,
seed, code version), so a second run with the same conditions skips training. An entry records the sha256
of its files; a damaged entry is said and trained again. A writer killed mid-write leaves a
`.KEY.tmp-PID` directory that the next writer of the cache removes.

The default configuration's base ships with the package (`shipped/KEY/`, written by
`python -m harness.app.ship_base`): a fresh machine's default run loads it instead of training, and gets the
very weights this project's machine trained, whatever its CPU's floats would have made.
"""

from __future__ import annotations

import fcntl
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
from harness.models.tiny.base_cache import SHIPPED_DIR, shipped_base_enabled
from harness.models.tiny.model import TinyConfig, TinyModel
from harness.models.training import Schedule
from harness.progress import Reporter, SilentReporter


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
    if path is None:
        return _load_or_train(domain, splits, model_cfg, base_cfg, seed, key, None, reporter)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(path.parent / f".{key}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # an unwritable cache: no turn-taking, nothing is written either
        return _load_or_train(domain, splits, model_cfg, base_cfg, seed, key, path, reporter)
    try:  # runs in parallel that need the same base take turns: the first trains it, the others load it
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _load_or_train(domain, splits, model_cfg, base_cfg, seed, key, path, reporter)
    finally:
        os.close(lock)  # releases the lock


def write_entry(model: TinyModel, info: dict[str, Any], path: Path, leave_out: tuple[str, ...] = ()) -> None:
    """Write `model` and `info` as the entry `path` (of the cache, or the shipped one): into `.KEY.tmp-PID`
    beside it, every file hashed into base.json, then renamed over whatever `path` held. An OSError leaves no
    temporary behind (a killed writer's is removed by the next one)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(tmp)
        for name in leave_out:
            (tmp / name).unlink(missing_ok=True)
        share_permissions(tmp)
        (tmp / "base.json").write_text(json.dumps({**info, "files": tree_hashes(tmp)}, indent=2))
        faults.reached("cache")
        if path.exists():  # a damaged entry (or another process's, identical): ours replaces it
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_entry(path: Path, reporter: Reporter, where: str) -> tuple[TinyModel, dict, float] | None:
    """(model, its base.json, seconds to load) of an intact entry; None (said) when it is damaged."""
    t0 = time.perf_counter()
    info = _cached(path, reporter)
    if info is None:
        return None
    model = TinyModel.load(path)
    reporter.log(f"base model: {where} (val accuracy {info['val_accuracy']:.1%})")
    return model, info, time.perf_counter() - t0


def _load_or_train(domain: Domain, splits: Splits, model_cfg: TinyConfig, base_cfg, seed: int, key: str,
                   path: Path | None, reporter: Reporter) -> tuple[TinyModel, dict]:
    if path is not None and path.parent.is_dir():
        _remove_stale_temps(path.parent)
    cached = _load_entry(path, reporter, f"cached {path}") if path and (path / "base.json").exists() else None
    if cached is not None:
        model, info, seconds = cached
        return model, {**info, "key": key, "cached": True, "load_seconds": seconds}
    shipped = SHIPPED_DIR / key
    loaded = (_load_entry(shipped, reporter, "shipped with loopprobe")
              if (shipped / "base.json").exists() and shipped_base_enabled() else None)
    if loaded is not None:
        model, info, seconds = loaded
        return model, {**info, "key": key, "cached": True, "shipped": True, "load_seconds": seconds}
    model, info = train_base(domain, splits, model_cfg, base_cfg, seed, reporter)
    if path is not None:
        try:
            write_entry(model, info, path)
        except OSError as e:  # the cache is an optimisation: a run never fails for it
            reporter.log(f"[yellow]base-model cache {path.parent}: not written ({e.strerror or e})[/]")
    return model, {**info, "key": key, "cached": False}
