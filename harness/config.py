"""The resolved configuration of a run: every controlled condition, with defaults that fit this machine."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.domains.arithmetic import ArithmeticConfig
from harness.models.tiny.model import TinyConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseTrainConfig(_Strict):
    """How the base model is trained from scratch. Base competence is set here: a step budget with a
    fully annealed cosine schedule (robust), or a target accuracy on base-val that stops it early."""

    steps: int = Field(350, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2.5e-3, gt=0)
    warmup: int = Field(20, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    target_accuracy: float | None = Field(None, gt=0, le=1, description="stop once base-val reaches it")
    eval_every: int = Field(50, ge=1, description="steps between base-val checks for target_accuracy")


class LoopConfig(_Strict):
    """The self-improvement loop (LMSI: amplify by sampling, select by self-consistency, distill)."""

    rounds: int = Field(2, ge=0, description="training rounds after round 0 (the base)")
    k: int = Field(8, ge=1, description="samples per pool question")
    temperature: float = Field(0.8, ge=0)
    tau: float = Field(0.6, ge=0, le=1, description="keep a question when its majority vote share >= tau")
    max_new_tokens: int = Field(40, ge=1)
    lr: float = Field(1e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(32, ge=1)
    data_policy: Literal["replace", "accumulate"] = "replace"
    eval_k: int = Field(8, ge=1, description="sampled decodings per test and ood question")
    sample_batch_size: int = Field(512, ge=1)


class RunConfig(_Strict):
    seed: int = Field(0, ge=0)
    threads: int = Field(1, ge=1, description="torch threads; results are bit-identical only for a fixed count")
    domain: ArithmeticConfig = ArithmeticConfig()
    model: TinyConfig = TinyConfig()
    base: BaseTrainConfig = BaseTrainConfig()
    loop: LoopConfig = LoopConfig()


def config_hash(*parts: BaseModel | dict | str | int) -> str:
    """A stable hash of configuration values (canonical JSON)."""
    payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
