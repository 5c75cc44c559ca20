"""A run's domain and items, rebuilt from its manifest exactly as the loop builds them."""

from __future__ import annotations

import json
from pathlib import Path

from harness.artifacts import RunError
from harness.domains.base import Question
from harness.seeding import derive_seed

SPLITS = ("pool", "test", "ood", "base_val")


def build_domain(domain_config: dict, run_seed: int):
    """The domain of a run whose manifest holds this `config["domain"]` and seed (as harness/loop.py makes it:
    `make_domain(cfg.domain, seed=derive_seed(cfg.seed, "domain"))`)."""
    from pydantic import TypeAdapter, ValidationError

    from harness.config import DomainConfig
    from harness.domains import make_domain

    try:
        config = TypeAdapter(DomainConfig).validate_python({"name": "arithmetic", **domain_config})
    except ValidationError as e:
        raise RunError(f"inspect task: the run's domain config is not valid ({str(e).splitlines()[0]})") from None
    return make_domain(config, seed=derive_seed(run_seed, "domain"))


def run_items(run_dir: str | Path, split: str):
    """(domain, questions of `split`) of the run recorded in `run_dir`."""
    if split not in SPLITS:
        raise RunError(f"inspect task: split {split!r}: choose one of {', '.join(SPLITS)}")
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise RunError(f"inspect task: {path}: no manifest; pass run_dir of a loopprobe run")
    manifest = json.loads(path.read_text())
    domain = build_domain(manifest["config"]["domain"], manifest["seed"])
    questions: list[Question] = getattr(domain.splits(), split)
    return domain, questions
