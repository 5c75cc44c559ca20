"""The command line: a run from a config file, the round table, one-line errors with exit code 2."""

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import tiny_run_config

runner = CliRunner()


def write_config(tmp_path, data) -> str:
    path = tmp_path / "cfg.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_run_prints_the_round_table_and_show_reprints_it(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.cli.console", Console(width=200))
    cfg = write_config(tmp_path, tiny_run_config(rounds=1).model_dump(mode="json"))
    result = runner.invoke(app, ["run", "--config", cfg, "--out", str(tmp_path / "run"), "--no-cache"])
    assert result.exit_code == 0, result.output
    for header in ("test acc", "ood acc", "pool maj", "kept", "kept wrong", "conf wrong", "entropy", "sec"):
        assert header in result.output
    assert (tmp_path / "run/round-001/round.json").exists()
    shown = runner.invoke(app, ["show", str(tmp_path / "run")])
    assert shown.exit_code == 0 and "pool maj" in shown.output


@pytest.mark.parametrize("data, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "top level must be a JSON object"),
    ({"loop": {"k": 0}}, "field loop.k"),
    ({"loop": {"tau": 1.5}}, "field loop.tau"),
    ({"domain": {"misconception": "off_by_one"}}, "unknown misconception"),
    ({"domian": {}}, "field domian: Extra inputs are not permitted"),
    ({"base": {"steps": "many"}}, "field base.steps"),
])
def test_bad_config_gives_one_line_and_exit_2(tmp_path, data, message):
    cfg = write_config(tmp_path, data)
    result = runner.invoke(app, ["run", "--config", cfg, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "cfg.json" in lines[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_missing_config_file_and_missing_run_are_one_line_errors(tmp_path):
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "cannot read" in result.output
    result = runner.invoke(app, ["show", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest" in result.output
