"""Suites: validation with one-line errors, gates and exit codes, pooling over seeds, check, CI outputs."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.app.cli import app
from harness.app.suite import SuiteError, load_suite, parse_suite
from harness.app.suite_runner import check_suite, run_suite
from probes import PooledRunView, RunView, get_probe

TINY = """
[suite]
name = "tiny"
seeds = {seeds}

[domain]
max_digits = 2
base_train_size = 600
ood_train_size = 100
base_val_size = 10
pool_size = 24
test_size = 12
ood_size = 12
reference_size = 8

[model]
hidden_size = 32
num_layers = 2
num_heads = 2
intermediate_size = 64

[base]
steps = 40
batch_size = 32
lr = 3e-3
warmup = 5

[loop]
rounds = 1
k = 4
eval_k = 2
tau = 0.25
lr = 1e-3

[probes]
include = ["cw.rate", "attractor.answer_entropy", "drift.accuracy", "drift.length"]

{gates}
"""
# the tiny model parses nothing, so its accuracy and vote measurements are degenerate: gate on lengths
HOLDS = '[[gates]]\nprobe = "drift.length"\nstat = "length"\nmax = 1000.0\n'
TAU_ARMS = """
[[conditions]]
name = "tau05"
loop = {tau = 0.5}

[[conditions]]
name = "tau09"
loop = {tau = 0.9}
"""  # two arms that share a base model (tests/test_verdicts.py, tests/test_workers.py)
FAILS = '[[gates]]\nprobe = "drift.length"\nstat = "length"\nmax = 0.0\n'
runner = CliRunner()


def tiny_suite(tmp_path, gates=HOLDS, seeds="[3]", name="tiny.toml"):
    path = tmp_path / name
    path.write_text(TINY.format(seeds=seeds, gates=gates))
    return path


@pytest.mark.parametrize("path", sorted(Path("suites").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_suite_is_valid_and_documented(path):
    suite = load_suite(path)
    header = path.read_text().split("\n[", 1)[0]
    assert suite.suite.name == path.stem and "Question:" in header
    assert (("Found" in header or "Expected" in header) and "Runtime" in header) or "INCOMPLETE" in header
    assert "RUNTIME_AND_OUTCOME" not in header  # measured, not a placeholder
    for condition in suite.condition_names():
        suite.run_config(condition, suite.suite.seeds[0])


def test_the_shipped_suites_are_valid():
    smoke = load_suite("suites/smoke.toml")
    assert smoke.suite.name == "smoke" and smoke.loop.rounds == 2 and smoke.gates
    assert len(smoke.probe_selection()) >= 16  # the whole library
    cfg = smoke.run_config("default", 0)
    assert cfg.domain.pool_size >= 500 and cfg.loop.k >= 8


def test_conditions_override_the_shared_settings():
    suite = parse_suite(TINY.format(seeds="[1]", gates="") + """
[[conditions]]
name = "noisy"
domain = {answer_noise = 0.4}

