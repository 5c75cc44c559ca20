"""The command line: a suite run prints the round table; show reprints it; errors are one line, exit 2."""

from rich.console import Console
from typer.testing import CliRunner

from harness.app.cli import app
from tests.test_suite import HOLDS, tiny_suite

runner = CliRunner()


def test_run_prints_the_round_table_and_show_reprints_it(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.app.cli.console", Console(width=200))
    suite = tiny_suite(tmp_path, HOLDS)
    result = runner.invoke(app, ["run", str(suite), "--out", str(tmp_path / "out"), "--no-cache"])
    assert result.exit_code == 0, result.output
    for header in ("test acc", "ood acc", "pool maj", "kept", "kept wrong", "conf wrong", "entropy", "sec"):
        assert header in result.output
    run = tmp_path / "out" / "default" / "seed-3"
    assert (run / "round-001/round.json").exists()
    shown = runner.invoke(app, ["show", str(run)])
    assert shown.exit_code == 0 and "pool maj" in shown.output


def test_seed_option_runs_one_seed(tmp_path):
    suite = tiny_suite(tmp_path, HOLDS, seeds="[3, 4]")
    result = runner.invoke(app, ["run", str(suite), "--out", str(tmp_path / "out"), "--no-cache", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out" / "default").iterdir() if p.is_dir()] == ["seed-5"]


def test_missing_suite_file_and_missing_run_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "cannot read" in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["show", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest" in result.output
    result = runner.invoke(app, ["check", str(tmp_path / "nothing"), "suites/smoke.toml"])
    assert result.exit_code == 2 and "no run for condition 'default'" in result.output


def test_default_suite_is_smoke():
    from harness.app.cli import DEFAULT_SUITE
    from harness.app.shipped import resolve_suite

    assert DEFAULT_SUITE == "smoke" and resolve_suite(DEFAULT_SUITE).name == "smoke.toml"
