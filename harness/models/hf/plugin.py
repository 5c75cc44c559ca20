"""Registers the `hf` backend: any local transformers causal-LM directory (or a packaged GGUF), used as it is.

Importing this module imports neither torch nor transformers: harness.models.hf.model loads when a base
model or checkpoint is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.models.hf.config import HFConfig
from harness.registry import register

if TYPE_CHECKING:
    from harness.domains.base import Domain, Splits
    from harness.models.base import ModelBackend
    from harness.progress import Reporter


@register("backend", "hf", description="a pretrained transformers model directory or packaged GGUF "
                                       "(full fine-tune or LoRA)")
class HFBackend:
    """`harness.models.base.BackendPlugin` for `model.backend = "hf"`."""

    config_class = HFConfig

    @staticmethod
    def base_model(cfg: Any, domain: Domain, splits: Splits, key: str, cache_dir: Path | None,
                   reporter: Reporter) -> tuple[ModelBackend, dict[str, Any]]:
        """The pretrained model as it is (`[base]` does not apply), LoRA-wrapped when configured; `cache_dir`
        holds imported GGUF packages."""
        from harness.models.hf.model import HFModel
        from harness.seeding import derive_seed

        model = HFModel.from_config(cfg.model, seed=derive_seed(cfg.seed, "base"), cache_dir=cache_dir)
        reporter.log(f"base model: {model.base_path} ({model.n_parameters:,} parameters)")
        return model, {"backend": "hf", "path": str(model.base_path), "n_parameters": model.n_parameters,
                       "n_trainable_parameters": model.n_trainable_parameters}

    @staticmethod
    def load(directory: Path) -> ModelBackend:
        """A checkpoint `HFModel.save` wrote (full or LoRA), or any transformers directory."""
        from harness.models.hf.model import HFModel

        return HFModel.load(directory)
