"""Packaging: the shipped suites are package data (`harness.suites`, mapped from the top-level suites/ folder)
in a wheel and in an editable install; commands take a shipped suite's name where they take a suite file;
`loopprobe --version`. The install tests build from a copy of the sources (nothing is written into the
checkout) into a fresh virtual environment that borrows this environment's dependencies through a `.pth`
line, and run `loopprobe` from a directory outside the checkout."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.app.cli import app
from harness.app.shipped import resolve_suite, shipped_suites, suites_dir
from harness.app.suite import SuiteError
from tests.test_suite import HOLDS, TINY

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


# ---------------------------------------------------------------- names and paths (fast)


def test_shipped_suites_are_the_top_level_suites_folder():
    assert {p.name for p in shipped_suites().values()} == {p.name for p in (REPO / "suites").glob("*.toml")}
    assert list(shipped_suites())[:2] == ["smoke", "null_loop"]  # verify-suites' order
    assert suites_dir().resolve() == (REPO / "suites").resolve()


def test_a_file_wins_then_a_shipped_name_then_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_suite("smoke") == shipped_suites()["smoke"]
    Path("smoke").write_text(TINY.format(seeds="[3]", gates=HOLDS))  # a file of that name in the cwd wins
    assert resolve_suite("smoke") == Path("smoke")
    Path("mine.toml").write_text("")
    assert resolve_suite("mine.toml") == Path("mine.toml")
    with pytest.raises(SuiteError, match=r"^no shipped suite 'smok'; did you mean 'smoke'\?$"):
        resolve_suite("smok")
    with pytest.raises(SuiteError, match=r"^suites/lmsi.toml: cannot read \(no such file\); did you mean the "
                                         r"shipped suite 'lmsi'\?$"):
        resolve_suite("suites/lmsi.toml")


def test_run_without_a_suite_runs_the_shipped_default_even_beside_a_file_named_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("smoke").write_text("not [toml")
    result = runner.invoke(app, ["run", "--seed", str(2**40), "--out", str(tmp_path / "out")])  # stops at the seed
    assert result.exit_code == 2 and "seed" in result.output and "TOML" not in result.output, result.output
    result = runner.invoke(app, ["run", "smoke"])  # named: the file wins
    assert result.exit_code == 2 and "smoke: not valid TOML" in result.output, result.output


def test_commands_take_a_shipped_name(tmp_path):
    result = runner.invoke(app, ["check", str(tmp_path / "nothing"), "smoke"])  # resolved, loaded, then no run
    assert result.exit_code == 2 and "no run for condition 'default'" in result.output, result.output
    for args in (["run", "smok"], ["check", str(tmp_path), "smok"], ["verify-suites", "smok"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert "no shipped suite 'smok'; did you mean 'smoke'?" in result.output
    result = runner.invoke(app, ["verify-suites", "--budget", "0", "smoke", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0 and "skipped smoke: does not fit the budget" in result.output, result.output


def test_suites_lists_name_size_runtime_description_and_version_prints(monkeypatch):
    from rich.console import Console

    monkeypatch.setattr("harness.app.cli.console", Console(width=300))
    result = runner.invoke(app, ["suites"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    for name in shipped_suites():
        assert name in rows, result.output
    assert "(default)" in rows["smoke"] and "small" in rows["smoke"] and "100 s" in rows["smoke"]
    assert "Embedded model, LMSI, 2 rounds" in rows["smoke"] and "large" in rows["smollm2_lmsi"]
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"loopprobe {importlib.metadata.version('loopprobe')}\n"


def test_the_pytest_plugin_takes_a_shipped_name(pytester):
    listed = pytester.runpytest_inprocess("--loopprobe-suite", "smoke", "--collect-only", "-q", "-p", "no:cacheprovider")
    listed.stdout.fnmatch_lines(["*complete[[]default]*", "*gate[[]default: *"])  # collected, not run
    unknown = pytester.runpytest_inprocess("--loopprobe-suite", "smok", "-p", "no:cacheprovider")
    assert unknown.ret == 4  # pytest's usage-error exit code
    unknown.stderr.fnmatch_lines(["*no shipped suite 'smok'; did you mean 'smoke'?*"])


# ---------------------------------------------------------------- installs, outside the checkout


def _sources(tmp_path: Path) -> Path:
    """What a build reads, copied: building in the checkout would write build/ and *.egg-info into it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("harness", "probes", "reports", "suites"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


def _fresh_env(tmp_path: Path, wheel: Path) -> tuple[Path, Path]:
    """A virtual environment holding only `wheel`; this environment's site-packages is appended through a
    `.pth` line after the install, so torch and the rest are shared but none of this environment's .pth
    files (the editable install's finder among them) run there. Returns (bin dir, site-packages)."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (purelib / "zz_borrowed_dependencies.pth").write_text("".join(f"{p}\n" for p in ours if Path(p).is_dir()))
    return env / "bin", purelib


def _run(cmd: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONNOUSERSITE": "1", "COLUMNS": "200"}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


WHERE = ("import harness, importlib.metadata as m, harness.app.shipped as s; print(harness.__file__); "
         "print(m.distribution('loopprobe').locate_file('')); print(s.suites_dir())")


# 31 s on 2 busy CPU cores (build 2 s; the rest is five `loopprobe` starts and a tiny suite)
SHIPPED_BASE = """
from harness.config import RunConfig
from harness.loop import base_key
from harness.models.tiny.pretrain import SHIPPED_DIR, _cached
entry = SHIPPED_DIR / base_key(RunConfig())
assert _cached(entry, None) is not None  # every file intact against its base.json
print(entry)
"""


def test_the_wheel_ships_the_suites_and_runs_outside_the_checkout(tmp_path):
    t0 = time.perf_counter()
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(dist), str(_sources(tmp_path))], check=True)
    (wheel,) = dist.glob("loopprobe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"harness/suites/{p.name}" for p in (REPO / "suites").glob("*.toml")} <= set(names)
    assert not [n for n in names if n.startswith("suites/")]  # no generic top-level package in site-packages
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("harness/models/tiny/shipped/")}
    assert shipped == {"base.json", "config.json", "model.safetensors", "tokenizer.json"}  # the default base
    bin_dir, purelib = _fresh_env(tmp_path, wheel)
    work = tmp_path / "elsewhere"  # outside the checkout: nothing can come from the working directory
    work.mkdir()

    where = _run([bin_dir / "python", "-c", WHERE], work)
    assert where.returncode == 0, where.stderr
    module, distribution, suites = where.stdout.splitlines()
    assert Path(module).is_relative_to(purelib) and Path(distribution) == purelib, where.stdout  # not REPO
    assert Path(suites) == purelib / "harness" / "suites"

    base = _run([bin_dir / "python", "-c", SHIPPED_BASE], work)
    assert base.returncode == 0 and Path(base.stdout.strip()).is_relative_to(purelib), base.stdout + base.stderr
    version = _run([bin_dir / "loopprobe", "--version"], work)
    assert version.returncode == 0 and version.stdout == f"loopprobe {importlib.metadata.version('loopprobe')}\n"
    listed = _run([bin_dir / "loopprobe", "suites"], work)
    assert listed.returncode == 0 and all(name in listed.stdout for name in shipped_suites()), listed.stdout
    # The default suite resolves from the installed package data (loaded and planned; not run: it takes minutes).
    planned = _run([bin_dir / "loopprobe", "verify-suites", "--budget", "0", "smoke", "--out", work / "v"], work)
    assert planned.returncode == 0 and "skipped smoke: does not fit the budget" in planned.stdout, planned.stdout
    unknown = _run([bin_dir / "loopprobe", "run", "smok"], work)
    assert unknown.returncode == 2 and "did you mean 'smoke'?" in unknown.stderr, unknown.stderr
    (work / "tiny.toml").write_text(TINY.format(seeds="[3]", gates=HOLDS))
    ran = _run([bin_dir / "loopprobe", "run", "tiny.toml", "--out", work / "out", "--no-cache"], work)
    assert ran.returncode == 0 and "PASSED" in ran.stdout, ran.stdout + ran.stderr
    print(f"wheel: built, installed and run outside the checkout in {time.perf_counter() - t0:.0f} s")


def test_an_editable_install_finds_the_suites_in_the_source_folder(tmp_path):
    src = _sources(tmp_path)
    dist = tmp_path / "dist"
    # What `pip install -e` builds (PEP 660), built with this environment's setuptools, offline.
    subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_editable({str(dist)!r})"],
                   cwd=src, check=True, capture_output=True)
    (wheel,) = dist.glob("loopprobe-*.whl")
    bin_dir, purelib = _fresh_env(tmp_path, wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([bin_dir / "python", "-c", WHERE], work)
    assert where.returncode == 0, where.stderr
    module, distribution, suites = where.stdout.splitlines()
    assert Path(module) == src / "harness" / "__init__.py" and Path(distribution) == purelib, where.stdout
    assert Path(suites) == src / "suites"  # the top-level folder itself, through the harness.suites mapping
    listed = _run([bin_dir / "loopprobe", "suites"], work)
    assert listed.returncode == 0 and all(name in listed.stdout for name in shipped_suites()), listed.stdout
