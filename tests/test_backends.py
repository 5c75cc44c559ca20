"""Backends as registered extensions: the built-ins, one-line errors for unknown names, the public test
double, and one training core under both torch backends."""

from __future__ import annotations

import ast
import inspect

import pytest

import harness.models.hf.model as hf_model
import harness.models.tiny.model as tiny_model
import harness.models.tiny.training as tiny_training
from harness.models import training
from harness.models.base import BackendPlugin, ModelBackend
from harness.models.factory import backend_plugin, load_checkpoint
from harness.models.testing import FunctionBackend
from harness.registry import RegistryError, lookup, registered
from tests import backend_contract as contract


def test_the_built_in_backends_are_registered_as_plugins_with_their_configs():
    backends = registered("backend")
    assert set(backends) == {"tiny", "hf"}
    for name, entry in backends.items():
        plugin = backend_plugin(name)
        assert isinstance(plugin, BackendPlugin)
        assert plugin.config_class.model_fields["backend"].default == name  # the union's discriminator
        assert entry.metadata["description"]


def test_an_unknown_backend_is_one_line_naming_the_nearest():
    with pytest.raises(RegistryError, match=r"did you mean 'tiny'\?") as err:
        lookup("backend", "tny")
    assert "\n" not in str(err.value)
    with pytest.raises(RegistryError, match="did you mean 'tiny'"):
        load_checkpoint(type("Cfg", (), {"backend": "tny"})(), "nowhere")


def test_function_backend_satisfies_the_protocol_and_records_what_it_trains(tmp_path):
    model = FunctionBackend(lambda prompt, rng: f"A: {len(prompt)}")
    contract.implements_the_protocol(model)
    assert isinstance(model, ModelBackend)
    pairs = [("Q: 1+2\n", "A: 3"), ("Q: 2+2\n", "A: 4"), ("Q: 3+3\n", "A: 6")]
    seen: list[tuple[int, float]] = []
    stats = model.finetune(pairs, lr=1e-3, epochs=2, batch_size=2, seed=0,
                           on_step=lambda step, loss: seen.append((step, loss)) or False)
    assert model.trained == [pairs]
    assert stats.steps == training.epoch_steps(3, 2, 2) == 3 and [s for s, _ in seen] == [0, 1, 2]
    assert model.finetune(pairs, lr=1e-3, epochs=2, batch_size=2, seed=0, steps=5,
                          on_step=lambda step, loss: step == 1).steps == 2  # on_step stops it
    model.save(tmp_path / "ckpt")
    loaded = model.load(tmp_path / "ckpt")
    assert loaded.trained == model.trained
    assert loaded.sample(["Q: 1+2\n"], k=2, temperature=1.0, max_new_tokens=8, seed=0) == \
        model.sample(["Q: 1+2\n"], k=2, temperature=1.0, max_new_tokens=8, seed=0)


def _defined_here(module) -> set[str]:
    """Names of the functions and classes a module's own source defines (not those it imports)."""
    tree = ast.parse(inspect.getsource(module))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_both_torch_backends_train_with_the_one_core():
    core = {"Schedule", "epoch_steps", "train", "finetune", "completion_loss", "token_logprobs", "score",
            "completion_batch"}
    # The backends' own modules define the protocol's method names, and tiny.training keeps thin adapters
    # (`score`, `train`) for old callers; none defines the core's schedule, step count, loss or batching.
    for module, allowed in ((tiny_model, {"score", "finetune"}), (hf_model, {"score", "finetune"}),
                            (tiny_training, {"score", "train"})):
        assert not (_defined_here(module) & core) - allowed, module.__name__
    assert tiny_training.Schedule is training.Schedule and tiny_training.epoch_steps is training.epoch_steps
    for module in (tiny_model, hf_model):
        source = inspect.getsource(module)
        assert "training.finetune(" in source
        assert not [s for s in ("torch.optim", "cross_entropy(", "clip_grad_norm_", "Schedule(") if s in source]
