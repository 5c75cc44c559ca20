"""The resolved configuration of a run: every controlled condition, with defaults that fit this machine."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.bounds import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_LR,
    MAX_ROUNDS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MAX_TEXT,
    MAX_THREADS,
    Float,
    Int,
)
from harness.domains.arithmetic import ArithmeticConfig
from harness.domains.base import DirectFormat, missing_capabilities
from harness.models.tiny.config import TinyConfig
from harness.registry import lookup, registered, unknown_name


def _union(kind: str, tag: str) -> Any:
    """The config type of an extension kind: a union of every registered config class, discriminated by `tag`
    (`[domain] name`, `[model] backend`). Built when this module is imported, so installed plugins join it."""
    classes = tuple(entry.obj.config_class for entry in registered(kind).values())
    return Annotated[Union[classes], Field(discriminator=tag)] if len(classes) > 1 else classes[0]  # noqa: UP007


if TYPE_CHECKING:  # unions built from the registry at import: to a type checker, any registered config class
    DomainConfig = Any
    ModelConfig = Any
else:
    DomainConfig = _union("domain", "name")
    ModelConfig = _union("backend", "backend")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseTrainConfig(_Strict):
    """How the base model is trained from scratch. Base competence is set here: a step budget with a
    fully annealed cosine schedule (robust), or a target accuracy on base-val that stops it early."""

    steps: Int = Field(350, ge=1, le=MAX_STEPS, description="optimizer steps (at most 10**6)")
    batch_size: Int = Field(64, ge=1, le=MAX_BATCH, description="examples per step (at most 4096)")
    lr: Float = Field(2.5e-3, gt=0, le=MAX_LR, description="peak learning rate (finite, at most 10)")
    warmup: Int = Field(20, ge=0, le=MAX_STEPS, description="linear warm-up steps (at most 10**6)")
    schedule: Literal["cosine", "constant"] = "cosine"
    target_accuracy: Float | None = Field(None, gt=0, le=1, description="stop once base-val reaches it")
    eval_every: Int = Field(50, ge=1, le=MAX_STEPS,
                            description="steps between base-val checks for target_accuracy")


class LoopConfig(_Strict):
    """The self-improvement loop: amplify, select, distill, and the data policy that builds each training set.

    The defaults are LMSI (Huang et al. 2022): k chain-of-thought samples, a self-consistency vote, fine-tuning
    that continues from the previous round on the newest selection."""

    rounds: Int = Field(2, ge=0, le=MAX_ROUNDS, description="training rounds after round 0 (the base; at most 100)")
    # amplify
    amplify: str = Field(
        "sample", description="a registered amplifier: sample, k samples per question; decompose, IDA: the model "
                              "answers the domain's sub-questions and the harness composes the trace")
    k: Int = Field(8, ge=1, le=MAX_SAMPLES, description="samples per pool question (at most 1024)")
    temperature: Float = Field(0.8, ge=0, le=MAX_TEMPERATURE, description="sampling temperature: 0 (greedy) or "
                                                                         "from 0.001 to 10")
    max_new_tokens: Int = Field(40, ge=1, le=4096, description="tokens per completion (at most 4096, and the "
                                                               "prompt plus this must fit the model's context)")
    # select
    select: str = Field(
        "self_consistency", description="a registered selector: self_consistency (LMSI), verifier (ReST-EM), "
                                        "gold_rationalization (STaR), judge (self-rewarding), self_verify (the "
                                        "learner checks its own candidates), none (train on every sample)")
    select_args: dict[str, Any] = Field({}, description="settings of the selector's own (its registered `args` "
                                                        "model), for selectors that have them")
    tau: Float = Field(0.6, ge=0, le=1, description="self_consistency: keep a question when its majority "
                                                    "vote share >= tau")
    verifier_noise: Float = Field(0.0, ge=0, le=1, description="verifier: probability each verdict is flipped")
    judge_keep: Float = Field(0.25, gt=0, le=1, description="judge: share of all candidates kept, top-scored")
    judge_prompt: str = Field("{prompt}", max_length=MAX_TEXT,
                              description="judge: scoring prompt, from {prompt} and {completion}")
    judge_target: str = Field("{completion}", max_length=MAX_TEXT,
                              description="judge: the text whose mean log-prob per token after the scoring "
                                          "prompt is the score")
    # distill
    distill: Literal["sft", "policy_gradient"] = Field(
        "sft", description="sft: fine-tune on the selection; policy_gradient: GRPO on every sample, weighed by the "
                           "advantage of its reward (loop.reward) within its question's k")
    reward: str = Field(
        "majority", description="policy_gradient: a registered reward: majority (TTRL, SRT), verifier (RLVR), "
                                "noisy_verifier, self_certainty (Intuitor)")
    reward_args: dict[str, Any] = Field({}, description="settings of the reward's own (its registered `args` model)")
    kl_beta: Float = Field(0.0, ge=0, le=MAX_LR, description="policy_gradient: weight of the KL penalty to the base "
                                                           "model (0: none, as TTRL and DAPO)")
    clip_epsilon: Float = Field(0.2, gt=0, le=1, description="policy_gradient: the clip range of the ratio")
    pg_loss: Literal["grpo", "dapo"] = Field(
        "grpo", description="policy_gradient: grpo, each sample's token mean averaged over samples; dapo, every "
                            "token of the step weighed equally (TRL's names)")
    distill_from: Literal["previous", "base"] = Field(
        "previous", description="continue from the previous round, or restart from the base (STaR, ReST-EM)")
    lr: Float = Field(1e-4, ge=0, le=MAX_LR, description="fine-tuning learning rate (at most 10); 0 makes a null "
                                                         "loop whose rounds cannot change the model (the negative "
                                                         "control of a suite)")
    epochs: Float = Field(1.0, gt=0, le=MAX_EPOCHS, description="passes over the training set (at most 100)")
    steps: Int | None = Field(None, ge=1, le=MAX_STEPS, description="fixed optimizer steps per round (overrides "
                                                                    "epochs; at most 10**6)")
    batch_size: Int = Field(32, ge=1, le=MAX_BATCH, description="examples per step (at most 4096)")
    formats: list[Literal["cot", "direct"]] = Field(
        ["cot"], min_length=1, description="train each kept sample in these formats (LMSI mixes both): cot, "
                                           "the rationale; direct, the answer line only")
    # data policy
    data_policy: str = Field(
        "replace", description="a registered data policy: replace, the newest selection; accumulate, every "
                               "selection so far; mix_real, the newest selection plus labeled base-train data")
    real_fraction: Float = Field(0.1, ge=0, lt=1, description="mix_real: share of the training set that is real")
    # evaluation
    eval_k: Int = Field(8, ge=1, le=MAX_SAMPLES, description="sampled decodings per test and ood question (at "
                                                              "most 1024)")
    sample_batch_size: Int | None = Field(None, ge=1, le=MAX_BATCH, description="sequences per sampling batch (at "
                                          "most 4096); None: the backend's default (tiny 512, hf "
                                          "model.sample_batch_size)")
    # bad rounds
    on_failure: Literal["stop", "continue"] = Field(
        "stop", description="a round whose fine-tune fails (non-finite loss or weights, divergence, empty training "
                            "set) is recorded with status failed; stop: end the run there (exit 1); continue: keep "
                            "the previous round's weights and go on (the run still never passes a gate)")

    @field_validator("amplify", "select", "data_policy", "reward")
    @classmethod
    def _registered(cls, value: str, info) -> str:
        kind = {"amplify": "amplifier", "select": "selector"}.get(info.field_name, info.field_name)
        if value not in registered(kind):
            raise ValueError(unknown_name(kind, value))
        return value

    def reward_settings(self) -> Any:
        """The reward's validated `reward_args` (its registered `args` model), or None when it has none."""
        model = lookup("reward", self.reward).metadata.get("args")
        return None if model is None else model(**self.reward_args)

    def selector_args(self) -> Any:
        """The selector's validated `select_args` (its registered `args` model), or None when it has none."""
        model = lookup("selector", self.select).metadata.get("args")
        return None if model is None else model(**self.select_args)

    @model_validator(mode="after")
    def _check(self) -> LoopConfig:
        _check_args("select_args", "selector", self.select, self.select_args)
        _check_args("reward_args", "reward", self.reward, self.reward_args)
        if self.distill == "policy_gradient":
            _check_policy_gradient(self)
        else:
            defaults = {"reward": "majority", "reward_args": {}, "kl_beta": 0.0, "clip_epsilon": 0.2, "pg_loss": "grpo"}
            given = [name for name, value in defaults.items() if getattr(self, name) != value]
            if given:
                raise ValueError(f"{given[0]}: used only by distill = \"policy_gradient\"; set distill, or remove "
                                 f"{given[0]}")
        if 0 < self.temperature < 1e-3:  # logits / T overflows float32 near 1e-38: a traceback in sampling
            raise ValueError(f"temperature: {self.temperature:g} is neither 0 (greedy) nor at least 0.001")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats must be distinct, got {self.formats}")
        for name in ("judge_prompt", "judge_target"):
            try:
                getattr(self, name).format(prompt="", completion="")
            except (KeyError, IndexError, ValueError) as e:
                raise ValueError(f"{name} may use only {{prompt}} and {{completion}} ({e})") from None
        return self


