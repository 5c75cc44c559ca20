"""Regenerate the base model that ships with loopprobe:

    python -m harness.app.ship_base

trains the default configuration's base from scratch, exactly as a run with no cache would (one torch thread),
and writes it to `harness/models/tiny/shipped/KEY/`, KEY being the cache key the default configuration names
(`harness.loop.base_key`), replacing any other entry there. Run it after a change that alters the default base
(a new `CACHE_VERSION`, a new default in the domain, model or base settings) and commit the result;
`tests/test_shipped_base.py` fails until the shipped entry is the one the default key names.

Why ship weights rather than train them: base training is most of a fresh default run's time, and a CPU of
another kind trains other floats; the shipped weights make every machine's default run start from the same base.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import torch
from rich.console import Console

from harness.config import RunConfig
from harness.domains.base import make_domain
from harness.loop import base_key
from harness.models.tiny.base_cache import CACHE_VERSION, SHIPPED_DIR
from harness.models.tiny.pretrain import train_base, write_entry
from harness.progress import RichReporter
from harness.seeding import derive_seed


def _cpu() -> str:
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def ship(cfg: RunConfig, directory: Path = SHIPPED_DIR) -> Path:
    """Train `cfg`'s base and write it to directory/KEY as the only entry; returns that path."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(cfg.threads)
    domain = make_domain(cfg.domain, seed=derive_seed(cfg.seed, "domain"))
    model, info = train_base(domain, domain.splits(), cfg.model, cfg.base, derive_seed(cfg.seed, "base"),
                             RichReporter(Console(stderr=True)))
    key = base_key(cfg)
    made = {"cache_version": CACHE_VERSION, "seed": cfg.seed, "domain": cfg.domain.model_dump(mode="json"),
            "model": cfg.model.model_dump(mode="json"), "base": cfg.base.model_dump(mode="json"),
            "trained_on": f"{_cpu()}, torch {torch.__version__}, {cfg.threads} thread(s)"}
    # generation_config.json: transformers' defaults, nothing of ours
    write_entry(model, {**info, "shipped_config": made}, directory / key, leave_out=("generation_config.json",))
    for old in directory.iterdir():
        if old.is_dir() and old.name != key:
            shutil.rmtree(old)
    return directory / key


if __name__ == "__main__":
    path = ship(RunConfig())
    print(f"wrote {path} ({sum(f.stat().st_size for f in path.iterdir()) / 1e6:.1f} MB); commit it")
