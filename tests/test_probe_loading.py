"""Probes by path: `[probes] load`, `--probe-file`, `--param`, include/exclude, `loopprobe probes` on what
`report` accepts, and `loopprobe suite check` catching a gate typo before anything trains."""

import time

import pytest
from typer.testing import CliRunner

from harness.app.cli import app
from harness.app.suite import SuiteError, load_suite, parse_suite
from probes import ProbeError, load_probes, read_results, registry
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run

runner = CliRunner()

LONG_ANSWERS = '''
from probes import Probe, probe


@probe
class LongCompletions(Probe):
    """Share of pool samples longer than `limit` characters (a length drift)."""

    id, family = "user.long_completions", "drift"
    measurements = ("long_share", "long_share.delta_vs_round0", "long_share.delta_vs_previous")

    class Params(Probe.Params):
        limit: int = 60

    def measure(self, run):
        ids = run.samples(run.rounds[0]).question_ids

        def per_question(r):
            table = run.samples(r)
            return [sum(len(c) > self.params.limit for c in row) / len(row) for row in table.completions]

        return self.tracked("long_share", run, per_question, ids, concern="increase")
'''

SUITE = """
[suite]
name = "by_path"

[probes]
load = ["long_completions.py"]
include = ["drift.accuracy"]
"user.long_completions" = {{limit = {limit}}}

[[gates]]
probe = "user.long_completions"
stat = "{stat}"
max = 0.5
"""


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe_dir")
    (d / "long_completions.py").write_text(LONG_ANSWERS)
    return d


def test_a_file_is_loaded_once_and_its_probes_join_the_registry(probe_dir):
    first = load_probes(["long_completions.py"], probe_dir)
    again = load_probes([probe_dir / "long_completions.py"])
    assert [c.id for c in first] == ["user.long_completions"] and first == again
    assert registry()["user.long_completions"] is first[0]


@pytest.mark.parametrize("spec, message", [
    ("nowhere.py", "no such file"),
    ("no_such_module_xyz", "no such module"),
    ("json", "registers no probe"),
    ("bad name!", "not a module name"),
])
def test_bad_specs_are_one_line_errors(probe_dir, spec, message):
    with pytest.raises(ProbeError, match=message) as err:
        load_probes([spec], probe_dir)
    assert "\n" not in str(err.value)


def test_a_file_that_fails_to_import_is_named_with_its_error(tmp_path):
    (tmp_path / "broken.py").write_text("import numpy\nraise RuntimeError('half written')\n")
    with pytest.raises(ProbeError, match=r"broken.py: importing it failed \(RuntimeError: half written\)"):
        load_probes(["broken.py"], tmp_path)


def test_probes_is_additive_with_include_exclude_and_parameters(probe_dir):
    suite = load_suite(_write(probe_dir, limit=30))
    assert suite.probe_selection() == {"drift.accuracy": {}, "user.long_completions": {"limit": 30}}
    everything = parse_suite('[suite]\nname = "x"\n[probes]\n"cw.rate" = {tau = 0.6}\nexclude = ["drift.*"]')
    chosen = everything.probe_selection()
    assert chosen["cw.rate"] == {"tau": 0.6} and not any(p.startswith("drift.") for p in chosen)
    assert {p for p in registry() if not p.startswith("drift.")} <= set(chosen)  # the rest of the library