def _check_args(field: str, kind: str, name: str, values: dict[str, Any]) -> None:
    model = lookup(kind, name).metadata.get("args")
    if model is None and values:
        raise ValueError(f"{field}: {kind} {name!r} takes no settings; remove {field}")
    if model is not None:
        try:
            model(**values)
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"{field}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def _check_policy_gradient(loop: LoopConfig) -> None:
    """What policy-gradient distillation cannot combine with: the rollouts it weighs are one round's own
    samples, as sampled (no selector, no older rounds, no other formats, no harness-composed traces)."""
    if loop.select != "self_consistency" or loop.select_args:  # the default select is not used
        raise ValueError("select: distill = \"policy_gradient\" weighs every sample by its reward; choose the "
                         "reward with loop.reward and remove select")
    if loop.data_policy != "replace":
        raise ValueError(f"data_policy: {loop.data_policy!r} mixes other rounds' rows into an on-policy update; "
                         "distill = \"policy_gradient\" needs \"replace\"")
    if loop.formats != ["cot"]:
        raise ValueError("formats: distill = \"policy_gradient\" trains the samples as sampled; use [\"cot\"]")
    if loop.amplify != "sample":
        raise ValueError(f"amplify: {loop.amplify!r} composes traces the model did not sample; distill = "
                         "\"policy_gradient\" needs \"sample\"")
    if loop.temperature == 0:
        raise ValueError("temperature: greedy samples of a question are all alike (no advantage); distill = "
                         "\"policy_gradient\" needs a temperature above 0")


