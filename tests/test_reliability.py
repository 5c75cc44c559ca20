"""Fault injection: a run killed anywhere resumes to the same artifacts; every kind of damaged artifact is
caught by name; a failed round is recorded and never passes; one writer per run; unwritable paths are
refused before work. (`pytest -m slow tests/test_reliability.py` tries more kill points.)

Kills are real SIGKILLs at named points of the code (harness.faults), in a forked copy of this process (no
8 s of imports per run); the points are drawn with a seeded generator from every place a reference run
reaches, so each test run tries the same ones.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness import faults
from harness.app.cli import app
from harness.loop import _training_failure

runner = CliRunner()

SUITE = """
[suite]
name = "faults"
seeds = [3]
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
rounds = 2
k = 4
eval_k = 2
select = "none"
lr = {lr}
{extra}
[probes]
include = ["drift.accuracy", "cw.rate", "drift.length"]
[[gates]]  # the tiny model parses nothing: its accuracy and vote measurements are degenerate
probe = "drift.length"
stat = "length"
max = 1000.0
"""
# What a rerun may change without changing any result: timings, the creation time, whether the base came
# from the cache, and the checksums that cover those.
VOLATILE = {"seconds", "created", "checksum", "cached", "load_seconds", "train_seconds"}


def suite_file(directory: Path, lr: float = 1e-3, extra: str = "") -> Path:
    path = Path(directory) / "faults.toml"
    path.write_text(SUITE.format(lr=lr, extra=extra))
    return path


def _child(args: list[str], plan: str, counts_file: str | None) -> None:
    faults.arm(plan)
    result = runner.invoke(app, args)
    if counts_file:
        Path(counts_file).write_text(json.dumps(faults.counts()))
    os._exit(result.exit_code)


def run_cli(args: list[str], plan: str = "", counts_file: Path | None = None, timeout: float = 300) -> int:
    """`loopprobe ARGS` in a forked process armed with a fault plan; its exit code (-9 when killed)."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(args, plan, counts_file and str(counts_file)))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        raise AssertionError(f"loopprobe {args} did not finish in {timeout} s")
    return proc.exitcode


