"""Registers the embedded `tiny` backend: a small Llama trained from scratch as each run's base (cached).

Importing this module imports no torch: the model code loads when a base model or checkpoint is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.models.tiny.config import TinyConfig
from harness.registry import register

if TYPE_CHECKING:
    from harness.domains.base import Domain, Splits
    from harness.models.base import ModelBackend
    from harness.progress import Reporter


@register("backend", "tiny", description="the embedded character-level Llama, base-trained per run (cached)")
class TinyBackend:
    """`harness.models.base.BackendPlugin` for `model.backend = "tiny"`."""

    config_class = TinyConfig

    @staticmethod
    def base_model(cfg: Any, domain: Domain, splits: Splits, key: str, cache_dir: Path | None,
                   reporter: Reporter) -> tuple[ModelBackend, dict[str, Any]]:
        """Trained from scratch on the domain's base-train split by `cfg.base`, or loaded from the cache."""
        from harness.models.tiny.pretrain import load_or_train_base
        from harness.seeding import derive_seed

        return load_or_train_base(domain, splits, cfg.model, cfg.base, derive_seed(cfg.seed, "base"), key,
                                  cache_dir, reporter)

    @staticmethod
    def load(directory: Path) -> ModelBackend:
        from harness.models.tiny.model import TinyModel

        return TinyModel.load(directory)