class InspectTaskSpec(_Strict):
    """An inspect-ai Task run against every round's model; its log is kept as round-NNN/inspect/<task>.eval."""

    task: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function making the Task")
    args: dict[str, Any] = Field({}, description='keyword arguments; the string "{run_dir}" is the run directory')


class RunConfig(_Strict):
    seed: Int = Field(0, ge=0, le=MAX_SEED)
    threads: Int = Field(1, ge=1, le=MAX_THREADS, description="torch threads; results are bit-identical only for "
                                                              "a fixed count")
    domain: DomainConfig = ArithmeticConfig()
    model: ModelConfig = TinyConfig()
    base: BaseTrainConfig = BaseTrainConfig()
    loop: LoopConfig = LoopConfig()
    inspect: list[InspectTaskSpec] = []

    @model_validator(mode="after")
    def _fits_context(self) -> RunConfig:
        problem = strategy_problem(self.domain, self.loop) or context_problem(self.domain, self.model, self.loop)
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return self


def strategy_problem(domain, loop: LoopConfig) -> tuple[str, str] | None:
    """(key, why) when a strategy needs a capability the domain lacks (harness.domains.base): checked when a
    suite is validated, so a run never starts with a pairing that fails at run time."""
    domain_class = lookup("domain", domain.name).obj
    needs = [("loop.amplify", "amplifier", loop.amplify), ("loop.select", "selector", loop.select),
             ("loop.data_policy", "data_policy", loop.data_policy)]
    for key, kind, name in needs:
        missing = missing_capabilities(domain_class, lookup(kind, name).metadata.get("requires", ()))
        if missing:
            return key, (f"{kind.replace('_', ' ')} {name!r} needs a domain with {'; '.join(missing)}, and domain "
                         f"{domain.name!r} has none; choose another {key.split('.')[1]} or domain")
    if "direct" in loop.formats and (missing := missing_capabilities(domain_class, (DirectFormat,))):
        return "loop.formats", (f"the direct format needs a domain with {missing[0]}, and domain {domain.name!r} "
                                "has none; train the cot format only")
    return None


