"""The backend a run uses, looked up by `model.backend` in the registry (harness.registry, kind "backend"):
its base model and its checkpoints. The built-ins register in harness.models.tiny.plugin and
harness.models.hf.plugin; others through the `loopprobe.backends` entry-point group."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.models.base import BackendPlugin, ModelBackend
from harness.registry import RegistryError, lookup

if TYPE_CHECKING:
    from harness.domains.base import Domain, Splits
    from harness.progress import Reporter


def backend_plugin(name: str) -> BackendPlugin:
    """The registered backend `name`; a one-line RegistryError for an unknown name (with the nearest valid
    one) or for a registered object that lacks what `BackendPlugin` requires."""
    entry = lookup("backend", name)
    if not isinstance(entry.obj, BackendPlugin):
        missing = [m for m in ("config_class", "base_model", "load") if not hasattr(entry.obj, m)]
        raise RegistryError(f"backend {name!r} ({entry.origin}) is not a backend plugin: it lacks "
                            f"{', '.join(missing)} (see harness.models.base.BackendPlugin)")
    return entry.obj


def base_model(cfg: Any, domain: Domain, splits: Splits, key: str, cache_dir: Path | None,
               reporter: Reporter) -> tuple[ModelBackend, dict[str, Any]]:
    """Round 0's model and its manifest record, from the backend `cfg.model.backend` names."""
    return backend_plugin(cfg.model.backend).base_model(cfg, domain, splits, key, cache_dir, reporter)


def load_checkpoint(model_cfg: Any, directory: Path) -> ModelBackend:
    """A round's saved model, for resuming a run or restarting distillation from the base."""
    return backend_plugin(model_cfg.backend).load(directory)
