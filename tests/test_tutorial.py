"""docs/tutorial.md works as written: its probe is at most 30 lines, its controls pass, its suite loads the
probe by path, a gate typo is refused in under a second, and the gate tells a planted effect from none."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.app.suite import SuiteError, load_suite
from harness.app.suite_runner import check_suite
from probes.testing import RoundSpec, clean_rounds, write_synthetic_run

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
SIZES = {"n_pool": 400, "n_test": 40, "n_ood": 10, "n_ref": 6}  # a pool of the smoke suite's size


def titled_blocks() -> dict[str, str]:
    """The fenced code blocks with a `title="FILE"`, by file name."""
    found = re.findall(r'```\w+ title="([^"]+)"[^\n]*\n(.*?)```', TUTORIAL.read_text(), re.DOTALL)
    return dict(found)


@pytest.fixture(scope="module")
def tutorial_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tutorial")
    for name, text in titled_blocks().items():
        (d / name).write_text(text)
    return d


def test_the_tutorial_names_its_three_files_and_its_probe_is_at_most_30_lines():
    blocks = titled_blocks()
    assert set(blocks) == {"right_reason.py", "test_right_reason.py", "right_reason_suite.toml"}
    assert len(blocks["right_reason.py"].splitlines()) <= 30


def test_its_controls_pass_as_written(tutorial_dir):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_right_reason.py"],
                          cwd=tutorial_dir, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr


def test_its_suite_loads_the_probe_by_path_and_refuses_a_gate_typo_in_under_a_second(tutorial_dir):
    suite = load_suite(tutorial_dir / "right_reason_suite.toml")
    assert "tutorial.right_reason" in suite.probe_selection()
    typo = tutorial_dir / "typo.toml"
    typo.write_text((tutorial_dir / "right_reason_suite.toml").read_text().replace("wrong_reason.", "wrong_reasons."))
    t0 = time.perf_counter()
    with pytest.raises(SuiteError, match="did you mean 'wrong_reason.delta_vs_round0'"):
        load_suite(typo)
    assert time.perf_counter() - t0 < 1.0


def test_its_gate_fails_on_planted_false_steps_and_holds_without(tutorial_dir, tmp_path):
    suite = load_suite(tutorial_dir / "right_reason_suite.toml")
    planted = write_synthetic_run(tmp_path / "planted", [RoundSpec(rationale_errors=e) for e in (0.05, 0.2, 0.35)],
                                  **SIZES)
    clean = write_synthetic_run(tmp_path / "clean", clean_rounds(3, rationale_errors=0.05), **SIZES)
    assert not check_suite(suite, planted).passed
    assert check_suite(suite, clean).passed
