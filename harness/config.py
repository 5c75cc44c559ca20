"""The resolved configuration of a run: every controlled condition, with defaults that fit this machine."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.domains.arithmetic import ArithmeticConfig
from harness.domains.word_problems import WordProblemsConfig
from harness.models.hf.config import HFConfig
from harness.models.tiny.model import TinyConfig

DomainConfig = Annotated[ArithmeticConfig | WordProblemsConfig, Field(discriminator="name")]
ModelConfig = Annotated[TinyConfig | HFConfig, Field(discriminator="backend")]


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
    """The self-improvement loop: amplify, select, distill, and the data policy that builds each training set.

    The defaults are LMSI (Huang et al. 2022): k chain-of-thought samples, a self-consistency vote, fine-tuning
    that continues from the previous round on the newest selection."""

    rounds: int = Field(2, ge=0, description="training rounds after round 0 (the base)")
    # amplify
    amplify: Literal["sample", "decompose"] = Field(
        "sample", description="sample: k samples per question; decompose: IDA, the model answers the "
                              "sub-questions (column sums) and the harness composes the trace")
    k: int = Field(8, ge=1, description="samples per pool question")
    temperature: float = Field(0.8, ge=0)
    max_new_tokens: int = Field(40, ge=1)
    # select
    select: Literal["self_consistency", "verifier", "gold_rationalization", "judge", "none"] = Field(
        "self_consistency", description="self_consistency (LMSI), verifier (ReST-EM), gold_rationalization "
                                        "(STaR), judge (self-rewarding), none (train on every sample)")
    tau: float = Field(0.6, ge=0, le=1, description="self_consistency: keep a question when its majority "
                                                    "vote share >= tau")
    verifier_noise: float = Field(0.0, ge=0, le=1, description="verifier: probability each verdict is flipped")
    judge_keep: float = Field(0.25, gt=0, le=1, description="judge: share of all candidates kept, top-scored")
    judge_prompt: str = Field("{prompt}", description="judge: scoring prompt, from {prompt} and {completion}")
    judge_target: str = Field("{completion}", description="judge: the text whose mean log-prob per token after "
                                                          "the scoring prompt is the score")
    # distill
    distill_from: Literal["previous", "base"] = Field(
        "previous", description="continue from the previous round, or restart from the base (STaR, ReST-EM)")
    lr: float = Field(1e-4, ge=0, description="fine-tuning learning rate; 0 makes a null loop whose rounds cannot "
                                              "change the model (the negative control of a suite)")
    epochs: float = Field(1.0, gt=0)
    steps: int | None = Field(None, ge=1, description="fixed optimizer steps per round (overrides epochs)")
    batch_size: int = Field(32, ge=1)
    formats: list[Literal["cot", "direct"]] = Field(
        ["cot"], min_length=1, description="train each kept sample in these formats (LMSI mixes both): cot, "
                                           "the rationale; direct, the answer line only")
    # data policy
    data_policy: Literal["replace", "accumulate", "mix_real"] = Field(
        "replace", description="replace: the newest selection; accumulate: every selection so far; mix_real: "
                               "the newest selection plus labeled base-train data")
    real_fraction: float = Field(0.1, ge=0, lt=1, description="mix_real: share of the training set that is real")
    # evaluation
    eval_k: int = Field(8, ge=1, description="sampled decodings per test and ood question")
    sample_batch_size: int | None = Field(None, ge=1, description="sequences per sampling batch; None: the "
                                                                  "backend's default (tiny 512, hf model.sample_batch_size)")
    # bad rounds
    on_failure: Literal["stop", "continue"] = Field(
        "stop", description="a round whose fine-tune fails (non-finite loss or weights, divergence, empty training "
                            "set) is recorded with status failed; stop: end the run there (exit 1); continue: keep "
                            "the previous round's weights and go on (the run still never passes a gate)")

    @model_validator(mode="after")
    def _check(self) -> LoopConfig:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats must be distinct, got {self.formats}")
        for name in ("judge_prompt", "judge_target"):
            try:
                getattr(self, name).format(prompt="", completion="")
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"{name} may use only {{prompt}} and {{completion}} ({e})") from None
        return self


class InspectTaskSpec(_Strict):
    """An inspect-ai Task run against every round's model; its log is kept as round-NNN/inspect/<task>.eval."""

    task: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function making the Task")
    args: dict[str, Any] = Field({}, description='keyword arguments; the string "{run_dir}" is the run directory')


class RunConfig(_Strict):
    seed: int = Field(0, ge=0)
    threads: int = Field(1, ge=1, description="torch threads; results are bit-identical only for a fixed count")
    domain: DomainConfig = ArithmeticConfig()
    model: ModelConfig = TinyConfig()
    base: BaseTrainConfig = BaseTrainConfig()
    loop: LoopConfig = LoopConfig()
    inspect: list[InspectTaskSpec] = []


def config_hash(*parts: BaseModel | dict | str | int) -> str:
    """A stable hash of configuration values (canonical JSON)."""
    payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