def _normalise(value):
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def snapshot(root: Path) -> tuple[dict[str, object], list[str]]:
    """(relative path -> bytes, or JSON less volatile keys), hidden files left behind)."""
    files, hidden = {}, []
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            hidden.append(rel)
            continue
        if path.is_file():
            files[rel] = _normalise(json.loads(path.read_text())) if path.suffix == ".json" else path.read_bytes()
    return files, hidden


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the fault suite, and how often it reached each fault point."""
    d = tmp_path_factory.mktemp("reference")
    suite = suite_file(d)
    code = run_cli(["run", str(suite), "--out", str(d / "out"), "--cache-dir", str(d / "cache")], "count",
                   d / "counts.json")
    assert code == 0
    return suite, d / "out", json.loads((d / "counts.json").read_text())


def kill_points(counts: dict[str, int], n: int, seed: int) -> list[tuple[str, int]]:
    """n distinct (point, hit) pairs: a point drawn uniformly, then one of its hits."""
    rng = np.random.default_rng(seed)
    points, chosen = sorted(counts), set()
    while len(chosen) < min(n, sum(counts.values())):
        p = points[rng.integers(len(points))]
        chosen.add((p, int(rng.integers(1, counts[p] + 1))))
    return sorted(chosen)


def kill_and_resume(reference, tmp_path: Path, point: str, hit: int) -> tuple[int, int, list[str]]:
    """Kill a run at `point`@`hit`, resume it; (exit code of the killed run, of the resume, what differs
    from the uninterrupted run or was left behind: empty when the resume is identical)."""
    suite, ref_out, _ = reference
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["run", str(suite), "--out", str(out), "--cache-dir", str(cache)]
    killed, resumed = run_cli(args, f"{point}@{hit}"), run_cli(args)
    got, hidden = snapshot(out)
    want, _ = snapshot(ref_out)
    differs = sorted(set(got) ^ set(want)) + [rel for rel in want if rel in got and got[rel] != want[rel]]
    differs += [h for h in hidden if Path(h).name != ".loopprobe.lock"]  # temporaries left behind
    differs += [f"cache/{p.name}" for p in cache.iterdir()  # a temporary left behind (a key's lock file is kept)
                if p.name.startswith(".") and not p.name.endswith(".lock")]
    return killed, resumed, differs


# Three points in the default run (one per family: a file write, a checkpoint, a training step), drawn afresh
# under -m slow from every point the reference reaches.
@pytest.mark.parametrize("point", ["write", "model", "step"])
def test_a_run_killed_at_a_point_resumes_to_identical_artifacts(reference, tmp_path, point):
    (point, hit), = kill_points({point: reference[2][point]}, 1, seed=["write", "model", "step"].index(point))
    assert kill_and_resume(reference, tmp_path, point, hit) == (-signal.SIGKILL, 0, []), (point, hit)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(20))
def test_twenty_random_kill_points_resume_identically(reference, tmp_path, index):
    point, hit = kill_points(reference[2], 20, seed=12)[index]
    assert kill_and_resume(reference, tmp_path, point, hit) == (-signal.SIGKILL, 0, []), (point, hit)


# ---------------------------------------------------------------- tampering: every artifact kind is caught


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_json(key_path: list, value):
    def edit(path: Path) -> None:
        data = json.loads(path.read_text())
        node = data
        for k in key_path[:-1]:
            node = node[k]
        node[key_path[-1]] = value
        path.write_text(json.dumps(data, indent=1))
    return edit


def _falsify_rows(path: Path) -> None:  # 20 wrong answers marked right, as a hand edit would
    text, n = path.read_text(), 0
    lines = []
    for line in text.splitlines():
        if n < 20 and '"correct":false' in line:
            line, n = line.replace('"correct":false', '"correct":true'), n + 1
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


TAMPER = {  # artifact kind -> (file, edit)
    "manifest": ("default/seed-3/manifest.json", _edit_json(["config", "loop", "tau"], 0.1)),
    "round record": ("default/seed-3/round-001/round.json", _edit_json(["metrics", "test_accuracy"], 0.99)),
    "eval rows": ("default/seed-3/round-001/eval.jsonl", _falsify_rows),
    "samples truncated": ("default/seed-3/round-001/samples.jsonl",
                          lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
    "selected with a bad line": ("default/seed-3/round-001/selected.jsonl",
                                 lambda p: p.write_text(p.read_text() + "not json\n")),
    "reference scores": ("default/seed-3/round-000/reference.jsonl",
                         lambda p: p.write_text(p.read_text().replace('"nll":', '"nll":1', 1))),
    "checkpoint weights": ("default/seed-3/round-001/model/model.safetensors", _flip_byte),
    "checkpoint config": ("default/seed-3/round-002/model/config.json",
                          lambda p: p.write_text(p.read_text().replace("32", "33", 1))),
    "tokenizer": ("default/seed-3/round-000/model/tokenizer.json", lambda p: p.write_text(p.read_text() + " ")),
    "probe results": ("default/probes.json", _edit_json(["correction", "tested"], 999)),
    "probe item records": ("default/probes.items.npz", _flip_byte),
    "suite verdict": ("suite.json", _edit_json(["gates", 0, "passed"], False)),
    "missing file": ("default/seed-3/round-002/samples.jsonl", lambda p: p.unlink()),
}


@pytest.mark.parametrize("kind", list(TAMPER))
def test_a_tampered_artifact_is_named_by_verify_and_by_its_readers(reference, tmp_path, kind):
    suite, ref_out, _ = reference
    out = Path(shutil.copytree(ref_out, tmp_path / "out"))
    rel, edit = TAMPER[kind]
    edit(out / rel)
    name = Path(rel).name
    verified = runner.invoke(app, ["verify", str(out)])
    assert verified.exit_code == 1 and name in verified.output, verified.output
    if kind == "suite verdict":  # read by report only
        readers = [["report", str(out), "--out", str(tmp_path / "report")]]
    elif kind.startswith("probe"):
        readers = [["check", str(out), str(suite)], ["report", str(out), "--out", str(tmp_path / "report")]]
    elif kind in ("checkpoint weights", "checkpoint config", "tokenizer"):  # read by a resume (and loads)
        readers = [["run", str(suite), "--out", str(out)]]
    else:
        readers = [["check", str(out), str(suite)], ["run", str(suite), "--out", str(out)],
                   ["probes", str(out / "default" / "seed-3")]]
    for args in readers:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, f"{kind}: loopprobe {args[0]} exited {result.exit_code}: {result.output}"
        lines = result.output.strip().splitlines()
        assert name in result.output and len([x for x in lines if x.startswith("error:")]) == 1, result.output


def test_an_intact_run_verifies(reference):
    result = runner.invoke(app, ["verify", str(reference[1])])
    assert result.exit_code == 0 and "intact" in result.output, result.output


def test_verify_finds_runs_under_a_hidden_parent_and_skips_hidden_ones_below(reference, tmp_path):
    # CI writes to .ci-out/verify: a dot above the path given is the user's; one below it is a temporary.
    out = Path(shutil.copytree(reference[1], tmp_path / ".ci-out" / "verify"))
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and "intact" in result.output, result.output
    shutil.copytree(out / "default" / "seed-3", out / "default" / ".tmp-seed-9")
    assert runner.invoke(app, ["verify", str(out)]).output == result.output


def test_a_damaged_base_cache_entry_is_said_and_trained_again(tmp_path):
    from harness.loop import run_loop
    from tests.conftest import tiny_run_config

    cfg = tiny_run_config(rounds=0)
    run_loop(cfg, tmp_path / "r1", tmp_path / "cache")
    entry = next(p for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))  # not a lock file
    _flip_byte(entry / "model.safetensors")
    logs = []

    class Log:
        def log(self, message):
            logs.append(message)

        def task(self, *a, **k):
            from harness.progress import SilentReporter
            return SilentReporter().task(*a, **k)

    run_loop(cfg, tmp_path / "r2", tmp_path / "cache", Log())
    assert any("damaged" in m and "model.safetensors" in m for m in logs), logs
    assert json.loads((tmp_path / "r2/manifest.json").read_text())["base_model"]["cached"] is False
    assert (tmp_path / "r1/round-000/samples.jsonl").read_bytes() == (tmp_path / "r2/round-000/samples.jsonl").read_bytes()


# ---------------------------------------------------------------- bad rounds: recorded, never passing


def test_a_diverging_fine_tune_is_recorded_and_the_run_never_passes(tmp_path):
    suite = suite_file(tmp_path, lr=10)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 1, result.output
    run = out / "default" / "seed-3"
    record = json.loads((run / "round-001/round.json").read_text())
    assert record["status"] == "failed" and "diverged" in record["reason"]
    assert not (run / "round-001/model").exists() and not (run / "round-002").exists()
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0  # round 0 intact, the failure recorded
    checked = runner.invoke(app, ["check", str(out), str(suite)])
    assert checked.exit_code == 1 and "incomplete" in checked.output and "round 1 failed" in checked.output
    again = runner.invoke(app, ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert again.exit_code == 1 and "round 1 failed" in again.output  # said again, not re-run
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "incomplete" in (out / "report.md").read_text().lower()


def test_on_failure_continue_keeps_the_previous_weights_and_still_fails_the_gates(tmp_path):
    suite = suite_file(tmp_path, lr=10, extra='on_failure = "continue"')
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(suite), "--out", str(out), "--no-cache"])
    assert result.exit_code == 1 and "incomplete" in result.output, result.output
    run = out / "default" / "seed-3"
    records = [json.loads((run / f"round-00{r}/round.json").read_text()) for r in range(3)]
    assert [r["status"] for r in records] == ["complete", "rejected", "rejected"]
    assert records[1]["files"]["model/model.safetensors"] == records[0]["files"]["model/model.safetensors"]


def test_non_finite_losses_and_weights_are_failures():
    class Stats:
        final_loss = 2.0

    class Model:
        model = None

    assert "non-finite training loss (nan) at step 2" in _training_failure(Model(), [2.0, float("nan")], Stats())
    assert _training_failure(Model(), [2.0, 1.9, 1.8], Stats()) is None
    import torch

    class NaNModel:
        model = torch.nn.Linear(2, 2)

    with torch.no_grad():
        NaNModel.model.weight[0, 0] = float("inf")
    assert _training_failure(NaNModel(), [2.0, 1.9], Stats()) == "non-finite weights after fine-tuning"


# ---------------------------------------------------------------- one writer per run


def test_a_second_writer_is_refused_with_the_holders_pid_and_a_dead_holders_lock_is_taken_over(reference, tmp_path):
    suite = reference[0]
    out = tmp_path / "out"
    args = ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    ctx = multiprocessing.get_context("fork")
    first = ctx.Process(target=_child, args=(args, "", None))
    first.start()
    lock = out / ".loopprobe.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = runner.invoke(app, args)
    first_alive = first.is_alive()
    os.kill(first.pid, signal.SIGKILL)  # leave its lock behind, as a crash would
    first.join()
    assert first_alive and second.exit_code == 2, second.output
    errors = [x for x in second.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and f"PID {first.pid}" in errors[0], second.output
    assert run_cli(args) == 0  # the dead holder's lock is taken over; the run resumes
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0


# ---------------------------------------------------------------- paths that cannot be written


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through permission bits: use a filesystem that refuses
        return Path("/sys/loopprobe-test-out")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    return d / "out"


@pytest.mark.parametrize("case", ["out unwritable", "out is a file", "suite is a directory", "junit unwritable",
                                  "summary is a directory"])
def test_paths_that_cannot_be_written_are_refused_before_work(tmp_path, case):
    suite = suite_file(tmp_path)
    (tmp_path / "afile").write_text("x")
    args = {"out unwritable": ["run", str(suite), "--out", str(_unwritable(tmp_path))],
            "out is a file": ["run", str(suite), "--out", str(tmp_path / "afile")],
            "suite is a directory": ["run", str(tmp_path), "--out", str(tmp_path / "o")],
            "junit unwritable": ["run", str(suite), "--out", str(tmp_path / "o"), "--junit",
                                 str(_unwritable(tmp_path) / "j.xml")],
            "summary is a directory": ["run", str(suite), "--out", str(tmp_path / "o"), "--summary", str(tmp_path)],
            }[case]
    t0 = time.perf_counter()
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")])
    errors = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "cache").exists()  # no base training started
    assert not (tmp_path / "o").exists()


def test_checkpoints_have_the_permissions_of_the_other_artifacts(reference):
    run = reference[1] / "default" / "seed-3" / "round-001"
    modes = {p.name: p.stat().st_mode & 0o777 for p in [*run.iterdir(), *(run / "model").iterdir()] if p.is_file()}
    assert len(set(modes.values())) == 1, modes


def test_compare_marks_an_incomplete_run(reference, tmp_path):
    suite = suite_file(tmp_path, lr=10)
    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(suite), "--out", str(out), "--no-cache"]).exit_code == 1
    result = runner.invoke(app, ["compare", str(reference[1] / "default"), str(out / "default"),
                                 "--md", str(tmp_path / "c.md")])
    assert result.exit_code == 0 and "INCOMPLETE" in result.output, result.output
    assert "round 1 failed" in (tmp_path / "c.md").read_text()


def _invoke_as_nobody(args: list[str], conn) -> None:
    os.setgid(65534)
    os.setuid(65534)  # a user who may read the run but not write it
    result = runner.invoke(app, args)
    conn.send((result.exit_code, result.output))
    os._exit(0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_probes_and_check_on_a_read_only_run_print_the_verdict_and_say_nothing_was_saved(reference):
    import tempfile

    suite, ref_out, _ = reference
    base = Path(tempfile.mkdtemp(prefix="loopprobe-ro-"))
    try:
        out = Path(shutil.copytree(ref_out, base / "out"))
        shutil.copy(suite, base / "suite.toml")
        for p in [base, *base.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        (out / "default" / "probes.json").unlink()  # so that check must recompute, and cannot save
        for args in (["check", str(out), str(base / "suite.toml")], ["probes", str(out / "default" / "seed-3")]):
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.get_context("fork").Process(target=_invoke_as_nobody, args=(args, child))
            proc.start()
            code, output = parent.recv()
            proc.join()
            assert code == 0 and "not saved" in output, f"{args[0]}: {output}"
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize("task", ["harness.inspect_bridge.tasks.nope:deference",
                                  "harness.inspect_bridge.tasks.deference:nope"])
def test_a_bad_inspect_task_is_refused_at_load(tmp_path, task):
    suite = suite_file(tmp_path)
    suite.write_text(suite.read_text() + f'\n[[inspect]]\ntask = "{task}"\n')
    result = runner.invoke(app, ["run", str(suite), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2 and "key inspect.0.task" in result.output and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_the_default_suite_at_lr_10_records_a_non_finite_loss_and_never_passes(tmp_path):
    """The issue's case: smoke with lr = 10 makes round 1's loss NaN (at step 4 on this machine)."""
    suite = tmp_path / "smoke_lr10.toml"
    suite.write_text(Path("suites/smoke.toml").read_text().replace("rounds = 2\n", "rounds = 2\nlr = 10\n", 1))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 1 and "incomplete" in result.output, result.output
    run = out / "default" / "seed-0"
    record = json.loads((run / "round-001/round.json").read_text())
    assert record["status"] == "failed" and record["reason"].startswith("non-finite training loss")
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0  # round 0 intact, the failure recorded
    checked = runner.invoke(app, ["check", str(out), str(suite)])
    assert checked.exit_code == 1 and "non-finite training loss" in checked.output
