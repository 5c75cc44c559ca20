"""What the loop asks of a model (`ModelBackend`: sample, score, fine-tune, save) and what a backend registers
to provide one (`BackendPlugin`: its config class, the base model, loading a checkpoint).

Both are runtime-checkable Protocols: nothing needs to inherit from them, and `isinstance` tells whether an
object has the methods (not their signatures; mypy checks those). This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from harness.domains.base import Domain, Splits
    from harness.progress import Reporter


@dataclass(frozen=True)
class Completion:
    text: str
    sum_logprob: float  # log-probability under the model (temperature 1) of the generated tokens
    n_tokens: int  # generated tokens, the final eos included when it was produced
    finished: bool  # True when the model produced eos within the token budget


@dataclass(frozen=True)
class TrainStats:
    steps: int  # optimizer steps taken (fewer than asked when on_step stopped training)
    tokens: int  # completion tokens trained on, summed over steps
    mean_loss: float  # mean per-token loss over the steps; nan when there was nothing to train on
    final_loss: float  # mean over the last 10 steps
    seconds: float


@dataclass(frozen=True)
class Rollout:
    """One sampled completion of a prompt, with its advantage (its reward against its group's)."""

    prompt: str
    completion: str
    advantage: float


@dataclass(frozen=True)
class PolicySettings:
    """The update's settings (`[loop] kl_beta`, `clip_epsilon`, `pg_loss`, `temperature`)."""

    beta: float = 0.0  # weight of the k3 KL penalty to the reference
    epsilon: float = 0.2  # the clip range of the ratio, both sides
    loss_type: Literal["grpo", "dapo"] = "grpo"
    temperature: float = 1.0  # the sampling temperature: log-probs are of logits / temperature


@runtime_checkable
class ModelBackend(Protocol):
    """A model the loop can sample, score, fine-tune and checkpoint. Exactly what harness.loop and
    harness.strategies call; loading a checkpoint is the backend plugin's `load`, not the model's."""

    def sample(self, prompts: list[str], k: int, temperature: float, max_new_tokens: int, seed: int, *,
               batch_size: int | None = None, progress: Callable[[int], None] | None = None
               ) -> list[list[Completion]]:
        """k completions per prompt, in prompt order. temperature 0 decodes greedily (the k are then equal).
        The same seed gives the same completions, whatever the batching. `batch_size`: sequences per forward
        pass (None: the backend's default); `progress(n)` is called as n more sequences finish."""
        ...

    def score(self, prompts: list[str], completions: list[str], add_eos: bool | list[bool] = True
              ) -> list[tuple[float, int]]:
        """(sum log-prob at temperature 1, token count) of each completion given its prompt, eos included
        where `add_eos` says; a sampled completion scores its own `sum_logprob` and `n_tokens`."""
        ...

    def finetune(self, pairs: list[tuple[str, str]], *, lr: float, epochs: float, batch_size: int, seed: int,
                 steps: int | None = None, on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        """Train on (prompt, completion) pairs, the loss on each completion (and its eos) only, for `steps`
        steps or, when None, the count `epochs` implies (`harness.models.training.epoch_steps`); no pairs, no
        steps. `on_step(step, loss)` runs after each step; True stops training there."""
        ...

    def save(self, directory: Path) -> None:
        """Write a checkpoint that the backend plugin's `load(directory)` restores: same scores, same samples."""
        ...


@runtime_checkable
class PolicyGradientBackend(Protocol):
    """A model that can take a policy-gradient step (`[loop] distill = "policy_gradient"`): both built-in
    backends, through `harness.models.policy_gradient`."""

    def policy_update(self, rollouts: list[Rollout], settings: PolicySettings, *, lr: float, epochs: float,
                      batch_size: int, seed: int, steps: int | None = None, reference: Any = None,
                      on_step: Callable[[int, float], bool] | None = None) -> TrainStats:
        """GRPO's clipped surrogate over the rollouts (their advantages given), log-probs at
        `settings.temperature`; old log-probs are the model's as given, the KL penalty is to `reference` (a
        model of the same backend; needed when `settings.beta` > 0). Steps as `finetune` counts them."""
        ...


@runtime_checkable
class BackendPlugin(Protocol):
    """A model backend, registered as `@register("backend", name)` (harness.registry), built-in or through the
    `loopprobe.backends` entry-point group. Usually a class of static methods; the run config's
    `model.backend = name` selects it.

    - `config_class`: a frozen pydantic model with a field `backend: Literal[name] = name`; the run config's
      `[model]` table validates into it (the registry's config classes form its discriminated union).
    - `base_model(cfg, domain, splits, key, cache_dir, reporter)`: round 0's model for the run config `cfg`
      (its `model` is a `config_class` instance; `seed` and `base` are there too), and a JSON-able record of
      it for the manifest. `key` names the conditions that decide the base weights, for a cache under
      `cache_dir` (None: no cache); progress and notes go to `reporter`.
    - `load(directory)`: the model a `ModelBackend.save(directory)` wrote, for resuming a run and restarting
      distillation from the base; it must sample and score exactly as the saved model did.

    Importing the module that registers a plugin should stay cheap (no torch, no model code): the registry
    imports every backend's to list the choices.
    """

    config_class: ClassVar[type[BaseModel]]

    def base_model(self, cfg: Any, domain: Domain, splits: Splits, key: str, cache_dir: Path | None,
                   reporter: Reporter) -> tuple[ModelBackend, dict[str, Any]]: ...

    def load(self, directory: Path) -> ModelBackend: ...
