"""Fuzzed suites: shipped suites mutated at random (keys deleted, values replaced by TOML values of other types,
huge, negative, nan and inf numbers, strings, booleans, nested tables, unknown keys, known keys set to
absurd sizes, random characters in the text) go through `parse_suite` and the cost check. Each one is either
accepted (and then within this machine's limits, or refused by the check) or refused with a one-line
SuiteError: never another exception, never a multi-line message, each within a second.

    python -m tests.test_suite_fuzz [N]     # prints the counts: refused (exit 2) / accepted (exit 0)
"""

from __future__ import annotations

import copy
import json
import math
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.app.cost import check, estimate, machine_limits
from harness.app.suite import SuiteError, parse_suite

SUITES = sorted((Path(__file__).resolve().parents[1] / "suites").glob("*.toml"))
PARSED = {p.stem: tomllib.loads(p.read_text()) for p in SUITES}
TEXTS = {p.stem: p.read_text() for p in SUITES}
OUT = Path(tempfile.gettempdir()) / "loopprobe-fuzz-out-never-created"
COUNTS: Counter = Counter()

for _text in TEXTS.values():  # warm the per-process caches (probe measurement names, GGUF headers)
    estimate(parse_suite(_text))

# known keys worth setting to absurd or odd values, by section
KNOWN = {
    "suite": ["seeds", "threads", "q", "expected_seconds", "max_hours", "size", "correction"],
    "domain": ["min_digits", "max_digits", "base_train_size", "ood_train_size", "base_val_size", "pool_size",
               "test_size", "ood_size", "reference_size", "answer_noise", "misconception_rate", "hint_share",
               "max_number", "max_factor", "shots", "name"],
    "model": ["hidden_size", "num_layers", "num_heads", "intermediate_size", "max_positions", "backend",
              "max_length", "sample_batch_size", "lora", "dtype"],
    "base": ["steps", "batch_size", "lr", "warmup", "target_accuracy", "eval_every"],
    "loop": ["rounds", "k", "temperature", "max_new_tokens", "tau", "lr", "epochs", "steps", "batch_size",
             "eval_k", "sample_batch_size", "real_fraction", "judge_keep", "select", "amplify", "data_policy"],
}
NUMBERS = [0, -1, 1, 2, 3, 7, 64, 100, 1000, 4096, 10**4, 10**5, 10**6, 10**6 + 1, 10**9, 2**31, 2**63, 2**64,
           10**30, -(10**9), 0.0, -0.0, 0.5, 1.5, 1e-9, 1e9, 1e308, math.inf, -math.inf, math.nan]

scalars = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _slots(data, prefix=()):
    """Every (container, key) in a parsed suite, tables and arrays included."""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        yield data, key
        if isinstance(value, dict | list):
            yield from _slots(value, (*prefix, key))


def _mutate(draw, data: dict) -> None:
    slots = list(_slots(data))
    op = draw(st.sampled_from(["delete", "replace", "number", "unknown", "known", "known", "known"]))
    if op in ("delete", "replace", "number") and slots:
        container, key = draw(st.sampled_from(slots))
        if op == "delete":
            del container[key]
        elif op == "replace":
            container[key] = draw(values)
        else:
            old = container[key]
            container[key] = draw(st.sampled_from(NUMBERS)) if not isinstance(old, int | float) else (
                old * draw(st.sampled_from([10**3, 10**6, -1, 10**12])) if not isinstance(old, bool) else 2)
    elif op == "unknown":
        tables = [data] + [v for _, v in (((c, c[k]) for c, k in slots)) if isinstance(v, dict)]
        draw(st.sampled_from(tables))[draw(st.text(min_size=1, max_size=8))] = draw(values)
    else:
        section = draw(st.sampled_from(sorted(KNOWN)))
        table = data.setdefault(section, {})
        if isinstance(table, dict):
            table[draw(st.sampled_from(KNOWN[section]))] = draw(st.sampled_from(NUMBERS) | values)


def _toml_key(key) -> str:
    return json.dumps(str(key), ensure_ascii=False)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def dumps(data: dict) -> str:
    """TOML of a dict: every top-level key as one line with inline tables and arrays."""
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()) + "\n"


@st.composite
def fuzzed_suites(draw) -> str:
    name = draw(st.sampled_from(sorted(PARSED)))
    if draw(st.integers(0, 9)) == 0:  # raw text: random characters or bytes-as-text at a random place
        text = TEXTS[name]
        at = draw(st.integers(0, len(text)))
        junk = draw(st.text(max_size=8) | st.binary(max_size=8).map(lambda b: b.decode("latin-1")))
        return text[:at] + junk + text[at + draw(st.integers(0, 3)):]
    data = copy.deepcopy(PARSED[name])
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, data)
    return dumps(data)


KINDS = [("not valid TOML", "not valid TOML"), ("unknown key", "unknown key"), ("is missing", "missing key"),
         ("than or equal", "out of bounds"), ("greater than", "out of bounds"), ("less than", "out of bounds"),
         ("at most", "out of bounds"), ("is needed, not", "wrong type"), ("Input should be a valid", "wrong type"),
         ("finite", "not finite"), ("distinct", "splits exceed the question space"),
         ("model.max_positions", "context too short"), ("model.max_length", "context too short"),
         ("has no measurement", "unknown gate stat"), ("inspect.task_drift names", "unknown gate stat"),
         ("unknown", "unknown name"), ("should have at", "list too long or short"),
         ("Input should be '", "not one of the choices")]


def _kind(message: str) -> str:
    return next((kind for needle, kind in KINDS if needle in message), "inconsistent values")


def verdict(text: str) -> str:
    """ "accepted", "refused by the cost check" or "refused: <kind>"; any other exception propagates."""
    try:
        suite = parse_suite(text, "fuzz.toml")
    except SuiteError as e:
        msg = str(e)
        assert len(msg.splitlines()) == 1 and msg.startswith("fuzz.toml: "), msg
        return "refused: " + _kind(msg)
    try:
        check(estimate(suite), machine_limits(suite, OUT))
    except SuiteError as e:
        assert len(str(e).splitlines()) == 1, str(e)
        return "refused by the cost check"
    return "accepted"


@settings(max_examples=1000, deadline=1000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fuzzed_suites())
def test_fuzzed_suites_are_accepted_or_refused_in_one_line(text):
    t0 = time.perf_counter()
    COUNTS[verdict(text)] += 1
    assert time.perf_counter() - t0 < 1.0
    assert not OUT.exists()


def test_shipped_suites_round_trip_through_the_fuzzer_writer():
    for name, data in PARSED.items():
        assert tomllib.loads(dumps(data)) == data, name
        assert verdict(dumps(data)) == "accepted", name


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    t0 = time.perf_counter()
    settings(max_examples=n, deadline=1000, database=None, derandomize=True,
             suppress_health_check=list(HealthCheck))(given(fuzzed_suites())(
                 lambda text: COUNTS.update([verdict(text)])))()
    total = sum(COUNTS.values())
    accepted = COUNTS["accepted"]
    print(f"{total} fuzzed suites: {total - accepted} exit 2, {accepted} exit 0, 0 tracebacks "
          f"({time.perf_counter() - t0:.0f} s)")
    for kind, count in COUNTS.most_common():
        print(f"  {count:5d}  {kind}")