def test_load_paths_are_relative_to_the_suite_file(probe_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # elsewhere: the suite still finds its probe file
    assert "user.long_completions" in load_suite(_write(probe_dir, limit=30)).probe_selection()


def test_a_gate_typo_on_a_loaded_probe_is_caught_in_under_a_second_before_any_training(probe_dir):
    path = _write(probe_dir, limit=30, stat="long_shar")
    t0 = time.perf_counter()
    with pytest.raises(SuiteError, match="key gates.0.stat: probe user.long_completions has no measurement "
                                         "'long_shar'; did you mean 'long_share'"):
        load_suite(path)
    assert time.perf_counter() - t0 < 1.0
    result = runner.invoke(app, ["suite", "check", str(path)])
    assert result.exit_code == 2 and "did you mean 'long_share'" in result.output
    ok = runner.invoke(app, ["suite", "check", str(_write(probe_dir, limit=30))])
    assert ok.exit_code == 0 and "valid" in ok.output and "2 probes, 1 gates" in ok.output


def test_cli_param_and_probe_file_reach_the_suite(probe_dir, tmp_path):
    suite = load_suite(_write(probe_dir, limit=30), params=["user.long_completions.limit=80", "cw.rate.tau=0.7"])
    assert suite.probe_selection()["user.long_completions"] == {"limit": 80}
    assert suite.probe_selection()["cw.rate"] == {"tau": 0.7}
    with pytest.raises(SuiteError, match="key probes.cw.rate: parameter tau"):
        load_suite(_write(probe_dir, limit=30), params=["cw.rate.tau=7"])
    with pytest.raises(SuiteError, match="--param 'tau=1': write ID.KEY=VALUE"):
        load_suite(_write(probe_dir, limit=30), params=["tau=1"])
    plain = tmp_path / "plain.toml"
    plain.write_text('[suite]\nname = "plain"\n[probes]\ninclude = ["cw.rate"]\n')
    with_file = load_suite(plain, probe_files=[probe_dir / "long_completions.py"])
    assert set(with_file.probe_selection()) == {"cw.rate"}  # include still applies: name the probe to add it
    named = load_suite(plain, probe_files=[probe_dir / "long_completions.py"], params=["user.long_completions.limit=9"])
    assert named.probe_selection()["user.long_completions"] == {"limit": 9}


def test_the_probes_command_takes_a_run_a_condition_or_a_suite_output(probe_dir, tmp_path):
    out = tmp_path / "out"
    write_synthetic_run(out / "crank" / "seed-0", crank_rounds(3), n_pool=40, n_test=20, n_ood=10, n_ref=6)
    write_synthetic_run(out / "crank" / "seed-1", crank_rounds(3), n_pool=40, n_test=20, n_ood=10, n_ref=6, seed=1)
    write_synthetic_run(out / "clean" / "seed-0", clean_rounds(3), n_pool=40, n_test=20, n_ood=10, n_ref=6)
    file = str(probe_dir / "long_completions.py")
    for path, written in [(out / "crank" / "seed-0", ["crank/seed-0"]), (out / "crank", ["crank"]),
                          (out, ["clean", "crank"])]:
        result = runner.invoke(app, ["probes", str(path), "--probe-file", file, "--param",
                                     "user.long_completions.limit=5"])
        assert result.exit_code == 0, result.output
        for rel in written:  # only the file's probe, with the parameter given
            recorded = read_results(out / rel)
            assert [(p.id, p.params["limit"]) for p in recorded.probes] == [("user.long_completions", 5)]
            assert "long_share.delta_vs_round0" in {m.name for m in recorded.measurements}
    listed = runner.invoke(app, ["probes", "--probe-file", file])
    assert listed.exit_code == 0 and "user.long_completions" in listed.output and "cw.rate" not in listed.output
    bad = runner.invoke(app, ["probes", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "no such directory" in bad.output


def _write(probe_dir, limit, stat="long_share.delta_vs_round0"):
    path = probe_dir / f"suite_{limit}_{stat}.toml"
    path.write_text(SUITE.format(limit=limit, stat=stat))
    return path


def test_a_report_loads_a_recorded_probe_file_again(probe_dir, tmp_path):
    """A fresh process (no probe loaded) reports the probe a run recorded, from its unchanged file."""
    import json
    import subprocess
    import sys

    run = write_synthetic_run(tmp_path / "run", crank_rounds(2), n_pool=30, n_test=10, n_ood=6, n_ref=4)
    assert runner.invoke(app, ["probes", str(run), "--probe-file", str(probe_dir / "long_completions.py")]
                         ).exit_code == 0
    code = "import sys; from harness.app.cli import app; sys.argv[0] = 'loopprobe'; app()"
    done = subprocess.run([sys.executable, "-c", code, "report", str(run)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads((run / "report.json").read_text())
    assert "user.long_completions" in json.dumps(report)


def test_new_probe_writes_a_probe_and_controls_and_never_overwrites(tmp_path):
    result = runner.invoke(app, ["new-probe", "odd_lengths", "--family", "drift", "--dir", str(tmp_path),
                                 "--module", "acme.odd_lengths"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "odd_lengths.py").exists() and (tmp_path / "test_odd_lengths.py").exists()
    assert 'odd_lengths = "acme.odd_lengths:OddLengths"' in result.output
    assert '[probes] load = ["odd_lengths.py"]' in result.output
    again = runner.invoke(app, ["new-probe", "odd_lengths", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "never overwrites" in again.output
    bad = runner.invoke(app, ["new-probe", "x", "--family", "crank", "--dir", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown family 'crank'" in bad.output
