"""The probe scaffold (harness.app.scaffold): the generated probe and its controls pass as generated, in
every family; the generated positive control fails once the measurement stops measuring; bad names,
families and existing files are one-line errors; the entry-point snippet loads the probe."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import probes._api as api
from harness.app.scaffold import FAMILIES, ScaffoldError, entry_point_snippet, probe_files, write_probe_scaffold
from probes import Probe, registry


def pytest_in(directory: Path) -> subprocess.CompletedProcess:
    """pytest run on `directory` from there, as an author runs the generated tests."""
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
                          cwd=directory, capture_output=True, text=True, timeout=300, check=False)


def test_the_families_are_those_of_the_builtin_probes():
    assert set(FAMILIES) == {cls.family for cls in registry().values() if cls.__module__.startswith("probes.")}


def test_every_family_scaffold_passes_its_controls_and_ruff_as_generated(tmp_path):
    written = [path for family in FAMILIES for path in write_probe_scaffold(f"my_{family}", family, tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert [p.name for p in written[:2]] == ["my_drift.py", "test_my_drift.py"]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *map(str, written)],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    result = pytest_in(tmp_path)
    assert result.returncode == 0 and f"{2 * len(FAMILIES)} passed" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("family", ["drift", "confident_wrong"])
def test_a_measure_that_measures_nothing_fails_the_generated_positive_control(family, tmp_path):
    probe_file, _ = write_probe_scaffold("flat", family, tmp_path)
    lines = probe_file.read_text().split("\n")
    returns = [i for i, line in enumerate(lines) if line.startswith(" " * 12 + "return ")]
    assert len(returns) == 1  # per_question's result
    lines[returns[0]] = " " * 12 + "return [0.5] * len(ids)"
    probe_file.write_text("\n".join(lines))
    result = pytest_in(tmp_path)
    assert result.returncode == 1 and "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "FAILED test_flat.py::test_fires_when_the_effect_is_planted" in result.stdout


@pytest.mark.parametrize("name, why", [
    ("AnswerFlips", "not a lowercase Python identifier"), ("1flips", "not a lowercase Python identifier"),
    ("class", "not a lowercase Python identifier"), ("answer-flips", "not a lowercase Python identifier"),
    ("test_flips", "pytest would collect"), ("json", "a module of that name exists"),
    ("probes", "a module of that name exists"),
])
def test_bad_names_are_one_line_errors_naming_the_value(name, why, tmp_path):
    with pytest.raises(ScaffoldError, match=why) as caught:
        write_probe_scaffold(name, "drift", tmp_path)
    assert repr(name) in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError) and not any(tmp_path.iterdir())


def test_an_unknown_family_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown family 'attractor'; choose one of: drift, attractors, "
                                         "confident_wrong, forecast"):
        write_probe_scaffold("flips", "attractor", tmp_path)


def test_existing_files_are_never_overwritten(tmp_path):
    (tmp_path / "test_flips.py").write_text("# mine\n")
    with pytest.raises(ScaffoldError, match="test_flips.py: already exists"):
        write_probe_scaffold("flips", "drift", tmp_path)
    assert not (tmp_path / "flips.py").exists() and (tmp_path / "test_flips.py").read_text() == "# mine\n"
    paths = write_probe_scaffold("flips", "drift", tmp_path / "new" / "folder")  # made when missing
    with pytest.raises(ScaffoldError, match="flips.py: already exists"):
        write_probe_scaffold("flips", "attractors", paths[0].parent)
    assert paths[0].read_text() == probe_files("flips", "drift")["flips.py"]


def test_the_entry_point_snippet_loads_the_generated_probe(tmp_path, monkeypatch):
    write_probe_scaffold("answer_flips", "attractors", tmp_path / "my_package")
    (tmp_path / "my_package" / "__init__.py").write_text("")
    snippet = entry_point_snippet("answer_flips", "my_package.answer_flips")
    entry = tomllib.loads(snippet)["project"]["entry-points"][api.ENTRY_POINT_GROUP]
    assert entry == {"answer_flips": "my_package.answer_flips:AnswerFlips"}
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(api, "_REGISTRY", dict(api._REGISTRY))  # the registration stays local to the test
    cls = importlib.metadata.EntryPoint("answer_flips", entry["answer_flips"], api.ENTRY_POINT_GROUP).load()
    assert issubclass(cls, Probe) and cls.id == "custom.answer_flips" and cls.family == "attractors"
    assert registry()["custom.answer_flips"] is cls and cls.description().startswith("Vote share")
    with pytest.raises(ValueError, match="not a dotted module name"):
        entry_point_snippet("answer_flips", "my-package/answer_flips")
