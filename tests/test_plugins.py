"""An out-of-tree domain and selector (tests/plugins/loopprobe_reverse), installed with pip into a folder of
its own and found through entry points, run from a suite: the loop, the probes and the report take them with
no edit to loopprobe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "plugins" / "loopprobe_reverse"

SUITE = """
[suite]
name = "reverse"
seeds = [0]

[domain]
name = "reverse"

[model]
hidden_size = 32
num_layers = 2
num_heads = 2
intermediate_size = 64

[base]
steps = 60
batch_size = 32
lr = 3e-3
warmup = 5

[loop]
rounds = 1
k = 4
eval_k = 2
select = "shortest_agreeing"
max_new_tokens = 24

[probes]
include = ["drift.accuracy", "cw.rate", "attractor.answer_entropy"]

[[gates]]
probe = "cw.rate"
stat = "rate"
max = 1.0
"""


def _loopprobe(args: list, cwd: Path, plugin_dir: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(plugin_dir), "COLUMNS": "200"}
    code = "import sys; from harness.app.cli import app; sys.argv[0] = 'loopprobe'; app()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


# ~40 s on 2 busy cores: the install (~5 s), a base of 60 steps, one round, probes and a report
def test_an_installed_plugin_domain_and_selector_run_from_a_suite(tmp_path):
    plugin_dir = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(plugin_dir), str(PLUGIN)], check=True, capture_output=True,
                   cwd=tmp_path)  # a build in the plugin's folder would leave build/ there: copy-free, cwd away
    assert list(plugin_dir.glob("loopprobe_reverse-*.dist-info"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "reverse.toml").write_text(SUITE)

    listed = _loopprobe(["suites"], work, plugin_dir)  # the registry loads the entry points
    assert listed.returncode == 0, listed.stderr
    ran = _loopprobe(["run", "reverse.toml", "--out", work / "out", "--no-cache"], work, plugin_dir)
    assert ran.returncode == 0 and "PASSED" in ran.stdout, ran.stdout + ran.stderr
    run = work / "out" / "default" / "seed-0"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["domain"]["name"] == "reverse"
    assert manifest["config"]["loop"]["select"] == "shortest_agreeing"
    rows = [json.loads(line) for line in (run / "round-001" / "samples.jsonl").read_text().splitlines()]
    assert all(isinstance(r["truth"], str) and r["truth"].isalpha() for r in rows)  # string answers recorded
    selected = [json.loads(line) for line in (run / "round-000" / "selected.jsonl").read_text().splitlines()]
    assert len({s["question_id"] for s in selected}) == len(selected)  # one per question: the plugin's rule
    report = _loopprobe(["report", work / "out", "--out", work / "report"], work, plugin_dir)
    assert report.returncode == 0 and (work / "report" / "report.html").is_file(), report.stdout + report.stderr

    without = subprocess.run([sys.executable, "-c", "from harness.registry import names; print(names('domain'))"],
                             capture_output=True, text=True, check=True, env=os.environ | {"PYTHONPATH": ""})
    assert "reverse" not in without.stdout  # not installed here: nothing leaks into this environment