def context_problem(domain, model, loop: LoopConfig) -> tuple[str, str] | None:
    """(key, why) when the longest sequence the loop samples or trains does not fit the model's context.

    tiny: bos + prompt + completion + eos must fit `max_positions` (one token per character), for the longest
    prompt the loop samples (the hint prompt under STaR, the growing trace under decompose) with
    `max_new_tokens`, and for base-train's gold texts. hf: `max_new_tokens` must stay below `max_length`
    (prompt + completion tokens scored and trained; prompt lengths need the tokenizer, so only this)."""
    n = loop.max_new_tokens
    if model.backend == "hf":
        if n >= model.max_length:
            return "loop.max_new_tokens", (f"{n} tokens do not fit below model.max_length ({model.max_length}), "
                                           "the prompt + completion tokens the hf backend scores and trains")
        return None
    if not hasattr(domain, "text_lengths"):
        return "domain.name", (f"domain {domain.name!r} does not declare text_lengths(), which the tiny backend "
                               "needs to check that its texts fit model.max_positions")
    text, room = domain.text_lengths(), model.max_positions - 2  # bos and eos
    # the prompts the loop samples from: the question's, and those its selector samples (STaR's hint prompt)
    prompts = [text["prompt"], *(text[k] for k in lookup("selector", loop.select).metadata.get("prompts", ()))]
    prompt = max(prompts)
    if prompt + n > room:
        fix = (f"the largest valid max_new_tokens is {room - prompt}" if room > prompt else
               "raise model.max_positions")
        return "loop.max_new_tokens", (f"bos + the longest prompt ({prompt} characters) + {n} new tokens + eos "
                                       f"= {prompt + n + 2} tokens do not fit model.max_positions "
                                       f"({model.max_positions}); {fix}")
    if loop.amplify == "decompose" and text.get("decompose_prompt", 0) + text.get("sub_answer", 0) > room:
        return "model.max_positions", (f"{model.max_positions} tokens do not hold the longest decomposition "
                                       f"prompt ({text['decompose_prompt']} characters) and its sub-answer")
    gold = max(text["prompt"], text.get("base_train_prompt", 0))
    if gold + text["completion"] > room:
        return "model.max_positions", (f"{model.max_positions} tokens do not hold bos + a base-train prompt "
                                       f"({gold} characters) + its gold completion ({text['completion']}) + eos")
    return None


def config_hash(*parts: BaseModel | dict | str | int) -> str:
    """A stable hash of configuration values (canonical JSON)."""
    payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
