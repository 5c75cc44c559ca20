"""The import-linter contracts (pyproject.toml, [tool.importlinter]) hold on the sources, and fail on a copy with a
planted violation: a contract that cannot fail would prove nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    for name in ("harness", "probes", "reports"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


PLANTED = {  # file, line added, the contract it breaks
    "artifacts import probes": ("harness/artifacts.py", "import probes.stats\n", "Layers import downward"),
    "a domain imports the app": ("harness/domains/arithmetic.py", "import harness.app.cli\n", "Layers import downward"),
    "config imports reports": ("harness/config.py", "import reports.model\n", "support modules"),
    "reports reach a private probes module": ("reports/markdown.py", "from probes._view import RunView\n",
                                              "public API"),
}


@pytest.mark.skipif(not LINT.exists(), reason="import-linter is in the dev extra")
def test_the_sources_keep_every_contract(tmp_path):
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0 and "BROKEN" not in result.stdout, result.stdout + result.stderr


@pytest.mark.skipif(not LINT.exists(), reason="import-linter is in the dev extra")
@pytest.mark.parametrize("case", list(PLANTED))
def test_a_planted_violation_breaks_its_contract(tmp_path, case):
    root = _copy(tmp_path)
    file, line, contract = PLANTED[case]
    path = root / file
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + rest if sep else line + text)
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]  # each broken contract's name and its import chains
    assert contract in broken and file.removesuffix(".py").replace("/", ".") in result.stdout, result.stdout
