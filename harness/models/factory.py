"""Which backend a run uses, chosen by `model.backend` in its config: the base model and checkpoints."""

from __future__ import annotations

from pathlib import Path

from harness.domains.base import Domain, Splits
from harness.progress import Reporter


def base_model(cfg, domain: Domain, splits: Splits, key: str, cache_dir: Path | None,
               reporter: Reporter) -> tuple[object, dict]:
    """Round 0's model and its record: the embedded model trained from scratch (cached), or a pretrained
    directory loaded as it is (`[base]` does not apply to it)."""
    from harness.seeding import derive_seed

    if cfg.model.backend == "hf":
        from harness.models.hf.model import HFModel

        model = HFModel.from_config(cfg.model, seed=derive_seed(cfg.seed, "base"), cache_dir=cache_dir)
        reporter.log(f"base model: {model.base_path} ({model.n_parameters:,} parameters)")
        return model, {"backend": "hf", "path": str(model.base_path), "n_parameters": model.n_parameters,
                       "n_trainable_parameters": model.n_trainable_parameters}
    from harness.models.tiny.pretrain import load_or_train_base

    return load_or_train_base(domain, splits, cfg.model, cfg.base, derive_seed(cfg.seed, "base"), key, cache_dir,
                              reporter)


def load_checkpoint(model_cfg, directory: Path):
    """A round's saved model, for resuming a run or restarting distillation from the base."""
    if model_cfg.backend == "hf":
        from harness.models.hf.model import HFModel

        return HFModel.load(directory)
    from harness.models.tiny.model import TinyModel

    return TinyModel.load(directory)
