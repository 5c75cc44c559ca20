"""Field types and upper bounds shared by every configuration model (suite, run, domains, backends).

Numbers in a suite are strict: a TOML `true` is not the number 1 and `"0.5"` is not 0.5. An integer is
accepted where a float is expected (`lr = 1` means 1.0); floats must be finite (no nan, no inf). Every size
has an upper bound generous for real use on a GPU but far below what would run until killed; the cost
estimate (harness.app.cost) then checks what the sizes add up to against the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AllowInfNan, BaseModel, Strict

Int = Annotated[int, Strict()]  # no bools, no floats, no strings
Float = Annotated[float, Strict(), AllowInfNan(False)]  # ints accepted; no bools, strings, nan or inf
Bool = Annotated[bool, Strict()]  # no 0/1, no "true"

MAX_SEED = 2**32 - 1  # seeds: what numpy and torch seed from without folding
MAX_SPLIT = 10**6  # items in one split (pool, test, ood, base-train, ...)
MAX_STEPS = 10**6  # optimizer steps of one training run
MAX_BATCH = 4096  # sequences per training, sampling or scoring batch
MAX_SAMPLES = 1024  # samples per question (k, eval_k)
MAX_ROUNDS = 100  # training rounds of a loop
MAX_LR = 10.0  # learning rates (10 still runs: the way tests make a fine-tune diverge)
MAX_TEMPERATURE = 10.0  # sampling temperature (softmax of logits / T: above 10 it is noise)
MAX_EPOCHS = 100.0  # passes over a round's training set
MAX_TOKENS = 131072  # any sequence length (prompt + completion)
MAX_THREADS = 1024  # torch threads
MAX_TEXT = 4096  # characters of a prompt template


def field_minimum(model: type[BaseModel], key: str) -> int:
    """The `ge` bound of an integer field (0 when it has none)."""
    return next((int(m.ge) for m in model.model_fields[key].metadata if getattr(m, "ge", None) is not None), 0)


def space_problem(cfg: BaseModel, spaces: list[tuple[str, int, dict[str, Callable[[int], int]]]],
                  hint: str) -> str | None:
    """Why the splits of `cfg` do not fit their question spaces, or None when they do.

    `spaces`: (description, number of distinct questions, {config key: size -> items that key's split takes
    from this space}). Splits drawn from one space are disjoint, so they fit when their items add up to at
    most its size. The message is "key: ..." (harness.app.suite names the key) and blames the largest split the
    user set (else the largest), with the largest value of it that fits given the others."""
    values = {key: getattr(cfg, key) for _, _, takes in spaces for key in takes}

    def fits(v: dict[str, int], key: str) -> bool:  # every space the key's split draws from
        return all(sum(f(v[k]) for k, f in takes.items()) <= size for _, size, takes in spaces if key in takes)

    for desc, size, takes in spaces:
        total = sum(f(values[k]) for k, f in takes.items())
        if total <= size:
            continue
        keys = [k for k, f in takes.items() if f(values[k]) > 0]
        chosen = [k for k in keys if k in cfg.model_fields_set] or keys
        key = max(chosen, key=lambda k: takes[k](values[k]))
        low, high = field_minimum(type(cfg), key), values[key]
        parts = ", ".join(f"{k} {f(values[k])}" for k, f in takes.items() if f(values[k]))
        head = (f"{key}: there are only {size} distinct {desc} questions, and the splits drawn from them ask for "
                f"{total} ({parts})")
        if not fits({**values, key: low}, key):
            return f"{head}; no {key} fits beside the other splits: {hint}"
        while low < high:  # the largest value of `key` that fits (fits is monotone in every size)
            mid = (low + high + 1) // 2
            low, high = (mid, high) if fits({**values, key: mid}, key) else (low, mid - 1)
        return f"{head}; the largest valid {key} is {low} (else {hint})"
    return None
