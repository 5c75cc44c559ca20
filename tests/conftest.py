"""Shared fixtures: a tiny configuration that runs the whole loop in seconds, and isolated caches."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

from harness.config import BaseTrainConfig, LoopConfig, RunConfig
from harness.domains.arithmetic import ArithmeticConfig
from harness.models.tiny.model import TinyConfig, TinyModel

torch.set_num_threads(1)
# The same examples on every run: a CI verdict must not depend on which random examples were drawn.
settings.register_profile("loopprobe", derandomize=True, print_blob=True)
settings.load_profile("loopprobe")


def tiny_run_config(**loop) -> RunConfig:
    """Small enough for unit tests (~seconds), big enough that every file gets real rows."""
    return RunConfig(
        seed=3,
        domain=ArithmeticConfig(max_digits=2, base_train_size=600, ood_train_size=100, base_val_size=10,
                                pool_size=24, test_size=12, ood_size=12, reference_size=8),
        model=TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
        base=BaseTrainConfig(steps=40, batch_size=32, lr=3e-3, warmup=5),
        loop=LoopConfig(**{"rounds": 2, "k": 4, "eval_k": 2, "tau": 0.25, "lr": 1e-3, **loop}),
    )


@pytest.fixture
def tiny_config() -> RunConfig:
    return tiny_run_config()


@pytest.fixture(scope="session")
def random_model() -> TinyModel:
    """An untrained model: its outputs are arbitrary, which is what sampler contract tests want."""
    return TinyModel.initialise(TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64), 0)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("LOOPPROBE_CACHE", raising=False)
