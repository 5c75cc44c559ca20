"""The probe API: registry and entry points, the documented example probe with its controls, purity,
probes.json and the `loopprobe probes` command."""

import hashlib
import importlib.metadata
import json
import math
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import probes._api as api
from harness.app.cli import app
from probes import Measurement, Probe, ProbeError, ProbeResults, RunView, get_probe, probe, registry, run_probes
from probes.testing import clean_rounds, crank_rounds, write_synthetic_run

EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"
registry()  # register the built-ins before any test swaps the registry for a copy


@pytest.fixture(scope="module")
def crank_run(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("runs") / "crank", crank_rounds(), n_pool=150, n_test=150)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("runs") / "clean", clean_rounds(), n_pool=150, n_test=150)


@pytest.fixture
def example_probe(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(api, "_REGISTRY", dict(api._REGISTRY))  # registrations stay local to the test
    import majority_accuracy

    return majority_accuracy.MajorityAccuracy


def test_example_probe_is_short_and_uses_only_the_public_api():
    text = (EXAMPLES / "majority_accuracy.py").read_text()
    assert len(text.splitlines()) <= 35
    imports = [line for line in text.splitlines() if line.startswith(("from ", "import "))]
    assert imports == ["from probes import Probe, RunView, probe, stats, tracked_names"]


def test_example_probe_fires_on_a_planted_effect_and_stays_quiet_on_a_clean_run(example_probe, crank_run,
                                                                                clean_run):
    fired = {m.name: m for m in example_probe().measure(RunView(crank_run))}
    delta = fired["majority_accuracy.delta_vs_round0"]
    assert delta.fires and delta.value < 0 and delta.ci_high < 0 and delta.evidence
    quiet = {m.name: m for m in example_probe().measure(RunView(clean_run))}
    assert not any(m.fires for m in quiet.values())
    q = quiet["majority_accuracy.delta_vs_round0"]
    assert q.ci_low <= 0 <= q.ci_high


def test_probes_from_entry_points_join_the_registry(example_probe, monkeypatch):
    monkeypatch.setattr(api, "_REGISTRY", {k: v for k, v in api._REGISTRY.items() if k != example_probe.id})
    monkeypatch.setattr(api, "_entry_points_loaded", False)
    ep = importlib.metadata.EntryPoint(name="maj", value="majority_accuracy:MajorityAccuracy",
                                       group=api.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [ep] if group == api.ENTRY_POINT_GROUP else [])
    assert registry()["example.majority_accuracy"] is example_probe
    assert get_probe("example.majority_accuracy").description().startswith("Accuracy of the pool majority")


def test_registry_rejects_bad_probes_and_names_the_nearest_id(monkeypatch):
    monkeypatch.setattr(api, "_REGISTRY", dict(api._REGISTRY))
    with pytest.raises(TypeError, match="docstring"):
        probe(type("NoDoc", (Probe,), {"id": "x.nodoc", "family": "drift"}))
    with pytest.raises(TypeError, match="family"):
        probe(type("NoFamily", (Probe,), {"id": "x.nofamily", "__doc__": "d"}))
    with pytest.raises(TypeError, match="already registered"):
        probe(type("Dup", (Probe,), {"id": "attractor.answer_entropy", "family": "x", "__doc__": "d"}))
    with pytest.raises(ProbeError, match="did you mean 'attractor.answer_entropy'"):
        get_probe("attractor.answer_entropi")


def test_probe_parameters_are_validated(example_probe):
    assert example_probe(seed=3).params.seed == 3
    with pytest.raises(ProbeError, match="parameter seed"):
        example_probe(seed="x")
    with pytest.raises(ProbeError, match="parameter sed"):
        example_probe(sed=1)


def test_fires_follows_the_ci_the_null_and_the_concern():
    m = lambda **kw: Measurement(probe="p", name="n", value=0.5, **kw)
    assert m(ci_low=0.1, ci_high=0.9, concern="increase").fires
    assert not m(ci_low=0.1, ci_high=0.9, concern="decrease").fires
    assert not m(ci_low=-0.1, ci_high=0.9, concern="increase").fires
    assert m(ci_low=0.6, ci_high=0.9, null=0.5, concern="either").fires
    assert not m(ci_low=0.4, ci_high=0.9, null=0.5, concern="either").fires
    assert m(alarm=True).fires and not m(ci_low=0.1, ci_high=0.9, concern="none").fires
    # fires is derived: a value given by hand is overwritten, and it survives a JSON round trip
    x = Measurement(probe="p", name="n", value=1.0, ci_low=0.5, ci_high=2.0, concern="increase", fires=False)
    assert x.fires and Measurement.model_validate_json(x.model_dump_json()) == x


def _tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_probes_are_pure_they_write_nothing_into_the_run(crank_run):
    before = _tree_digest(crank_run)
    view = RunView(crank_run)
    assert not [a for a in dir(view) if a.startswith(("write", "save", "finish", "open"))]
    results = run_probes(view)
    assert results.measurements and _tree_digest(crank_run) == before


def test_every_builtin_probe_is_documented_and_returns_clean_measurements(crank_run):
    results = run_probes(crank_run)
    ids = {p.id for p in results.probes}
    assert ids == set(registry())
    for info in results.probes:
        assert info.description and info.family in {"drift", "attractors", "confident_wrong", "forecast"}
    for m in results.measurements:
        for v in (m.value, m.ci_low, m.ci_high):
            assert v is None or not math.isnan(v)  # never NaN
        if m.ci_low is not None and m.value is not None:
            assert m.ci_low <= m.ci_high
        assert len(m.evidence) <= 20
    json.loads(results.model_dump_json())  # serialisable


def test_the_probes_command_prints_measurements_and_writes_probes_json(crank_run, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(crank_run, run)
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["probes", str(run)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - t0 < 10
    saved = ProbeResults.model_validate_json((run / "probes.json").read_text())
    assert "attractor.answer_entropy" in result.output and "95% CI" in result.output
    assert {m.probe for m in saved.measurements} == set(registry())
    listing = CliRunner().invoke(app, ["probes"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and all(pid in listing.output for pid in registry())
    bad = CliRunner().invoke(app, ["probes", str(run), "--probe", "cw.rat"])
    assert bad.exit_code == 2 and "--probe 'cw.rat' matches no probe; did you mean 'cw.rate'?" in bad.output
    missing = CliRunner().invoke(app, ["probes", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no such directory" in missing.output
