"""The docs site: the generated reference pages (harness.app.reference) cover every suite key with its
default, every built-in probe with its parameters and every domain with ids it really produces; the site
builds with `mkdocs build --strict`."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from harness.app import reference
from harness.app.suite import Suite
from harness.domains.base import recorded_domain
from harness.registry import registered

ROOT = Path(__file__).resolve().parent.parent


def _nested(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested(arg)]


def suite_models() -> list[type[BaseModel]]:
    """Every model a suite file is validated with: the sections, each registered domain's and backend's
    config, each selector's `select_args` model, and every model nested in those."""
    todo = [m for field in Suite.model_fields.values() for m in _nested(field.annotation)]
    todo += [e.obj.config_class for kind in ("domain", "backend") for e in registered(kind).values()]
    todo += [e.metadata["args"] for e in registered("selector").values() if e.metadata.get("args")]
    seen: list[type[BaseModel]] = []
    while todo:
        model = todo.pop(0)
        if model not in seen:
            seen.append(model)
            todo += [m for field in model.model_fields.values() for m in _nested(field.annotation)]
    return seen


def table_of(page: str, model: type[BaseModel]) -> list[str]:
    """The rows of the table the page announces with the model's `Model:` line."""
    marker = f"Model: `{model.__name__}` (`{model.__module__}`)"
    assert marker in page, f"no table for {model.__name__}"
    return page.split(marker, 1)[1].split("\n\n")[1].splitlines()[2:]


@pytest.fixture(scope="module")
def suite_page() -> str:
    return reference.suite_reference()


@pytest.mark.parametrize("model", suite_models(), ids=lambda m: m.__name__)
def test_every_suite_key_is_listed_with_its_default(suite_page, model):
    rows = {row.split("|")[1].strip(): row for row in table_of(suite_page, model)}
    for name, field in model.model_fields.items():
        assert f"`{name}`" in rows, f"{model.__name__}.{name} missing"
        assert f"| `{reference.default_text(field)}` |" in rows[f"`{name}`"], f"{model.__name__}.{name}"
        if field.description:
            assert reference.text(field.description) in rows[f"`{name}`"]


def test_defaults_are_written_as_a_suite_writes_them(suite_page):
    from harness.config import LoopConfig

    rendered = {name: reference.default_text(f) for name, f in LoopConfig.model_fields.items()}
    assert rendered["formats"] == '["cot"]' and rendered["select"] == '"self_consistency"'
    assert rendered["steps"] == "unset" and rendered["lr"] == "0.0001" and rendered["select_args"] == "{}"
    assert reference.default_text(Suite.model_fields["suite"]) == "required"
    assert reference.toml_value({"tau": 0.6, "a b": True}) == '{tau = 0.6, "a b" = true}'
    for section in ("[suite]", "[domain]", "[model]", "[base]", "[loop]", "[probes]", "[[inspect]]", "[[gates]]",
                    "[[conditions]]"):
        assert f"## `{section}`" in suite_page


@pytest.fixture(scope="module")
def probe_pages() -> dict[str, str]:
    return reference.probe_pages()


def test_every_builtin_probe_has_a_page(probe_pages):
    from probes import registry

    builtins = {pid: cls for pid, cls in registry().items() if cls.__module__.startswith("probes.library.")}
    assert builtins and set(reference.builtin_probes()) == set(builtins)
    index = probe_pages["reference/probes/index.md"]
    for pid, cls in builtins.items():
        page = probe_pages[f"reference/probes/{pid}.md"]
        assert page.startswith(f"# `{pid}`") and f"`{cls.family}`" in page and f"[`{pid}`]({pid}.md)" in index
        assert reference.text(cls.description().split(";")[0][:40]) in " ".join(page.split())
        rows = {row.split("|")[1].strip() for row in table_of(page, cls.Params)}
        assert {f"`{name}`" for name in cls.Params.model_fields} <= rows
        for name in getattr(cls, "measurements", None) or ():
            assert f"- `{name}`" in page


def test_every_domain_shows_ids_it_produces():
    page = reference.artifact_formats()
    sections = {m.group(1): m.group(2) for m in re.finditer(r"^### `(\w+)` \{ #domain-\w+ \}\n(.*?)(?=^### |\Z)",
                                                          page, re.MULTILINE | re.DOTALL)}
    assert set(sections) == set(registered("domain"))
    for name, section in sections.items():
        domain = recorded_domain({"domain": {"name": name}}, 0)
        splits = domain.splits()
        produced = {q.id: q for split in (splits.pool, splits.test, splits.ood, splits.base_val) for q in split}
        shown = [i for i in re.findall(r"`([^`\n]+)`", section) if i in produced]
        assert shown, f"{name}: no id of its splits is shown"
        parse_back = getattr(sys.modules[type(domain).__module__], "question_from_id", None)
        for qid in shown:
            assert parse_back is None or parse_back(qid) == produced[qid]
        assert f"`seed-0/{splits.pool[0].id}`" in section  # PooledRunView: "<run directory name>/" + id
        assert domain.reference_rationale(splits.pool[0]) in section.replace("\\n", "\n")


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is in the dev extra")
def test_the_site_builds_strict(tmp_path):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    for page in ("index.html", "readme/index.html", "reference/suite/index.html", "reference/artifacts/index.html",
                 "reference/probes/index.html", "reference/probes/cw.rate/index.html", "reference/api/index.html"):
        assert (site / page).is_file(), page
    api = (site / "reference/api/index.html").read_text()
    for name in ("probes.RunView", "probes.PooledRunView", "probes.SampleTable", "probes.Measurement",
                 "probes.Probe", "probes.probe", "probes.load_probes", "probes.stats.bootstrap",
                 "probes.testing.write_synthetic_run"):
        assert f'id="{name}"' in api, name
    print(f"mkdocs build --strict: {time.monotonic() - started:.1f} s")
