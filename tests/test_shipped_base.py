"""The base model shipped as package data is the one the default configuration's cache key names, intact, and
a default run on an empty cache loads it instead of training."""

from __future__ import annotations

import json

import pytest

from harness.app.shipped import shipped_suites
from harness.app.suite import load_suite
from harness.config import RunConfig
from harness.integrity import file_hash
from harness.loop import base_key, run_loop
from harness.models.tiny.base_cache import CACHE_VERSION, SHIPPED_DIR


def test_the_shipped_entry_is_the_one_the_default_key_names():
    entries = [p.name for p in SHIPPED_DIR.iterdir() if not p.name.startswith(".")]
    key = base_key(RunConfig())
    assert entries == [key], ("the shipped base is not the default configuration's: run "
                              "`python -m harness.app.ship_base` and commit harness/models/tiny/shipped/")
    smoke = load_suite(shipped_suites()["smoke"])
    assert base_key(smoke.run_config(smoke.condition_names()[0], 0)) == key  # what `loopprobe run` uses


def test_the_shipped_entry_is_intact_and_records_what_made_it():
    entry = SHIPPED_DIR / base_key(RunConfig())
    info = json.loads((entry / "base.json").read_text())
    assert {n: file_hash(entry / n) for n in info["files"]} == info["files"]
    assert set(info["files"]) == {"config.json", "model.safetensors", "tokenizer.json"}
    made, cfg = info["shipped_config"], RunConfig()
    assert made == {**made, "cache_version": CACHE_VERSION, "seed": cfg.seed,
                    "domain": cfg.domain.model_dump(mode="json"), "model": cfg.model.model_dump(mode="json"),
                    "base": cfg.base.model_dump(mode="json")}
    assert info["n_parameters"] == 1_062_528 and info["val_accuracy"] > 0.3


def test_a_default_run_on_an_empty_cache_loads_the_shipped_base(tmp_path):
    cfg = RunConfig.model_validate({"loop": {"rounds": 0}})
    store = run_loop(cfg, tmp_path / "run", tmp_path / "cache")
    base = store.read_manifest().base_model
    assert base["shipped"] is True and base["cached"] is True and base["key"] == base_key(cfg)
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]  # nothing trained into the cache (its lock aside)


def test_a_damaged_shipped_entry_is_said_and_trained_instead(tmp_path, monkeypatch):
    import shutil

    from harness.models.tiny import pretrain

    fake = tmp_path / "shipped"
    shutil.copytree(SHIPPED_DIR, fake)
    key = base_key(RunConfig())
    weights = fake / key / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(pretrain, "SHIPPED_DIR", fake)
    said = []

    class Reporter:
        def log(self, message):
            said.append(message)

    assert pretrain._cached(fake / key, Reporter()) is None
    assert "model.safetensors is damaged" in said[0]


def test_loopprobe_shipped_base_0_trains_instead(tmp_path, monkeypatch):
    from harness.models.tiny import pretrain

    class Trained(Exception):
        pass

    def train_base(*args, **kwargs):
        raise Trained

    monkeypatch.setattr(pretrain, "train_base", train_base)
    cfg = RunConfig.model_validate({"loop": {"rounds": 0}})
    monkeypatch.setenv("LOOPPROBE_SHIPPED_BASE", "0")
    with pytest.raises(Trained):  # (with the variable unset, the test above loads the shipped base)
        run_loop(cfg, tmp_path / "run", None)
