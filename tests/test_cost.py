"""Cost estimates and bounds: absurd suites are refused before any work, in one line naming file and key;
the shipped suites pass the check; the estimate of smoke is within a factor of its measured runtime; the
largest split a question space allows is exact; gate stats are known at load time."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from harness.app.cli import app
from harness.app.cost import (
    Limits,
    check,
    estimate,
    machine_limits,
    problems,
)
from harness.app.suite import SuiteError, load_suite, parse_suite
from harness.app.suite_probes import measurement_names
from harness.domains.arithmetic import ArithmeticConfig, ArithmeticDomain
from harness.domains.word_problems import WordProblemsConfig, WordProblemsDomain
from harness.models.sizes import tiny_parameters
from harness.models.tiny.model import TinyConfig
from tests.test_suite import HOLDS, TINY

runner = CliRunner()
SMOKE = Path("suites/smoke.toml").read_text()


def _with(section: str, lines: str, base: str = SMOKE) -> str:
    """smoke.toml with `lines` set in its [section] (created when absent; a key it has is replaced)."""
    head = f"\n[{section}]\n"
    if head not in base:
        return base.replace("\n[[gates]]", f"{head}{lines}\n\n[[gates]]", 1)
    before, after = base.split(head, 1)
    body, sep, rest = after.partition("\n[")
    for line in lines.splitlines():
        body = re.sub(rf"(?m)^{re.escape(line.split(' = ')[0])} = .*\n?", "", body)
    return f"{before}{head}{lines}\n{body}{sep}{rest}"


def test_smoke_estimate_bounds_its_measured_runtime_within_a_factor_of_four(monkeypatch):
    """An upper bound (every row costed at max_new_tokens, while the trained base ends most completions
    early and the sampler drops finished rows), but not a wild one."""
    measured = int(re.search(r"Runtime on a 2-core machine: (\d+) s", SMOKE).group(1))
    est = estimate(parse_suite(SMOKE))
    assert measured <= est.seconds <= measured * 4, (est.seconds, measured)
    assert est.parameters == tiny_parameters(TinyConfig()) == 1_062_528  # the measured default model
    assert est.runs == 1 and est.base_trainings == 0  # the default base ships with the package
    monkeypatch.setenv("LOOPPROBE_SHIPPED_BASE", "0")
    trained = estimate(parse_suite(SMOKE))
    assert trained.base_trainings == 1 and trained.seconds > est.seconds
    assert 0.5 * 2**30 < est.peak_memory_bytes < 2 * 2**30 and est.disk_bytes < 200 * 2**20
    line = est.describe()
    assert len(line.splitlines()) == 1 and "upper bound" in line and "min" in line


@pytest.mark.parametrize("path", sorted(Path("suites").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_suites_pass_the_cost_check_without_force(path, tmp_path):
    suite = load_suite(path)
    est = estimate(suite)
    check(est, machine_limits(suite, tmp_path / "out"))
    if suite.model.backend == "hf" and suite.model.gguf_package and est.parameters is not None:
        assert 130e6 < est.parameters < 140e6  # SmolLM2-135M from the GGUF header, no weights loaded


def test_conditions_sharing_a_base_train_it_once_when_cached(monkeypatch):
    suite = load_suite("suites/replace_vs_accumulate.toml")  # the default base (seed 0): it ships
    assert estimate(suite).base_trainings == 0 and estimate(suite, cache=False).base_trainings == 0
    monkeypatch.setenv("LOOPPROBE_SHIPPED_BASE", "0")
    assert estimate(suite).base_trainings == 1 and estimate(suite, cache=False).base_trainings == 3
    assert estimate(suite, seeds=[0, 1]).runs == 6


ABSURD = {  # the adversarial suites: each is refused before any work
    "k = 10**9": _with("loop", "k = 1000000000"),
    "k = 10**6": _with("loop", "k = 1000000"),
    "k beyond int64": _with("loop", "k = 100000000000000000000000"),
    "rounds = 10**9": _with("loop", "rounds = 1000000000"),
    "base steps = 10**9": _with("base", "steps = 1000000000"),
    "pool of 10**9": _with("domain", "pool_size = 1000000000"),
    "base-train of 10**9": _with("domain", "base_train_size = 1000000000"),
    "max_new_tokens = 10**6": _with("loop", "max_new_tokens = 1000000"),
    "epochs = 10**9": _with("loop", "epochs = 1000000000"),
    "base batch of 10**9": _with("base", "batch_size = 1000000000"),
    "pool beyond 1-digit addition": _with("domain", "max_digits = 1\npool_size = 50"),
    "pool_size = 10**6": _with("domain", "pool_size = 1000000"),
    "min = nan": SMOKE.replace("min = 0.25", "min = nan"),
    'max = "0.5"': SMOKE.replace("max = 0.05", 'max = "0.5"'),
    "tau = true": _with("loop", "tau = true"),
    "lr = inf": _with("loop", "lr = inf"),
    "temperature = inf": _with("loop", "temperature = inf"),
    "unknown gate stat": SMOKE.replace('stat = "unfinished"', 'stat = "unfinshed"'),
    "hidden not divisible by heads": _with("model", "hidden_size = 130"),
    "huge hidden size": _with("model", "hidden_size = 1000000"),
    "huge model": _with("model", "hidden_size = 4096\nnum_layers = 64\nintermediate_size = 16384\n"
                                 "max_positions = 4096"),
    "over max_hours": _with("suite", "max_hours = 0.01"),
}
WHERE = {"k = 10**9": "loop.k", "k beyond int64": "loop.k", "rounds = 10**9": "loop.rounds",
         "base steps = 10**9": "base.steps", "pool of 10**9": "domain.pool_size",
         "pool beyond 1-digit addition": "domain.pool_size", "min = nan": "gates.0.min", 'max = "0.5"': "gates.1.max",
         "tau = true": "loop.tau", "lr = inf": "loop.lr", "temperature = inf": "loop.temperature",
         "unknown gate stat": "gates.1.stat", "hidden not divisible by heads": "model.hidden_size",
         "huge model": "RAM", "over max_hours": "suite.max_hours", "max_new_tokens = 10**6": "loop.max_new_tokens"}


@pytest.mark.parametrize("name", list(ABSURD))
def test_absurd_suites_are_refused_before_any_work(name, tmp_path):
    suite, out = tmp_path / "absurd.toml", tmp_path / "out"
    suite.write_text(ABSURD[name])
    t0 = time.perf_counter()
    result = runner.invoke(app, ["run", str(suite), "--out", str(out), "--no-cache"])
    assert time.perf_counter() - t0 < 2.0
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(suite) in errors[0], result.output
    assert len(result.output.strip().splitlines()) <= 2  # at most the estimate line and the error
    assert WHERE.get(name, "") in errors[0]
    assert not out.exists()


def test_force_lets_an_over_budget_valid_suite_through_the_check(tmp_path, monkeypatch):
    from harness.artifacts import RunError

    def reached(*args, **kwargs):
        raise RunError("the run started")

    monkeypatch.setattr("harness.app.suite_runner.run_suite", reached)
    suite = tmp_path / "slow.toml"
    suite.write_text(ABSURD["over max_hours"])
    refused = runner.invoke(app, ["run", str(suite), "--out", str(tmp_path / "out")])
    assert refused.exit_code == 2 and "--force" in refused.output and "the run started" not in refused.output
    forced = runner.invoke(app, ["run", str(suite), "--out", str(tmp_path / "out"), "--force"])
    assert "the run started" in forced.output and "warning:" in forced.output, forced.output


def test_check_names_each_limit_and_force_skips_it(tmp_path):
    est = estimate(parse_suite(SMOKE))
    tight = Limits(memory_bytes=2**20, disk_free_bytes=1, disk_path=tmp_path, max_seconds=1.0)
    found = problems(est, tight)
    assert [("RAM" in p, "free at" in p, "suite.max_hours" in p) for p in found] == [
        (True, False, False), (False, True, False), (False, False, True)]
    with pytest.raises(SuiteError, match="--force") as err:
        check(est, tight)
    assert len(str(err.value).splitlines()) == 1 and "2 more limits exceeded" in str(err.value)
    check(est, tight, force=True)
    roomy = Limits(memory_bytes=2**40, disk_free_bytes=2**50, disk_path=tmp_path, max_seconds=1e9)
    check(est, roomy)


def test_machine_limits_read_ram_free_disk_and_max_hours(tmp_path):
    limits = machine_limits(parse_suite(_with("suite", "max_hours = 2")), tmp_path / "a" / "b")
    assert limits.disk_path == tmp_path and limits.max_seconds == 7200
    assert limits.memory_bytes > 2**30 and limits.disk_free_bytes > 0


@pytest.mark.parametrize("text,ok", [
    ("lr = 1", True), ("lr = 10", True), ("lr = 10.5", False), ("temperature = 10", True),
    ("temperature = 11", False), ("k = 1024", True), ("k = 1025", False), ("eval_k = 1025", False),
    ("rounds = 100", True), ("rounds = 101", False), ("epochs = 100", True), ("epochs = 101", False),
    ("batch_size = 4096", True), ("batch_size = 4097", False), ("steps = 1000000", True),
    ("steps = 1000001", False), ("k = 8.0", False), ("tau = 1", True), ("tau = false", False),
    ('k = "8"', False), ("temperature = nan", False), ("temperature = 1e-45", False), ("temperature = 0.001", True),
    ("temperature = 0", True),
])
def test_loop_bounds(text, ok):
    try:
        parse_suite(_with("loop", text))
    except SuiteError as e:
        assert not ok, e
        assert len(str(e).splitlines()) == 1 and "key loop." in str(e)
    else:
        assert ok, text


def test_tiny_context_must_hold_prompt_and_completion():
    with pytest.raises(SuiteError, match=r"key loop.max_new_tokens: .*largest valid max_new_tokens is 115"):
        parse_suite(_with("loop", "max_new_tokens = 116"))
    parse_suite(_with("loop", "max_new_tokens = 115"))
    with pytest.raises(SuiteError, match=r"key conditions.0.loop.max_new_tokens"):
        parse_suite(SMOKE + '\n[[conditions]]\nname = "long"\nloop = { max_new_tokens = 500 }\n')
    with pytest.raises(SuiteError, match=r"key model.hidden_size: .*even head size"):
        parse_suite(_with("model", "hidden_size = 132\nnum_heads = 4"))  # head size 33
    parse_suite(_with("model", "hidden_size = 136\nnum_heads = 4"))


@pytest.mark.parametrize("max_digits,seed", [(1, 0), (1, 3), (2, 1)])
def test_the_largest_valid_pool_is_exact(max_digits, seed):
    sizes = {"max_digits": max_digits, "base_train_size": 10, "ood_train_size": 5, "base_val_size": 10,
             "test_size": 7, "ood_size": 6, "reference_size": 8}
    with pytest.raises(ValidationError, match=r"pool_size: .*the largest valid pool_size is \d+") as err:
        ArithmeticConfig(**sizes, pool_size=10**6)
    largest = int(re.search(r"largest valid pool_size is (\d+)", str(err.value)).group(1))
    s = ArithmeticDomain(ArithmeticConfig(**sizes, pool_size=largest), seed=seed).splits()
    assert (len(s.pool), len(s.test), len(s.base_val), len(s.ood), len(s.reference)) == (largest, 7, 10, 6, 8)
    assert len({q.id for q in s.pool + s.test + s.base_val}) == largest + 17  # disjoint, nothing shrunk
    with pytest.raises(ValidationError, match="pool_size"):
        ArithmeticConfig(**sizes, pool_size=largest + 1)


def test_the_largest_valid_subtraction_and_word_problem_splits_are_exact():
    sizes = {"max_digits": 1, "base_train_size": 10, "ood_train_size": 5, "base_val_size": 10, "pool_size": 3,
             "test_size": 7, "reference_size": 8}
    with pytest.raises(ValidationError, match=r"ood_size: there are only 55 distinct 1-digit subtraction") as err:
        ArithmeticConfig(**sizes, ood_size=100)
    largest = int(re.search(r"largest valid ood_size is (\d+)", str(err.value)).group(1))
    assert largest == 55 - 5 - 2 and len(ArithmeticDomain(ArithmeticConfig(**sizes, ood_size=largest)).splits().ood
                                         ) == largest
    words = {"max_number": 6, "max_factor": 4, "base_train_size": 10, "base_val_size": 3, "pool_size": 5,
             "reference_size": 2, "ood_size": 4}
    with pytest.raises(ValidationError, match="do not fit the number ranges") as err:
        WordProblemsConfig(**words, test_size=10**4)
    largest = int(re.search(r"largest valid test_size is (\d+)", str(err.value)).group(1))
    assert len(WordProblemsDomain(WordProblemsConfig(**words, test_size=largest)).splits().test) == largest
    with pytest.raises(ValidationError):
        WordProblemsConfig(**words, test_size=largest + 1)


@pytest.mark.parametrize("max_digits", [1, 2, 3])
def test_text_length_bounds_hold_on_generated_splits(max_digits):
    cfg = ArithmeticConfig(max_digits=max_digits, base_train_size=40, ood_train_size=20, base_val_size=10,
                           pool_size=20, test_size=10, ood_size=10, reference_size=4, hint_share=0.2)
    lengths, domain = cfg.text_lengths(), ArithmeticDomain(cfg, seed=0)
    s = domain.splits()
    assert max(len(q.prompt) for q in s.pool + s.test + s.ood) <= lengths["prompt"]
    assert max(len(domain.hint_prompt(q)) for q in s.pool) <= lengths["hint_prompt"]
    assert max(len(e.completion) for e in s.base_train) <= lengths["completion"]
    w = WordProblemsConfig(base_train_size=100, pool_size=20, ood_train_size=20)
    wl, wd = w.text_lengths(), WordProblemsDomain(w, seed=0)
    ws = wd.splits()
    assert max(len(q.prompt) for q in ws.pool + ws.test + ws.ood) <= wl["prompt"]
    assert max(len(e.completion) for e in ws.base_train) <= wl["completion"]
    assert max(len(wd.hint_prompt(q)) for q in ws.pool) <= wl["hint_prompt"]


def test_gate_stat_names_match_what_a_real_run_measures(tmp_path):
    """measurement_names (from a synthetic run) holds every name the whole library measures on a real run."""
    from harness.app.suite_runner import run_suite

    text = TINY.format(seeds="[3]", gates=HOLDS).replace("rounds = 1", "rounds = 2")
    text = text.split("[probes]")[0] + HOLDS
    text = text.replace("reference_size = 8", 'reference_size = 8\nmisconception = "drop_carry_tens"\n'
                                               "misconception_rate = 0.2")
    outcome = run_suite(parse_suite(text), tmp_path / "out", None)
    measured = {}
    for m in outcome.conditions["default"].measurements:
        measured.setdefault(m.probe, set()).add(m.name)
    for probe, names in measured.items():
        known = measurement_names(probe)
        if probe == "inspect.task_drift":
            assert known is None and names == {"score"}
        else:
            assert names <= known, (probe, names - known)


def test_inspect_task_drift_stats_are_checked_by_their_task_prefix():
    text = Path("suites/smollm2_cpu.toml").read_text()
    parse_suite(text)
    bad = text.replace('stat = "deference.', 'stat = "deferenc.') if 'stat = "deference.' in text else None
    if bad is None:
        bad = text + '\n[[gates]]\nprobe = "inspect.task_drift"\nstat = "deferenc.claim.adopted"\nmax = 1\n'
    with pytest.raises(SuiteError, match=r"key gates\.\d+\.stat: inspect.task_drift names its measurements"):
        parse_suite(bad)


def test_verify_suites_checks_every_suite_before_running_any(tmp_path, monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("verify-suites ran a suite")

    monkeypatch.setattr("harness.app.verify.verify", reached)
    slow = tmp_path / "slow.toml"
    slow.write_text(ABSURD["over max_hours"])
    result = runner.invoke(app, ["verify-suites", str(slow), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "suite.max_hours" in result.output and "--force" in result.output
    assert not (tmp_path / "out").exists()


def test_a_seed_beyond_the_bounds_is_one_line(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(SMOKE)
    result = runner.invoke(app, ["run", str(suite), "--out", str(tmp_path / "out"), "--seed", str(2**40)])
    assert result.exit_code == 2 and "seed" in result.output and len(result.output.strip().splitlines()) == 1
