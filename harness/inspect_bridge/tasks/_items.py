"""A run's domain and items, rebuilt from its manifest exactly as the loop builds them."""

from __future__ import annotations

import json
from pathlib import Path

from harness.artifacts import RunError
from harness.domains.base import Question

SPLITS = ("pool", "test", "ood", "base_val")


def build_domain(domain_config: dict, run_seed: int):
    """The domain of a run whose manifest holds this `config["domain"]` and seed, as the loop built it."""
    from pydantic import ValidationError

    from harness.domains.base import recorded_domain
    from harness.registry import RegistryError

    try:
        return recorded_domain({"domain": domain_config}, run_seed)
    except (ValidationError, RegistryError) as e:
        raise RunError(f"inspect task: the run's domain config is not valid ({str(e).splitlines()[0]})") from None


def fresh_items(name: str, settings: dict, seed: int, n: int):
    """(domain, its first n test questions) of a registered domain built from `settings` (its config keys)."""
    from pydantic import ValidationError

    from harness.registry import RegistryError, lookup

    try:
        cls = lookup("domain", name).obj
        sized = {"test_size": n} if "test_size" in cls.config_class.model_fields else {}
        world = cls(cls.config_class(**{"name": name, **sized, **settings}), seed=seed)
    except (ValidationError, RegistryError) as e:
        raise RunError(f"inspect task: domain {name!r}: {str(e).splitlines()[0]}") from None
    return world, world.splits().test[:n]


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