[[conditions]]
name = "crank"
domain = {misconception = "drop_carry_tens", misconception_rate = 0.2}
loop = {tau = 0.5}
""")
    assert suite.condition_names() == ["noisy", "crank"]
    assert suite.run_config("noisy", 1).domain.answer_noise == 0.4
    crank = suite.run_config("crank", 1)
    assert crank.domain.misconception == "drop_carry_tens" and crank.loop.tau == 0.5 and crank.domain.max_digits == 2


MALFORMED = [
    ("[suite\nname = 'x'", "not valid TOML"),
    ("name = 'x'", "key suite: required key is missing"),
    ("[suite]\nseeds = [0]", "key suite.name: required key is missing"),
    ("[suite]\nname = ''", "key suite.name"),
    ("[suite]\nname = 'x'\nseeds = []", "key suite.seeds"),
    ("[suite]\nname = 'x'\nseeds = [1, 1]", "seeds must be distinct"),
    ("[suite]\nname = 'x'\nseeds = [-1]", "seeds must be >= 0"),
    ("[suite]\nname = 'x'\nseeds = 'zero'", "key suite.seeds"),
    ("[suite]\nname = 'x'\nnmae = 'y'", "key suite.nmae: unknown key; did you mean 'name'?"),
    ("[suite]\nname = 'x'\n[loops]\nrounds = 2", "key loops: unknown key; did you mean 'loop'?"),
    ("[suite]\nname = 'x'\n[loop]\nround = 2", "key loop.round: unknown key; did you mean 'rounds'?"),
    ("[suite]\nname = 'x'\n[loop]\nrounds = -1", "key loop.rounds"),
    ("[suite]\nname = 'x'\n[loop]\nrounds = 'two'", "key loop.rounds"),
    ("[suite]\nname = 'x'\n[loop]\ntau = 1.5", "key loop.tau"),
    ("[suite]\nname = 'x'\n[loop]\nk = 0", "key loop.k"),
    ("[suite]\nname = 'x'\n[loop]\ntemperature = -0.1", "key loop.temperature"),
    ("[suite]\nname = 'x'\n[loop]\ndata_policy = 'keep'", "key loop.data_policy"),
    ("[suite]\nname = 'x'\n[domain]\nmax_digit = 3", "key domain.max_digit: unknown key; did you mean 'max_digits'?"),
    ("[suite]\nname = 'x'\n[domain]\nmin_digits = 3\nmax_digits = 2", "min_digits (3) must not exceed"),
    ("[suite]\nname = 'x'\n[domain]\nmisconception = 'off_by_one'", "unknown misconception 'off_by_one'"),
    ("[suite]\nname = 'x'\n[domain]\nanswer_noise = 2", "key domain.answer_noise"),
    ("[suite]\nname = 'x'\n[domain]\nname = 'chess'", "key domain.name"),
    ("[suite]\nname = 'x'\n[model]\nbackend = 'gpt'", "key model.backend"),
    ("[suite]\nname = 'x'\n[model]\nhidden = 64", "key model.hidden: unknown key; did you mean 'hidden_size'?"),
    ("[suite]\nname = 'x'\n[base]\nsteps = 0", "key base.steps"),
    ("[suite]\nname = 'x'\n[base]\ntarget_accuracy = 1.5", "key base.target_accuracy"),
    ("[suite]\nname = 'x'\n[probes]\n'cw.rat' = {}", "unknown probe 'cw.rat'; did you mean 'cw.rate'?"),
    ("[suite]\nname = 'x'\n[probes]\n'cw.rate' = {tau = 2}", "key probes.cw.rate: parameter tau"),
    ("[suite]\nname = 'x'\n[probes]\n'cw.rate' = {taux = 0.5}", "key probes.cw.rate: parameter taux"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nstat = 'rate'", "a gate needs max or min"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nstat = 'rate'\nmin = 2\nmax = 1", "min (2.0) exceeds max"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rte'\nstat = 'rate'\nmax = 1", "key gates.0.probe: unknown probe"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nmax = 1", "key gates.0.stat: required key is missing"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nstat = 'rate'\nmax = 1\nuse = 'mean'", "key gates.0.use"),
    ("[suite]\nname = 'x'\n[probes]\ninclude = ['cw.rate']\n[[gates]]\nprobe = 'drift.length'\nstat = 'length'\nmax = 1",
     "is gated but not run"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nstat = 'rate'\nmax = 1\ncondition = 'nope'",
     "key gates.0.condition: unknown condition 'nope'"),
    ("[suite]\nname = 'x'\n[probes]\ninclude = ['cw.rte*']", "key probes.include.0: 'cw.rte*' matches no probe"),
    ("[suite]\nname = 'x'\n[probes]\nexclude = ['drift.acuracy']",
     "key probes.exclude.0: 'drift.acuracy' matches no probe; did you mean 'drift.accuracy'?"),
    ("[suite]\nname = 'x'\n[probes]\nexclude = ['cw.*']\n'cw.rate' = {tau = 0.6}",
     "key probes.cw.rate: parameters for a probe that probes.exclude removes"),
    ("[suite]\nname = 'x'\n[probes]\n'cw.rate' = 3", "a probe's parameters are a table"),
    ("[suite]\nname = 'x'\n[probes]\nload = 'mine.py'", "key probes.load"),
    ("[suite]\nname = 'x'\n[probes]\nload = ['missing_probe.py']", "key probes.load.0: probe file"),
    ("[suite]\nname = 'x'\n[probes]\nload = ['no_such_module_xyz']", "key probes.load.0: probe module"),
    ("[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nstat = 'rte'\nmax = 1",
     "key gates.0.stat: probe cw.rate has no measurement 'rte'; did you mean 'rate'?"),
    ("[suite]\nname = 'x'\n[[conditions]]\nname = 'a'\nloop = {tua = 0.5}",
     "key conditions.0.loop.tua: unknown key; did you mean 'tau'?"),
    ("[suite]\nname = 'x'\n[[conditions]]\nname = 'a'\ndomain = {answer_noise = -1}", "key conditions.0.domain.answer_noise"),
    ("[suite]\nname = 'x'\n[[conditions]]\nname = 'a'\n[[conditions]]\nname = 'a'", "condition names must be distinct"),
    ("[suite]\nname = 'x'\n[[conditions]]\nname = 'a b'", "key conditions.0.name"),
]


@pytest.mark.parametrize("text, message", MALFORMED)
def test_malformed_suites_give_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{path}: ") and message in line, line
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert next(x for x in result.output.splitlines() if x.strip()).startswith("error:")
    assert not (tmp_path / "out").exists()


def test_missing_and_binary_suite_files_are_one_line_errors(tmp_path):
    with pytest.raises(SuiteError, match="cannot read"):
        load_suite(tmp_path / "none.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SuiteError, match="not a text file"):
        load_suite(tmp_path / "bin.toml")


keys = st.text(st.characters(whitelist_categories=("Ll",), whitelist_characters="_"), min_size=1, max_size=12)
values = st.one_of(st.integers(-5, 5), st.floats(-2, 2, allow_nan=False), st.text(max_size=5), st.booleans(),
                   st.lists(st.integers(-2, 2), max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["suite", "domain", "model", "base", "loop", "gates_table"]), keys, values)
def test_generated_malformed_suites_never_raise_anything_but_one_line(section, key, value):
    if section == "gates_table":
        text = f"[suite]\nname = 'x'\n[[gates]]\nprobe = 'cw.rate'\nstat = 'rate'\n{key} = {value!r}"
    else:
        text = ("" if section == "suite" else "[suite]\nname = 'x'\n") + f"[{section}]\n{key} = {value!r}"
        if section == "suite":
            text = f"[suite]\nname = 'x'\n{key} = {value!r}"
    text = text.replace("True", "true").replace("False", "false")
    try:
        parse_suite(text, "gen.toml")
    except SuiteError as e:
        assert "\n" not in str(e) and str(e).startswith("gen.toml: ")


@pytest.fixture(scope="module")
def two_seed_outcome(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    suite = parse_suite(TINY.format(seeds="[3, 4]", gates=HOLDS))
    return suite, root, run_suite(suite, root / "out", root / "cache")


def test_a_suite_run_lays_out_runs_and_holds_its_gates(two_seed_outcome):
    _suite, root, outcome = two_seed_outcome
    assert outcome.passed and len(outcome.gates) == 1
    for seed in (3, 4):
        assert RunView(root / "out" / "default" / f"seed-{seed}").rounds == (0, 1)
    assert (root / "out" / "suite.json").exists() and (root / "out" / "default" / "probes.json").exists()


def test_pooling_two_seeds_narrows_the_ci(two_seed_outcome):
    _, root, _ = two_seed_outcome
    runs = [RunView(root / "out" / "default" / f"seed-{s}") for s in (3, 4)]
    pooled = PooledRunView(runs)
    assert pooled.samples(0).n_items == sum(r.samples(0).n_items for r in runs)

    def width(view):
        m = {x.name: x for x in get_probe("drift.length")().measure(view)}["length.delta_vs_round0"]
        return m.ci_high - m.ci_low

    assert 0 < width(pooled) < min(width(r) for r in runs)


def test_check_reevaluates_gates_without_running_the_loop(two_seed_outcome, tmp_path):
    suite, root, _ = two_seed_outcome
    failing = parse_suite(TINY.format(seeds="[3, 4]", gates=FAILS))
    outcome = check_suite(failing, root / "out")
    assert not outcome.passed and "above max" in outcome.gates[0].message
    single = check_suite(suite, root / "out" / "default" / "seed-3")  # one run directory
    assert single.passed and single.conditions["default"].rounds == [0, 1]


def test_cli_exit_codes_junit_and_summary(two_seed_outcome, tmp_path):
    _, root, _ = two_seed_outcome
    ok = tiny_suite(tmp_path, HOLDS, seeds="[3, 4]", name="ok.toml")
    bad = tiny_suite(tmp_path, FAILS, seeds="[3, 4]", name="bad.toml")
    out = str(root / "out")
    result = runner.invoke(app, ["check", out, str(ok), "--junit", str(tmp_path / "ok.xml"),
                                 "--summary", str(tmp_path / "ok.md")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output
    xml = ET.parse(tmp_path / "ok.xml").getroot()
    assert xml.get("tests") == "1" and xml.get("failures") == "0"
    assert "PASSED" in (tmp_path / "ok.md").read_text()

    result = runner.invoke(app, ["check", out, str(bad), "--junit", str(tmp_path / "bad.xml"),
                                 "--summary", str(tmp_path / "bad.md")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "gate failed:" in result.output and "drift.length: length <= 0: above max" in result.output
    case = ET.parse(tmp_path / "bad.xml").getroot().find("testsuite/testcase")
    failure = case.find("failure")
    assert failure is not None and "95% CI" in failure.get("message")
    assert "FAILED" in (tmp_path / "bad.md").read_text() and "❌" in (tmp_path / "bad.md").read_text()


def test_run_with_a_violated_gate_exits_1_with_a_readable_message(tmp_path):
    bad = tiny_suite(tmp_path, FAILS, seeds="[3]")
    result = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "out"), "--no-cache"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "gate failed: [default] drift.length: length <= 0: above max; value" in result.output


def test_a_gate_on_an_unknown_measurement_is_a_usage_error(two_seed_outcome, tmp_path):
    _, root, _ = two_seed_outcome
    gate = '[[gates]]\nprobe = "cw.rate"\nstat = "rates"\nmax = 1.0\n'
    result = runner.invoke(app, ["check", str(root / "out"), str(tiny_suite(tmp_path, gate, seeds="[3, 4]"))])
    assert result.exit_code == 2 and "no measurement 'rates'; did you mean 'rate'?" in result.output
