"""The loop end to end on a tiny configuration: artifacts, determinism, resume, the base-model cache."""

import json
import os
import shutil

import pytest

from harness.artifacts import RoundRecord, RunError, RunStore, SampleRow, SelectedRow, read_jsonl
from harness.loop import run_loop
from tests.conftest import tiny_run_config

FILES = ["eval.jsonl", "reference.jsonl", "samples.jsonl", "selected.jsonl"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    run_loop(tiny_run_config(), out, tmp_path_factory.mktemp("cache"))
    return out


def test_every_round_writes_its_artifacts_and_marks_completion_last(tiny_run):
    store = RunStore(tiny_run)
    manifest = store.read_manifest()
    assert manifest.seed == 3 and manifest.versions["torch"] and manifest.config["loop"]["rounds"] == 2
    assert store.complete_rounds() == [0, 1, 2]
    for r in range(3):
        d = store.round_dir(r)
        rec = RoundRecord.model_validate_json((d / "round.json").read_text())
        assert (d / "model" / "model.safetensors").exists()
        for name in FILES:
            assert (d / name).exists() and name in rec.files
            # round.json is written after the files it describes
            assert os.stat(d / "round.json").st_mtime_ns >= os.stat(d / name).st_mtime_ns
        samples = read_jsonl(d / "samples.jsonl", SampleRow)
        assert len(samples) == 24 * 4 and {s.round for s in samples} == {r}
        assert all(s.correct == (s.parsed_answer == s.truth) for s in samples)
        assert (rec.training is None) == (r == 0)
        assert not any(d.glob(".*tmp*"))
    assert RunStore(tiny_run).read_round(1).training["examples"] == len(
        read_jsonl(store.round_dir(0) / "selected.jsonl", SelectedRow))


def test_same_seed_gives_byte_identical_samples(tiny_run, tmp_path):
    run_loop(tiny_run_config(), tmp_path / "b", None)  # no cache: the base model is trained again
    for r in range(3):
        for name in FILES:
            a = (tiny_run / f"round-{r:03d}" / name).read_bytes()
            assert a == (tmp_path / "b" / f"round-{r:03d}" / name).read_bytes(), (r, name)


def test_another_seed_gives_other_samples(tiny_run, tmp_path):
    cfg = tiny_run_config().model_copy(update={"seed": 4})
    run_loop(cfg.model_copy(update={"loop": cfg.loop.model_copy(update={"rounds": 0})}), tmp_path / "c", None)
    assert (tmp_path / "c/round-000/samples.jsonl").read_bytes() != (tiny_run / "round-000/samples.jsonl").read_bytes()


def test_a_killed_run_resumes_to_the_same_artifacts(tiny_run, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(tiny_run, out)
    # Simulate a kill in the middle of round 2: its files half there, no round.json.
    (out / "round-002" / "round.json").unlink()
    (out / "round-002" / "samples.jsonl").write_text('{"truncated": ')
    run_loop(tiny_run_config(), out, None)
    for name in FILES:
        assert (out / "round-002" / name).read_bytes() == (tiny_run / "round-002" / name).read_bytes()


def test_resuming_with_another_config_is_refused(tiny_run, tmp_path):
    out = tmp_path / "other"
    shutil.copytree(tiny_run, out)
    with pytest.raises(RunError, match="manifest.json: field config_hash"):
        run_loop(tiny_run_config(tau=0.9), out, None)


def test_a_non_run_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not a loopprobe run"):
        run_loop(tiny_run_config(), tmp_path, None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_second_run_reuses_the_cached_base_model(tmp_path):
    cfg = tiny_run_config(rounds=0)
    run_loop(cfg, tmp_path / "r1", tmp_path / "cache")
    run_loop(cfg, tmp_path / "r2", tmp_path / "cache")
    m1 = json.loads((tmp_path / "r1/manifest.json").read_text())["base_model"]
    m2 = json.loads((tmp_path / "r2/manifest.json").read_text())["base_model"]
    assert (m1["cached"], m2["cached"]) == (False, True) and m1["key"] == m2["key"]
    entries = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]  # less lock files
    assert m1["val_accuracy"] == m2["val_accuracy"] and entries == [m1["key"]]
    assert (tmp_path / "r1/round-000/samples.jsonl").read_bytes() == (tmp_path / "r2/round-000/samples.jsonl").read_bytes()
