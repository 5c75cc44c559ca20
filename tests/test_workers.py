"""`--workers`: a suite's runs in separate single-thread processes give the artifacts a sequential run gives
(timings aside), train a shared base model once, and resume per run."""

import json

import pytest
from typer.testing import CliRunner

from harness.app.cli import app
from harness.app.suite import parse_suite
from harness.app.suite_runner import run_suite
from tests.test_reliability import snapshot
from tests.test_suite import HOLDS, TAU_ARMS, TINY

TWO_ARMS = TINY.format(seeds="[3]", gates=HOLDS) + TAU_ARMS


def test_two_workers_write_what_one_writes_and_train_the_shared_base_once(tmp_path):
    suite = parse_suite(TWO_ARMS)
    one = run_suite(suite, tmp_path / "one", tmp_path / "cache-one")
    two = run_suite(suite, tmp_path / "two", tmp_path / "cache-two", workers=2)
    assert one.passed and two.passed
    files_one, _ = snapshot(tmp_path / "one")
    files_two, hidden = snapshot(tmp_path / "two")
    assert sorted(files_one) == sorted(files_two)
    assert [rel for rel in files_one if files_one[rel] != files_two[rel]] == []
    assert {h.rpartition("/")[2] for h in hidden} == {".loopprobe.lock"}
    cached = [json.loads((tmp_path / "two" / c / "seed-3" / "manifest.json").read_text())["base_model"]["cached"]
              for c in ("tau05", "tau09")]
    assert sorted(cached) == [False, True]  # one trained it, the other waited for it and loaded it
    assert len([p for p in (tmp_path / "cache-two").iterdir() if not p.name.startswith(".")]) == 1


def test_the_cli_runs_a_suite_with_workers_and_resumes(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(TWO_ARMS)
    args = ["run", str(path), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--workers", "2"]
    first = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "2 runs in 2 processes" in first.output and "[tau09/seed-3]" in first.output
    assert "[tau05] probes:" in first.output and "[tau09] probes:" in first.output  # probed in the workers
    assert "recomputed" not in first.output  # and found current by the check that follows
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})  # everything recorded: each run resumes
    assert again.exit_code == 0 and "rounds 0..1 complete" in again.output, again.output


@pytest.mark.slow
def test_a_local_ray_writes_what_one_process_writes(tmp_path):
    pytest.importorskip("ray")
    suite = parse_suite(TWO_ARMS)
    one = run_suite(suite, tmp_path / "one", tmp_path / "cache-one")
    on_ray = run_suite(suite, tmp_path / "ray", tmp_path / "cache-ray", workers=2, ray="local")
    assert one.passed and on_ray.passed
    files_one, _ = snapshot(tmp_path / "one")
    files_ray, _ = snapshot(tmp_path / "ray")
    assert sorted(files_one) == sorted(files_ray)
    assert [rel for rel in files_one if files_one[rel] != files_ray[rel]] == []
